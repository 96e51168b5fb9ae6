"""The agent and the console against a real mosquitto with the fleet's ACL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from starlette.testclient import TestClient

from fleet.agent import Agent, AgentConfig
from fleet.console import Console
from fleet.mqtt.client import CONSOLE_USER
from fleet.protocol.models import HEALTH_EXPIRY_S, MAX_PAYLOAD_BYTES
from sandbox.mosquitto import MosquittoBroker
from statedir.journal import Journal

SITE = "zibo-gx"


def until(cond: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


class Watcher:
    """A subscriber with the console's rights that records everything under kiosk/v1/#."""

    def __init__(self, broker: MosquittoBroker) -> None:
        self.messages: list[tuple[str, dict[str, Any], bool]] = []
        self.expiry: dict[str, int | None] = {}  # topic → the newest message's expiry interval
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id="watcher", protocol=mqtt.MQTTv5
        )
        self.client.username_pw_set(CONSOLE_USER, broker.console_password)
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *_: c.subscribe("kiosk/v1/#", qos=1)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.topic.startswith("kiosk/v1/console/"):
            return  # the console's own presence and probes, not a station's
        self.messages.append((msg.topic, json.loads(msg.payload), bool(msg.retain)))
        props = msg.properties
        self.expiry[msg.topic] = getattr(props, "MessageExpiryInterval", None) if props else None

    def on(self, suffix: str) -> list[dict[str, Any]]:
        return [p for t, p, _ in self.messages if t.endswith(suffix)]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def watcher(broker: MosquittoBroker) -> Iterator[Watcher]:
    w = Watcher(broker)
    yield w
    w.close()


def config(
    tmp_path: Path, broker: MosquittoBroker, station: str = "st-0001", **kw: Any
) -> AgentConfig:
    return AgentConfig(
        site=SITE,
        station=station,
        host=broker.host,
        port=broker.port,
        state_dir=tmp_path / station,
        journal_path=tmp_path / station / "journal.sqlite3",
        health_interval_s=kw.pop("health_interval_s", 0.5),
        will_delay_s=kw.pop("will_delay_s", 1),
        **kw,
    )


def complete_transactions(journal: Journal, n: int) -> list[str]:
    ids = []
    for _ in range(n):
        txn = journal.begin_transaction("queue_ticket", lang="zh", elder=False)
        journal.finish_transaction(txn, outcome="completed", outputs=["thermal"])
        journal.rate(txn, 5)
        ids.append(txn)
    return ids


def test_birth_state_health_and_events_arrive_once(
    tmp_path: Path, broker: MosquittoBroker, watcher: Watcher
) -> None:
    cfg = config(tmp_path, broker)
    cfg.state_dir.mkdir(parents=True)
    journal = Journal(cfg.journal_path)
    journal.put_health(
        [{"device": "thermal_printer", "kind": "thermal_printer", "state": "ok", "reasons": []}]
    )
    journal.touch_ui_heartbeat()
    agent = Agent(cfg)
    agent.start()
    try:
        until(lambda: watcher.on("/state") and watcher.on("/birth") and watcher.on("/health"))
        assert watcher.on("/state")[-1]["online"] is True
        health = watcher.on("/health")[-1]
        assert health["ui_alive"] is True
        assert health["devices"]["thermal_printer"]["state"] == "ok"
        # a heartbeat not delivered within HEALTH_EXPIRY_S is dropped by the broker: never late
        expiry = watcher.expiry[f"kiosk/v1/{SITE}/st-0001/health"]
        assert expiry is not None and 0 < expiry <= HEALTH_EXPIRY_S
        txns = complete_transactions(journal, 5)
        until(lambda: len(watcher.on("/evt/rating")) == 5, what="ratings")
        until(lambda: journal.outbox_size() == 0, what="outbox drained")
        events = watcher.on("/evt/transaction") + watcher.on("/evt/rating")
        assert sorted({e["txn_id"] for e in events}) == sorted(txns)
        assert len({e["event_id"] for e in events}) == len(events) == 10
    finally:
        agent.stop()
    # the broker confirmed it before stop() returned; the watcher hears it a moment later
    until(lambda: watcher.on("/state")[-1]["reason"] == "shutdown", what="shutdown state")


