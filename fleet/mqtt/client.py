"""The one way the fleet makes an MQTT client, and the one type for its TLS files.

Every client speaks MQTT v5 with paho's version-2 callbacks. A station presents its own
certificate (the broker takes its identity from it); the console presents its certificate too,
or, on a plain development broker, logs in as :data:`CONSOLE_USER`.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

CONSOLE_USER = "console"
"""The console's user name on a broker without TLS (its ACL may read and write the tree)."""


@dataclass(frozen=True)
class TlsFiles:
    """A client's TLS files: the CA to check the broker with, its certificate and its key."""

    ca_file: Path
    cert_file: Path
    key_file: Path

    @classmethod
    def from_optional(
        cls, ca_file: Path | None, cert_file: Path | None, key_file: Path | None
    ) -> TlsFiles | None:
        """All three, or None for a plain connection; some but not all is a mistake."""
        given = [p for p in (ca_file, cert_file, key_file) if p is not None]
        if not given:
            return None
        if ca_file is None or cert_file is None or key_file is None:
            raise ValueError("TLS needs ca_file, cert_file and key_file together")
        return cls(Path(ca_file), Path(cert_file), Path(key_file))

    @property
    def pending_key_file(self) -> Path:
        """A station's next key, made for a renewal and kept until its certificate comes."""
        return self.key_file.with_name(self.key_file.name + ".pending")

    @property
    def staged_cert_file(self) -> Path:
        return self.cert_file.with_name(self.cert_file.name + ".new")


@dataclass(frozen=True)
class BrokerAccess:
    """Where the centre reaches the broker and how it logs in: with its certificate (TLS), else
    as :data:`CONSOLE_USER` with a password (a plain development broker)."""

    host: str
    port: int
    password: str = ""
    tls: TlsFiles | None = None

    def client(self, client_id: str, **options: Any) -> mqtt.Client:
        """A client logged in as the centre (:func:`new_client`'s other ``options``)."""
        if self.tls is not None:
            return new_client(client_id, tls=self.tls, **options)
        return new_client(client_id, username=CONSOLE_USER, password=self.password, **options)


def client_context(files: TlsFiles) -> ssl.SSLContext:
    """What paho's ``tls_set`` would build (TLS 1.2+, the broker's certificate and host name
    checked against the fleet CA), kept by its owner so a renewed pair can be loaded into it."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_verify_locations(cafile=str(files.ca_file))
    load_client_certificate(context, files)
    return context


def load_client_certificate(context: ssl.SSLContext, files: TlsFiles) -> None:
    """(Re)load the pair; connections made from now on present it."""
    context.load_cert_chain(str(files.cert_file), str(files.key_file))


def new_client(
    client_id: str,
    *,
    tls: TlsFiles | ssl.SSLContext | None = None,
    username: str | None = None,
    password: str | None = None,
    reconnect_s: tuple[int, int] | None = None,
    max_inflight: int | None = None,
) -> mqtt.Client:
    """An MQTT v5 client: TLS with the given files (or a context its owner keeps), else the
    user name and password; paho's reconnect delays and in-flight window where given."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    if isinstance(tls, TlsFiles):
        tls = client_context(tls)
    if tls is not None:
        client.tls_set_context(tls)
    if username is not None:
        client.username_pw_set(username, password)
    if reconnect_s is not None:
        client.reconnect_delay_set(min_delay=reconnect_s[0], max_delay=reconnect_s[1])
    if max_inflight is not None:
        client.max_inflight_messages_set(max_inflight)
    return client


OnConnect = Callable[[mqtt.Client, object, object, ReasonCode, "Properties | None"], None]


def on_accepted(
    log: logging.Logger,
    who: str,
    then: Callable[[mqtt.Client], None],
    *,
    level: int = logging.WARNING,
) -> OnConnect:
    """A paho ``on_connect`` (callback API 2): a refusal is logged (``the broker refused WHO:
    REASON``) and nothing else happens; an accepted connection calls ``then(client)``."""

    def on_connect(
        client: mqtt.Client,
        _userdata: object,
        _flags: object,
        reason: ReasonCode,
        _props: Properties | None = None,
    ) -> None:
        if reason.is_failure:
            log.log(level, "the broker refused %s: %s", who, reason)
            return
        then(client)

    return on_connect
