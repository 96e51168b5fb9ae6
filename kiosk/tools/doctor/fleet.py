"""``kiosk doctor``: the station's certificate and the broker, over TLS and MQTT as the agent
connects."""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading
from pathlib import Path
from typing import Any

from kiosk.config import Config
from kiosk.tools.doctor.base import (
    Check,
    Options,
    _tcp,
)

# --- the fleet ------------------------------------------------------------------------------------


def _tls_files(config: Config) -> Any:
    from fleet.mqtt.client import TlsFiles

    f = config.fleet
    paths = (f.ca_file, f.cert_file, f.key_file)
    if not any(paths):
        return None
    if not all(paths):
        raise ValueError("[fleet] ca_file, cert_file and key_file: set all three or none")
    return TlsFiles(Path(f.ca_file), Path(f.cert_file), Path(f.key_file))


def check_certificate(config: Config, opts: Options) -> Check:
    from fleet.trust.pki import PkiError, common_name, load_cert

    try:
        files = _tls_files(config)
    except ValueError as err:
        return Check("certificate", False, str(err), "set all three in [fleet]")
    if files is None:
        return Check("certificate", True, "no TLS configured (plain MQTT)")
    for path in (files.ca_file, files.cert_file, files.key_file):
        if not os.access(path, os.R_OK):
            return Check(
                "certificate",
                False,
                f"{path} is missing or unreadable",
                "provision the station (fleet CA, its certificate and key); "
                "the key belongs to the kiosk user, mode 0600",
            )
    try:
        cert = load_cert(files.cert_file)
        cn = common_name(cert.subject)
    except PkiError as err:
        return Check("certificate", False, f"{files.cert_file}: {err}", "provision it again")
    left = cert.not_valid_after_utc - dt.datetime.now(dt.UTC)
    until = cert.not_valid_after_utc.strftime("%Y-%m-%d %H:%M UTC")
    if cn != config.station.id:
        return Check(
            "certificate",
            False,
            f"issued to {cn}, but this station is {config.station.id}",
            "issue a certificate for this station id (the broker's ACL uses the CN)",
        )
    if left.total_seconds() <= 0:
        return Check(
            "certificate",
            False,
            f"expired {until}",
            "the broker refuses it: issue a new one on the bench (fleet CA) and install it",
        )
    if left < dt.timedelta(days=opts.cert_warn_days):
        return Check(
            "certificate",
            False,
            f"expires in {left.days} days ({until}): the automatic renewal did not happen",
            "check the agent's log (journalctl -u kiosk-agent) for evt/csr, and the console "
            "for the station's renewal; or issue a new certificate on the bench",
        )
    return Check("certificate", True, f"CN {cn}, valid until {until} ({left.days} days)")


def _mqtt_connect(config: Config, files: Any, host: str, port: int) -> str:
    """Connect as this station over TLS with a client id of the doctor's own; "" if accepted."""

    from fleet.mqtt.client import new_client

    answered = threading.Event()
    reason: list[str] = []

    def on_connect(*args: Any) -> None:
        code = args[3]
        reason.append("" if not code.is_failure else str(code))
        answered.set()

    # never the station id itself: the broker would push the running agent's session off
    client = new_client(f"{config.station.id}-doctor", tls=files)
    client.on_connect = on_connect
    try:
        client.connect(host, port, keepalive=10)
    except (OSError, ValueError) as err:
        return f"TLS: {err}"
    client.loop_start()
    try:
        if not answered.wait(10):
            return "no CONNACK in 10 s"
        return reason[0]
    finally:
        client.disconnect()
        client.loop_stop()


def _peer_expiry(host: str, port: int, files: Any) -> str:
    from cryptography import x509

    from fleet.mqtt.client import client_context

    context = client_context(files)
    with (
        socket.create_connection((host, port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    if der is None:
        return ""
    when = x509.load_der_x509_certificate(der).not_valid_after_utc
    return f"broker certificate valid until {when:%Y-%m-%d}"


def check_broker(config: Config, _opts: Options) -> Check:
    if not config.fleet.broker:
        return Check("broker", True, "no broker configured (no fleet agent)")
    host, _, port_text = config.fleet.broker.rpartition(":")
    port = int(port_text)
    if not _tcp(host, port):
        return Check(
            "broker",
            False,
            f"{config.fleet.broker} does not answer",
            "check the network and the broker (systemctl status mosquitto on the broker)",
        )
    try:
        files = _tls_files(config)
    except ValueError:
        files = None
    if files is None or not all(os.access(p, os.R_OK) for p in (files.cert_file, files.key_file)):
        return Check("broker", True, f"{config.fleet.broker} answers (TCP)")
    try:
        refused = _mqtt_connect(config, files, host, port)
        expiry = "" if refused else _peer_expiry(host, port, files)
    except (OSError, ValueError) as err:
        refused, expiry = f"TLS: {err}", ""
    if refused:
        return Check(
            "broker",
            False,
            f"{config.fleet.broker} refuses this station: {refused}"[:160],
            "check the station's certificate (row above), the fleet CA file, and that the "
            "broker's certificate names the host in [fleet] broker",
        )
    return Check("broker", True, f"{config.fleet.broker}: TLS and MQTT ok, {expiry}")