def test_an_event_over_the_protocols_limit_is_not_sent_and_the_centre_is_told(
    tmp_path: Path, broker: MosquittoBroker, watcher: Watcher
) -> None:
    """Sent, it would be refused at every attempt and hold up the outbox behind it."""
    cfg = config(tmp_path, broker)
    cfg.state_dir.mkdir(parents=True)
    journal = Journal(cfg.journal_path)
    journal.queue_event("alert", {"kind": "maintenance", "detail": {"pad": "x" * 300_000}})
    txns = complete_transactions(journal, 1)
    agent = Agent(cfg)
    agent.start()
    try:
        until(lambda: watcher.on("/evt/rating"), what="the event behind the big one")
        until(lambda: watcher.on("/evt/alert"), what="the alert about it")
        [alert] = watcher.on("/evt/alert")
        assert alert["kind"] == "event_too_large" and alert["detail"]["type"] == "alert"
        assert alert["detail"]["bytes"] > MAX_PAYLOAD_BYTES
        assert [e["txn_id"] for e in watcher.on("/evt/rating")] == txns
        until(lambda: journal.outbox_size() == 0, what="outbox drained")
    finally:
        agent.stop()


@pytest.mark.slow
def test_broker_outage_keeps_events_and_backfills(tmp_path: Path, broker: MosquittoBroker) -> None:
    cfg = config(tmp_path, broker)
    cfg.state_dir.mkdir(parents=True)
    journal = Journal(cfg.journal_path)
    agent = Agent(cfg)
    agent.start()
    try:
        until(agent.connected.is_set)
        broker.stop()
        until(lambda: not agent.connected.is_set(), what="disconnect")
        txns = complete_transactions(journal, 20)  # transactions go on during the outage
        time.sleep(1)
        assert journal.outbox_size() == 40  # nothing is lost, nothing is dropped
        broker.start()
        watcher = Watcher(broker)
        try:
            until(lambda: journal.outbox_size() == 0, timeout=40, what="backfill")
            until(lambda: len(watcher.on("/evt/rating")) >= 20)
            events = watcher.on("/evt/transaction")
            unique = {e["event_id"]: e for e in events}
            assert sorted(e["txn_id"] for e in unique.values()) == sorted(txns)
            assert all(e["backfill"] for e in unique.values())
        finally:
            watcher.close()
    finally:
        agent.stop()


_AGENT = """
import sys, time
from pathlib import Path
from fleet.agent import Agent, AgentConfig
cfg = AgentConfig(site=sys.argv[1], station=sys.argv[2], host="127.0.0.1", port=int(sys.argv[3]),
                  state_dir=Path(sys.argv[4]), journal_path=Path(sys.argv[4]) / "j.sqlite3",
                  health_interval_s=0.5, will_delay_s=1)
a = Agent(cfg); a.start(); a.connected.wait(10); print("up", a.session, flush=True)
time.sleep(600)
"""


