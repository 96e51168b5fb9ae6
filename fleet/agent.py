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
import random
import shutil
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from fleet.topics import CONSOLE_STATE, StationTopics, dumps, loads
from flows.journal import Journal

log = logging.getLogger("kiosk.agent")

UI_HEARTBEAT_S = 5.0


@dataclass(frozen=True)
class AgentConfig:
    site: str
    station: str
    host: str
    port: int
    state_dir: Path
    journal_path: Path
    health_interval_s: float = 60.0
    will_delay_s: int = 10
    app_version: str = "0.1.0"
    username: str | None = None
    password: str | None = None
    keepalive_s: int = 30


class Agent:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.topics = StationTopics(config.site, config.station)
        config.state_dir.mkdir(parents=True, exist_ok=True)
        self.journal = Journal(config.journal_path)
        self.session = self._load_session()
        self.started = time.monotonic()
        self.seq = 0
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._inflight: dict[int, str] = {}  # mid → event id
        self._inflight_ids: set[str] = set()
        self._early_acks: dict[int, ReasonCode] = {}  # PUBACKs for mids not yet recorded
        self._connected_at = 0.0
        self._last_devices = ""
        self.published = 0
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=config.station,
            protocol=mqtt.MQTTv5,
        )
        if config.username:
            self.client.username_pw_set(config.username, config.password)
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.on_message = self._on_message
        self._threads: list[threading.Thread] = []

    # --- life cycle ----------------------------------------------------------------------------

    def start(self) -> None:
        self._prepare_session()
        self.client.connect_async(
            self.config.host,
            self.config.port,
            keepalive=self.config.keepalive_s,
            clean_start=True,
        )
        self.client.loop_start()
        for target, name in (
            (self._health_loop, "agent-health"),
            (self._drain_loop, "agent-outbox"),
        ):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """A clean stop: say so in ``state``, then disconnect without the Will."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
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

    def _state(self, online: bool, reason: str) -> bytes:
        return dumps(
            {"online": online, "session": self.session, "ts": time.time(), "reason": reason}
        )

    def _birth(self) -> bytes:
        catalog = self.journal.get_meta("catalog_version")
        return dumps(
            {
                "station": self.config.station,
                "site": self.config.site,
                "app_version": self.config.app_version,
                "catalog_version": catalog,
                "hardware": {"machine": platform.machine(), "system": platform.system()},
                "capabilities": ["id_card", "a4", "thermal", "voice"],
                "cert_expiry": None,
                "session": self.session,
                "ts": time.time(),
            }
        )

    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: Any,
        _flags: Any,
        reason: ReasonCode,
        _props: Properties | None,
    ) -> None:
        if reason.is_failure:
            log.warning("broker refused the connection: %s", reason)
            return
        self._connected_at = time.time()
        client.publish(self.topics.state, self._state(True, "connect"), qos=1, retain=True)
        client.publish(self.topics.birth, self._birth(), qos=1, retain=True)
        client.subscribe(CONSOLE_STATE, qos=1)
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
            time.sleep(random.uniform(0, 0.5))  # noqa: S311  (jitter, not cryptography)
            self._prepare_session()  # the next connect is a new session with its own Will

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        if message.topic == CONSOLE_STATE:
            try:
                online = bool(loads(bytes(message.payload)).get("online"))
            except ValueError:
                return
            if online:  # the console came (back): it may have missed our birth
                self.client.publish(self.topics.birth, self._birth(), qos=1, retain=True)

    # --- health --------------------------------------------------------------------------------

    def _health(self) -> dict[str, Any]:
        beat = self.journal.ui_heartbeat()
        devices = self.journal.health_snapshot()
        self.seq += 1
        return {
            "seq": self.seq,
            "uptime": round(time.monotonic() - self.started, 1),
            "ui_alive": beat is not None and time.time() - beat < 3 * UI_HEARTBEAT_S,
            "devices": {
                name: {"state": d.get("state"), "reasons": d.get("reasons", [])}
                for name, d in devices.items()
            },
            "disk_free_mib": shutil.disk_usage(self.config.state_dir).free // (1024 * 1024),
            "last_txn_ts": self.journal.last_transaction_ts(),
            "outbox": self.journal.outbox_size(),
            "interval_s": self.config.health_interval_s,
            "ts": time.time(),
        }

    def _publish_health(self) -> None:
        health = self._health()
        self._last_devices = json.dumps(health["devices"], sort_keys=True)
        self.client.publish(self.topics.health, dumps(health), qos=1)

    def _health_loop(self) -> None:
        next_at = time.monotonic() + self.config.health_interval_s
        while not self._stop.wait(1.0):
            if not self.connected.is_set():
                continue
            devices = json.dumps(
                {
                    n: {"state": d.get("state"), "reasons": d.get("reasons", [])}
                    for n, d in self.journal.health_snapshot().items()
                },
                sort_keys=True,
            )
            if time.monotonic() >= next_at or devices != self._last_devices:
                self._publish_health()
                next_at = time.monotonic() + self.config.health_interval_s

    # --- store and forward ---------------------------------------------------------------------

    def drain_once(self, limit: int = 100) -> int:
        """Publish outbox events not yet in flight; returns how many were handed to paho."""
        if not self.connected.is_set():
            return 0
        events = [e for e in self.journal.pending_events(limit) if e.id not in self._inflight_ids]
        sent = 0
        for event in events:
            payload = dict(event.payload)
            payload["backfill"] = event.attempts > 0 or event.created < self._connected_at - 1
            payload["station"] = self.config.station
            # never hold our lock while paho takes its own: its network thread holds that one
            # while it calls _on_publish, which takes ours (lock-order inversion, a deadlock)
            info = self.client.publish(self.topics.event(event.type), dumps(payload), qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                break
            with self._lock:
                early = self._early_acks.pop(info.mid, None)
                if early is None:
                    self._inflight[info.mid] = event.id
                    self._inflight_ids.add(event.id)
            if early is not None:  # the PUBACK came before we had recorded the mid
                self._acknowledged(event.id, early)
            sent += 1
        if sent:
            self.journal.mark_attempt([e.id for e in events[:sent]])
        return sent

    def _drain_loop(self) -> None:
        while not self._stop.is_set():
            try:
                sent = self.drain_once()
            except Exception:
                log.exception("draining the outbox failed")
                sent = 0
            if not sent:
                self._stop.wait(0.2)

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
                self._early_acks[mid] = reason
                return
        self._acknowledged(event_id, reason)
        with self._lock:  # only now: until the journal forgot it, it must not be sent again
            self._inflight_ids.discard(event_id)

    def _acknowledged(self, event_id: str, reason: ReasonCode) -> None:
        if reason.is_failure:
            log.error("broker refused event %s: %s", event_id, reason)
            return
        self.journal.ack_events([event_id])  # acknowledged: now it may leave the journal
        self.published += 1


def run_agent(config: AgentConfig) -> int:
    """Run until SIGTERM or SIGINT, then stop cleanly."""
    agent = Agent(config)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    agent.start()
    done.wait()
    agent.stop()
    return 0
