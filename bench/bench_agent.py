"""The fleet agent's store and forward, on a private mosquitto started for the run.

``agent.outbox_to_raw_qos1``: outbox drain rate of the real :class:`fleet.agent.Agent` (events
read from the journal, published QoS 1, removed from the journal once acknowledged), over the rate
of a bare paho client publishing the same number of messages of the same size QoS 1 to the same
broker until every PUBACK came back, in the same run. Goal ≥ 0.5.

``agent.reconnect_to_first_event_ms``: the broker is restarted while an event waits in the
outbox → that event reaches a subscriber; median over the rounds, ms. It is mostly the agent's
reconnect delay (paho's ``reconnect_delay_set(min_delay=1)``).
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from fleet.agent import Agent, AgentConfig
from fleet.mqtt.client import CONSOLE_USER
from fleet.protocol.topics import StationTopics, dumps
from sandbox.mosquitto import MosquittoBroker
from statedir.journal import Journal

SITE = "bench-site"


def _config(root: Path, broker: MosquittoBroker, station: str) -> AgentConfig:
    return AgentConfig(
        site=SITE,
        station=station,
        host=broker.host,
        port=broker.port,
        state_dir=root / station / "agent",
        journal_path=root / station / "journal.sqlite3",
        health_interval_s=3600.0,
        will_delay_s=1,
    )


def _fill(journal: Journal, n: int) -> int:
    """n transaction events; returns the size of one as the agent publishes it."""
    for _ in range(n):
        txn = journal.begin_transaction("queue_ticket", lang="zh", elder=False)
        journal.finish_transaction(txn, outcome="completed", outputs=["thermal"])
    event = journal.pending_events(1)[0]
    return len(dumps(dict(event.payload, backfill=False, station="st-bench")))


def raw_qos1_seconds(broker: MosquittoBroker, n: int, size: int) -> float:
    """A bare paho client: n QoS 1 publishes of ``size`` bytes until the last PUBACK."""
    station = "st-raw"
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=station, protocol=mqtt.MQTTv5)
    acked = 0
    done = threading.Event()

    def on_publish(*_args: object) -> None:
        nonlocal acked
        acked += 1
        if acked == n:
            done.set()

    client.on_publish = on_publish
    client.connect(broker.host, broker.port)
    client.loop_start()
    topic = StationTopics(SITE, station).event("transaction")
    payload = b"x" * size
    try:
        t0 = time.perf_counter()
        for _ in range(n):
            client.publish(topic, payload, qos=1)
        if not done.wait(120):
            raise RuntimeError(f"raw publisher: {acked} of {n} acknowledged")
        return time.perf_counter() - t0
    finally:
        client.disconnect()
        client.loop_stop()


def agent_drain_seconds(root: Path, broker: MosquittoBroker, n: int) -> tuple[float, int]:
    """The real agent drains n journal events; from connected to an empty outbox."""
    cfg = _config(root, broker, "st-drain")
    cfg.journal_path.parent.mkdir(parents=True, exist_ok=True)
    journal = Journal(cfg.journal_path)
    size = _fill(journal, n)
    agent = Agent(cfg)
    agent.start()
    try:
        if not agent.connected.wait(10):
            raise RuntimeError("the agent did not connect")
        t0 = time.perf_counter()
        deadline = t0 + 300
        while journal.outbox_size():
            if time.perf_counter() > deadline:
                raise RuntimeError("the agent did not drain its outbox")
            time.sleep(0.001)
        return time.perf_counter() - t0, size
    finally:
        agent.stop()
        journal.close()


def reconnect_ms(root: Path, broker: MosquittoBroker, rounds: int) -> float:
    """Broker restarted with an event waiting → the event at a fresh subscriber; median ms."""
    cfg = _config(root, broker, "st-reconnect")
    cfg.journal_path.parent.mkdir(parents=True, exist_ok=True)
    journal = Journal(cfg.journal_path)
    agent = Agent(cfg)
    agent.start()
    samples: list[float] = []
    try:
        if not agent.connected.wait(10):
            raise RuntimeError("the agent did not connect")
        topic = StationTopics(SITE, cfg.station).event("help")
        for _ in range(rounds):
            broker.stop()
            deadline = time.monotonic() + 10
            while agent.connected.is_set() and time.monotonic() < deadline:
                time.sleep(0.01)
            journal.help_request(screen="bench")
            broker.start()
            t0 = time.perf_counter()
            arrived = threading.Event()
            sub = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
            sub.username_pw_set(CONSOLE_USER, broker.console_password)
            sub.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
            sub.on_message = lambda *_, ev=arrived: ev.set()
            sub.connect(broker.host, broker.port)
            sub.loop_start()
            try:
                if not arrived.wait(60):
                    raise RuntimeError("the event did not arrive after the restart")
                samples.append((time.perf_counter() - t0) * 1000)
            finally:
                sub.disconnect()
                sub.loop_stop()
            while journal.outbox_size():
                time.sleep(0.01)
    finally:
        agent.stop()
        journal.close()
    return statistics.median(samples)


def run(n: int = 5000, rounds: int = 5) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-agent-") as tmp:
        root = Path(tmp)
        broker = MosquittoBroker(root / "broker")
        broker.start()
        try:
            agent_s, size = agent_drain_seconds(root, broker, n)
            raw_s = raw_qos1_seconds(broker, n, size)
            print(
                f"agent: {n} events of {size} B in {agent_s * 1000:.0f} ms "
                f"({n / agent_s:.0f}/s); raw QoS 1: {raw_s * 1000:.0f} ms ({n / raw_s:.0f}/s)"
            )
            reconnect = reconnect_ms(root, broker, rounds)
        finally:
            broker.stop()
    return {
        "agent.outbox_to_raw_qos1": round(raw_s / agent_s, 3),
        "agent.reconnect_to_first_event_ms": round(reconnect, 1),
    }