@pytest.mark.slow
def test_kill_9_fires_the_will_and_a_late_will_is_recognised(
    tmp_path: Path, broker: MosquittoBroker, watcher: Watcher
) -> None:
    state = tmp_path / "st-9"
    state.mkdir()
    console = Console(broker.host, broker.port, password=broker.console_password)
    console.start()

    def run() -> tuple[subprocess.Popen[str], int]:
        proc = subprocess.Popen(
            [sys.executable, "-c", _AGENT, SITE, "st-9", str(broker.port), str(state)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        line = proc.stdout.readline().split()
        assert line[0] == "up", line
        return proc, int(line[1])

    try:
        proc, first = run()
        until(
            lambda: any(
                s["station"] == "st-9" and s["status"] == "online" for s in console.snapshot()
            )
        )
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()
        until(
            lambda: any(not p["online"] for p in watcher.on("st-9/state")),
            timeout=15,
            what="the Will",
        )
        will = [p for p in watcher.on("st-9/state") if not p["online"]][-1]
        assert will["session"] == first and will["reason"] == "lost"
        until(lambda: console.snapshot()[0]["status"] == "offline")
        proc2, second = run()
        assert second > first
        until(lambda: console.snapshot()[0]["status"] == "online")
        # a late Will from the first session arrives after the second session is up
        late = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="replayer", protocol=mqtt.MQTTv5)
        late.username_pw_set(CONSOLE_USER, broker.console_password)
        late.connect(broker.host, broker.port)
        late.loop_start()
        late.publish(f"kiosk/v1/{SITE}/st-9/state", json.dumps(will), qos=1).wait_for_publish(5)
        time.sleep(0.5)
        late.disconnect()
        late.loop_stop()
        assert console.snapshot()[0]["status"] == "online"
        proc2.kill()
        proc2.wait()
        assert proc2.stdout is not None
        proc2.stdout.close()
    finally:
        console.stop()


def test_a_station_cannot_write_or_read_another_stations_topics(
    tmp_path: Path, broker: MosquittoBroker, watcher: Watcher
) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="st-0001", protocol=mqtt.MQTTv5)
    acks: dict[int, Any] = {}
    granted: list[Any] = []
    done = threading.Event()

    def on_publish(_c: Any, _u: Any, mid: int, reason: Any, _p: Any) -> None:
        acks[mid] = reason

    def on_subscribe(_c: Any, _u: Any, _mid: int, reasons: list[Any], _p: Any) -> None:
        granted.extend(reasons)
        done.set()

    received: list[str] = []
    client.on_publish = on_publish
    client.on_subscribe = on_subscribe
    client.on_message = lambda _c, _u, msg: received.append(msg.topic)
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        own = client.publish(f"kiosk/v1/{SITE}/st-0001/evt/help", b'{"event_id":"a"}', qos=1)
        other = client.publish(f"kiosk/v1/{SITE}/st-0002/evt/help", b'{"event_id":"b"}', qos=1)
        until(lambda: own.mid in acks and other.mid in acks)
        assert not acks[own.mid].is_failure
        assert acks[other.mid].is_failure and acks[other.mid].value == 0x87  # not authorised
        # mosquitto grants the subscription but never delivers what the ACL forbids reading
        client.subscribe(f"kiosk/v1/{SITE}/+/cmd/+", qos=1)
        assert done.wait(5)
        watcher.client.publish(f"kiosk/v1/{SITE}/st-0002/cmd/c1", b'{"do":"x"}', qos=1)
        watcher.client.publish(f"kiosk/v1/{SITE}/st-0001/cmd/c2", b'{"do":"y"}', qos=1)
        until(lambda: any(t.endswith("st-0001/cmd/c2") for t in received), what="own command")
        time.sleep(0.3)
        assert [t for t in received if "st-0002" in t] == []
        assert watcher.on("st-0002/evt/help") == []
    finally:
        client.disconnect()
        client.loop_stop()


def test_console_shows_stations_and_marks_them_stale(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    console = Console(broker.host, broker.port, password=broker.console_password)
    console.start()
    cfg = config(tmp_path, broker, health_interval_s=0.3)
    cfg.state_dir.mkdir(parents=True)
    agent = Agent(cfg)
    agent.start()
    try:
        until(lambda: [s["status"] for s in console.snapshot()] == ["online"])
        console.add_user("tech", "correct horse battery", "technician")
        http = TestClient(console.app, base_url="https://testserver")
        form = http.get("/login").text.split('name="csrf_token" value="')[1].split('"')[0]
        http.post(
            "/login", data={"name": "tech", "password": "correct horse battery", "csrf_token": form}
        )
        [station] = http.get("/api/stations").json()
        assert (station["site"], station["station"]) == (SITE, "st-0001")
        page = http.get("/").text
        assert "st-0001" in page and "在线" in page
        agent._stop.set()  # heartbeats stop, the connection stays: only the timer can tell
        until(lambda: console.snapshot()[0]["status"] == "stale", timeout=10, what="stale")
    finally:
        agent.stop()
        console.stop()
