"""The fleet agent (``kiosk agent``): presence, birth, health and store-and-forward events.

A process of its own beside the UI, so that a frozen UI is still reported. It meets the UI only in
the journal (SQLite, WAL): the outbox of events, the device health the UI writes, the UI's
heartbeat. Over MQTT v5 it keeps:

- ``state`` (retained) with a Will of the same shape (``online: false``) and a will delay, so a
  quick reconnect does not flap; a ``session`` counter kept on disk and raised at every connect
  lets the console recognise a late Will from an older session. A clean stop says
  ``reason: shutdown``.
- ``birth`` (retained): versions, hardware summary, capabilities.
- ``health`` every interval and whenever the device snapshot changes.
- events: each outbox event is published QoS 1 to ``evt/{type}`` with its ``event_id`` and is
  removed from the journal only when the broker acknowledged it; events from before this
  connection are marked ``backfill``.

No payload carries personal data: the journal holds none, and the agent sends only fields it
builds itself.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import signal
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from fleet.agent import renewal
from fleet.agent.catalog_update import MAX_CATALOG_BYTES, CatalogUpdater
from fleet.agent.commands import Dispatcher
from fleet.mqtt.backoff import Backoff
from fleet.mqtt.client import (
    TlsFiles,
    client_context,
    load_client_certificate,
    new_client,
    on_accepted,
)
from fleet.protocol.models import (
    CALL_META,
    CAPABILITIES,
    HEALTH_EXPIRY_S,
    MAX_PACKET_BYTES,
    MAX_PAYLOAD_BYTES,
    Birth,
    Capability,
    DeviceReport,
    Health,
    State,
    StateReason,
)
from fleet.protocol.topics import CONSOLE_STATE, StationTopics, dumps, loads
from flows.models import DeviceState
from statedir.db import BUSY_TIMEOUT_S
from statedir.journal import Journal

log = logging.getLogger("kiosk.agent")

UI_HEARTBEAT_S = 5.0
MAX_IN_FLIGHT = 200  # events handed to paho and not yet acknowledged (and forgotten)


@dataclass(frozen=True)
class AgentConfig:
    site: str
    station: str
    host: str
    port: int
    state_dir: Path
    journal_path: Path
    health_interval_s: float = 60.0
    will_delay_s: int = 5  # a reconnect within this cancels the Will: offline in seconds otherwise
    app_version: str = "0.1.0"
    username: str | None = None
    password: str | None = None
    keepalive_s: int = 30
    # the catalog store (fleet.agent.catalog_update); None: "catalogs" beside the journal
    catalog_dir: Path | None = None
    catalog_max_bytes: int = MAX_CATALOG_BYTES
    # overall deadlines, from the start: each catalog download, and all those of one update
    catalog_timeout_s: float = 30.0
    catalog_update_timeout_s: float = 120.0
    # TLS (all three or none): the fleet CA, this station's certificate (CN = station) and key
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    renew_before_s: float = renewal.DEFAULT_WINDOW_S  # ask for a new certificate this early
    renewal_check_s: float = 3600.0
    tls_reload_grace_s: float = 1.0  # lets a command's result leave before the reconnect
    reconnect_min_s: float = 1.0  # backoff with jitter (fleet.mqtt.backoff) between attempts
    reconnect_max_s: float = 60.0
    # SQLite's busy timeout on the journal: a write waits this long for another process's lock
    journal_busy_timeout_s: float = BUSY_TIMEOUT_S


class Agent:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.alive: Callable[[], object] = lambda: None  # run_agent sets systemd's watchdog
        self.topics = StationTopics(config.site, config.station)
        config.state_dir.mkdir(parents=True, exist_ok=True)
        self.journal = Journal(config.journal_path, busy_timeout_s=config.journal_busy_timeout_s)
        self.session = self._load_session()
        self.started = time.monotonic()
        self.seq = 0
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._inflight: dict[int, str] = {}  # mid → event id
        self._inflight_ids: set[str] = set()
        # PUBACKs for mids not recorded (yet): an event's ack may beat publish() returning, and
        # health, state, birth and results are acked here too; each is kept with its time, so
        # a stale ack never matches an event that later gets the same (wrapped) mid
        self._early_acks: dict[int, tuple[ReasonCode, float]] = {}
        self._acked: list[str] = []  # acknowledged, to leave the journal in one transaction
        # published by this process and not yet removed: a re-send is backfill even when the
        # journal could not count the attempt (a locked or full disk)
        self._sent_ids: set[str] = set()
        self._connected_at = 0.0
        self._last_devices = ""
        self._call_noted: str | None = None  # the kiosk's call audio, as the birth last said
        self.published = 0
        self.tls_files = TlsFiles.from_optional(config.ca_file, config.cert_file, config.key_file)
        self._ssl: ssl.SSLContext | None = None
        self._tls_reconnect = threading.Event()
        if self.tls_files is not None:
            renewal.complete_interrupted_install(self.tls_files)
            self._ssl = client_context(self.tls_files)  # kept: a renewed pair is loaded into it
        self.client = new_client(
            config.station,
            tls=self._ssl,
            username=config.username or None,
            password=config.password,
            reconnect_s=(1, 30),
        )
        self._backoff = Backoff(config.reconnect_min_s, config.reconnect_max_s)
        self.client.on_connect_fail = self._on_connect_fail
        self.client.on_connect = on_accepted(log, "this station", self._on_connect)
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.on_message = self._on_message
        self._threads: list[threading.Thread] = []
        self.catalogs = CatalogUpdater(  # desired → verified catalog → reported, on its thread
            config.catalog_dir or config.journal_path.parent / "catalogs",
            self._publish_reported,
            max_bytes=config.catalog_max_bytes,
            timeout_s=config.catalog_timeout_s,
            update_timeout_s=config.catalog_update_timeout_s,
            serving=self._serving,
        )
        self.commands = Dispatcher(  # cmd/{id}: handlers by name, see fleet.agent.commands
            journal=self.journal,
            topics=self.topics,
            client=self.client,
            birth=self._birth,
            state_dir=config.journal_path.parent,
        )
        self.commands.register(renewal.command_handler(self))  # install_certificate

    # --- life cycle ----------------------------------------------------------------------------

    def start(self) -> None:
        self._prepare_session()
        connect = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        connect.MaximumPacketSize = MAX_PACKET_BYTES  # the broker sends nothing larger
        self.client.connect_async(
            self.config.host,
            self.config.port,
            keepalive=self.config.keepalive_s,
            clean_start=True,
            properties=connect,
        )
        self.client.loop_start()
        self.commands.start()
        self.catalogs.start()
        for target, name in (
            (self._health_loop, "agent-health"),
            (self._drain_loop, "agent-outbox"),
            (self._renewal_loop, "agent-renewal"),
        ):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """A clean stop: say so in ``state``, then disconnect without the Will."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self.commands.stop()
        self.catalogs.stop()
        if self.connected.is_set():
            info = self.client.publish(
                self.topics.state, self._state(False, "shutdown"), qos=1, retain=True
            )
            try:
                info.wait_for_publish(timeout=5)
            except (RuntimeError, ValueError):
                log.warning("shutdown state not confirmed")
        self.client.disconnect()
        self.client.loop_stop()
        # paho 2.1 leaves loop_start's wake-up socket pair open after loop_stop; a process that
        # starts and stops agents (the console's tests, a restart in place) would leak two fds
        self.client._reset_sockets(sockpair_only=True)
        self._flush_acks()
        self.journal.close()

    # --- session and presence ------------------------------------------------------------------

    def _session_file(self) -> Path:
        return self.config.state_dir / "mqtt-session"

    def _load_session(self) -> int:
        try:
            return int(self._session_file().read_text().strip())
        except (FileNotFoundError, ValueError):
            return 0

    def _prepare_session(self) -> None:
        """Raise the session counter on disk and arm the Will that carries it."""
        self.session += 1
        path = self._session_file()
        tmp = path.with_suffix(".tmp")
        tmp.write_text(str(self.session))
        os.replace(tmp, path)
        props = Properties(PacketTypes.WILLMESSAGE)  # type: ignore[no-untyped-call]
        props.WillDelayInterval = self.config.will_delay_s
        self.client.will_set(
            self.topics.state, self._state(False, "lost"), qos=1, retain=True, properties=props
        )

    def _state(self, online: bool, reason: StateReason) -> bytes:
        state = State(online=online, session=self.session, ts=time.time(), reason=reason)
        return dumps(state.dump())

    def _birth(self) -> bytes:
        catalog = self.journal.get_meta("catalog_version")
        birth = Birth(
            station=self.config.station,
            site=self.config.site,
            app_version=self.config.app_version,
            catalog_version=int(catalog) if catalog and catalog.isdigit() else None,
            hardware={"machine": platform.machine(), "system": platform.system()},
            capabilities=self._capabilities(),
            cert_expiry=self._cert_expiry(),
            session=self.session,
            ts=time.time(),
        )
        return dumps(birth.dump())

    def _capabilities(self) -> list[Capability]:
        """Every station's, and ``call`` where the kiosk noted that it can take one."""
        self._call_noted = self.journal.get_meta(CALL_META)
        call: list[Capability] = ["call"] if self._call_noted == "1" else []
        return [*CAPABILITIES, *call]

    def _on_connect(self, client: mqtt.Client) -> None:
        """The broker took the connection (:func:`fleet.mqtt.client.on_accepted`)."""
        self._connected_at = time.time()
        self._backoff.reset()
        client.publish(self.topics.state, self._state(True, "connect"), qos=1, retain=True)
        client.publish(self.topics.birth, self._birth(), qos=1, retain=True)
        client.subscribe(CONSOLE_STATE, qos=1)
        client.subscribe(self.topics.command("+"), qos=1)
        client.subscribe(self.topics.desired, qos=1)
        last_report = self.catalogs.last_report()
        if last_report is not None:  # made while offline, perhaps
            self._publish_reported(last_report)
        self.connected.set()
        log.info(
            "connected to %s:%s (session %d)", self.config.host, self.config.port, self.session
        )
        self._publish_health()

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        _flags: Any,
        reason: ReasonCode,
        _props: Properties | None,
    ) -> None:
        self.connected.clear()
        with self._lock:
            self._inflight.clear()
            self._inflight_ids.clear()
            self._early_acks.clear()
        if not self._stop.is_set():
            log.warning("disconnected (%s); reconnecting", reason)
            self._pace_reconnect()
            self._prepare_session()  # the next connect is a new session with its own Will
            if self._tls_reconnect.is_set():  # our own disconnect for a renewed certificate:
                self._tls_reconnect.clear()  # paho's loop goes on and connects again
                self.client.connect_async(
                    self.config.host,
                    self.config.port,
                    keepalive=self.config.keepalive_s,
                    clean_start=True,
                )

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        if self.commands.on_message(message):
            return
        if message.topic == self.topics.desired:
            try:
                self.catalogs.submit(loads(bytes(message.payload)))
            except ValueError:
                log.warning("desired is not a JSON object; ignored")
            return
        if message.topic == CONSOLE_STATE:
            try:
                online = bool(loads(bytes(message.payload)).get("online"))
            except ValueError:
                return
            if online:  # the console came (back): it may have missed our birth
                self.client.publish(self.topics.birth, self._birth(), qos=1, retain=True)

    def _serving(self) -> int | None:
        """The catalog version the kiosk serves residents with (it notes it in the journal)."""
        noted = self.journal.get_meta("catalog_version")
        return int(noted) if noted and noted.isdigit() else None

    def _publish_reported(self, report: dict[str, Any]) -> None:
        """``reported``: retained, QoS 1; paho queues it while offline (and connect resends)."""
        self.client.publish(self.topics.reported, dumps(report), qos=1, retain=True)

    # --- health --------------------------------------------------------------------------------

    def _health(self) -> dict[str, Any]:
        beat = self.journal.ui_heartbeat()
        devices = self.journal.health_snapshot()
        self.seq += 1
        health = Health(
            seq=self.seq,
            uptime=round(time.monotonic() - self.started, 1),
            ui_alive=beat is not None and time.time() - beat < 3 * UI_HEARTBEAT_S,
            devices={name[:64]: _device_report(d) for name, d in list(devices.items())[:32]},
            disk_free_mib=shutil.disk_usage(self.config.state_dir).free // (1024 * 1024),
            last_txn_ts=self.journal.last_transaction_ts(),
            outbox=self.journal.outbox_size(),
            interval_s=self.config.health_interval_s,
            ts=time.time(),
        )
        return health.dump()

    def _publish_health(self) -> None:
        health = self._health()
        self._last_devices = json.dumps(health["devices"], sort_keys=True)
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.MessageExpiryInterval = HEALTH_EXPIRY_S  # a late heartbeat is the past
        self.client.publish(self.topics.health, dumps(health), qos=1, properties=props)

    def _health_loop(self) -> None:
        next_at = time.monotonic() + self.config.health_interval_s
        while not self._stop.wait(1.0):
            self.alive()  # the watchdog: alive even while the broker cannot be reached
            if not self.connected.is_set():
                continue
            try:
                self.catalogs.check_serving()  # staged → applied once the kiosk serves it
            except Exception:
                log.exception("checking the catalog the kiosk serves failed")
            devices = json.dumps(
                {
                    n: {"state": d.get("state"), "reasons": d.get("reasons", [])}
                    for n, d in self.journal.health_snapshot().items()
                },
                sort_keys=True,
            )
            if self.journal.get_meta(CALL_META) != self._call_noted:  # the kiosk (re)started
                self.client.publish(self.topics.birth, self._birth(), qos=1, retain=True)
            if time.monotonic() >= next_at or devices != self._last_devices:
                self._publish_health()
                next_at = time.monotonic() + self.config.health_interval_s

    # --- transport security and reconnect pacing ----------------------------------------------

    def _pace_reconnect(self) -> None:
        """Set paho's wait before its next attempt to a fresh draw of backoff with jitter."""
        delay = self._backoff.next_delay()
        # paho only adds the delay to a clock reading, so a float works though it is typed int
        self.client.reconnect_delay_set(delay, delay)  # type: ignore[arg-type]

    def _on_connect_fail(self, _client: mqtt.Client, _userdata: Any) -> None:
        log.warning("could not connect to %s:%s", self.config.host, self.config.port)
        self._pace_reconnect()

    def _cert_expiry(self) -> str | None:
        if self.tls_files is None:
            return None
        expires = renewal.certificate_expiry(self.tls_files)
        return None if expires is None else expires.isoformat()

    def _renewal_loop(self) -> None:
        while self.tls_files is not None:
            try:
                renewal.request_renewal(
                    self.tls_files,
                    self.config.station,
                    self.journal,
                    window_s=self.config.renew_before_s,
                )
            except Exception:
                log.exception("asking for a new certificate failed")
            if self._stop.wait(self.config.renewal_check_s):
                return

    def reload_certificate(self) -> None:
        """Present the newly installed pair: reload it and reconnect, in this process only."""
        thread = threading.Thread(target=self._reconnect_tls, name="agent-tls", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _reconnect_tls(self) -> None:
        if self._stop.wait(self.config.tls_reload_grace_s) or self._ssl is None:
            return
        assert self.tls_files is not None
        load_client_certificate(self._ssl, self.tls_files)
        if self.client.is_connected():  # else the next attempt presents the new pair anyway
            log.info("certificate renewed; reconnecting with it")
            self._tls_reconnect.set()
            self.client.disconnect()  # clean, so no Will; see _on_disconnect

    # --- store and forward ---------------------------------------------------------------------

    def drain_once(self, limit: int = 100) -> int:
        """Publish outbox events not yet in flight; returns how many were handed to paho."""
        self._flush_acks()
        if not self.connected.is_set():
            return 0
        window = len(self._inflight_ids)
        if window >= MAX_IN_FLIGHT:
            return 0
        pending = self.journal.pending_events(limit + window)  # the in-flight ones come first
        events = [e for e in pending if e.id not in self._inflight_ids][:limit]
        sent = 0
        for event in events:
            payload = dict(event.payload)
            payload["backfill"] = (
                event.attempts > 0
                or event.id in self._sent_ids
                or event.created < self._connected_at - 1
            )
            payload["station"] = self.config.station
            data = dumps(payload)
            if len(data) > MAX_PAYLOAD_BYTES:
                self._refuse_event(event.id, event.type, len(data))
                continue
            # never hold our lock while paho takes its own: its network thread holds that one
            # while it calls _on_publish, which takes ours (lock-order inversion, a deadlock)
            called = time.monotonic()
            info = self.client.publish(self.topics.event(event.type), data, qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                break
            with self._lock:
                ack = self._early_acks.pop(info.mid, None)
                early = ack[0] if ack is not None and ack[1] >= called else None
                if early is None:
                    self._inflight[info.mid] = event.id
                    self._inflight_ids.add(event.id)
            if early is not None:  # the PUBACK came before we had recorded the mid
                self._acknowledged(event.id, early)
            sent += 1
        if sent:
            ids = [e.id for e in events[:sent]]
            with self._lock:
                self._sent_ids.update(ids)
            self.journal.mark_attempt(ids)
        return sent

    def _refuse_event(self, event_id: str, kind: str, size: int) -> None:
        """An event over the protocol's limit would be refused by the broker (and the console)
        at every attempt, and hold up the outbox behind it: it leaves the outbox, and the
        centre is told that one was not sent (the alert is small; it goes)."""
        log.error(
            "event %s (%s) is %d bytes, over %d: not sent", event_id, kind, size, MAX_PAYLOAD_BYTES
        )
        self.journal.ack_events([event_id])
        self.journal.alert("event_too_large", {"type": kind[:32], "bytes": size})

    def _drain_loop(self) -> None:
        while not self._stop.is_set():
            try:
                sent = self.drain_once()
            except Exception:
                log.exception("draining the outbox failed")
                sent = 0
            if not sent:  # soon again while acknowledgements are due, else at leisure
                self._stop.wait(0.01 if self._inflight_ids else 0.2)

    def _on_publish(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        mid: int,
        reason: ReasonCode,
        _props: Properties,
    ) -> None:
        with self._lock:
            event_id = self._inflight.pop(mid, None)
            if event_id is None:
                self._early_acks[mid] = (reason, time.monotonic())
                return
        self._acknowledged(event_id, reason)

    def _acknowledged(self, event_id: str, reason: ReasonCode) -> None:
        if reason.is_failure:
            log.error("broker refused event %s: %s", event_id, reason)
            with self._lock:
                self._inflight_ids.discard(event_id)
            return
        with self._lock:  # acknowledged: it leaves the journal at the next _flush_acks, and
            self._acked.append(event_id)  # until the journal forgot it, it is not sent again
            self._inflight_ids.add(event_id)
        self.published += 1

    def _flush_acks(self) -> None:
        """Remove acknowledged events from the journal, many in one SQLite transaction."""
        with self._lock:
            batch, self._acked = self._acked, []
            if len(self._early_acks) > 1000:  # acks of publishes that were not events
                old = time.monotonic() - 60
                self._early_acks = {m: a for m, a in self._early_acks.items() if a[1] >= old}
        if batch:
            try:
                self.journal.ack_events(batch)
            except Exception:  # a full disk, a locked database: keep them and try again
                log.exception("removing %d acknowledged events failed", len(batch))
                with self._lock:
                    self._acked = batch + self._acked
                return
            with self._lock:
                self._inflight_ids.difference_update(batch)
                self._sent_ids.difference_update(batch)


def run_agent(
    config: AgentConfig,
    *,
    ready: Callable[[], object] = lambda: None,
    alive: Callable[[], object] = lambda: None,
) -> int:
    """Run until SIGTERM or SIGINT, then stop cleanly; ``ready`` and ``alive`` tell systemd."""
    agent = Agent(config)
    agent.alive = alive
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    agent.start()
    ready()
    done.wait()
    agent.stop()
    return 0


def _device_report(record: dict[str, Any]) -> DeviceReport:
    """A device's health as the UI wrote it, within the protocol's limits; a record that does
    not fit (an older UI, a damaged row) is reported as unknown rather than stopping health."""
    reasons = [str(r)[:64] for r in record.get("reasons", []) if str(r)][:16]
    try:
        return DeviceReport(state=record.get("state", "unknown"), reasons=reasons)
    except ValueError:
        return DeviceReport(state=DeviceState.UNKNOWN, reasons=["unreadable_record"])
