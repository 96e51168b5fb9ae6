"""Simulated terminals (fleet.simulate) and rollouts (fleet.console.rollout_mqtt) on a real
mosquitto.

Every simulated terminal has its own MQTT connection (client id = station id) through the
broker's ACL; the rollout driver has the console's rights. Nothing is mocked."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from fleet.console.rollout import Policy, RolloutStore
from fleet.console.rollout_mqtt import RolloutDriver
from fleet.console.rollout_stores import MemoryStore
from fleet.mqtt.client import CONSOLE_USER
from fleet.protocol.topics import loads, parse_station_topic
from fleet.simulate import SimConfig, Simulator
from sandbox.mosquitto import MosquittoBroker

DESIRED = {
    "catalog": {"target": "catalog.toml", "version": 5, "sha256": "cd" * 32, "length": 1234},
    "metadata_url": "http://127.0.0.1:1/metadata/",
    "targets_url": "http://127.0.0.1:1/targets/",
}


def simulator(broker: MosquittoBroker, n: int, **kwargs: Any) -> Simulator:
    config = SimConfig(
        broker.host,
        broker.port,
        kiosks=n,
        sites=3,
        health_interval_s=kwargs.pop("health_interval_s", 60.0),
        event_interval_s=kwargs.pop("event_interval_s", 0.0),
        apply_s=(0.01, 0.1),
        **kwargs,
    )
    sim = Simulator(config)
    sim.start()
    assert sim.wait_connected(30), f"{sim.stats.connected} of {n} connected"
    return sim


def driver(broker: MosquittoBroker, store: RolloutStore | None = None) -> RolloutDriver:
    d = RolloutDriver(broker.console_access(), store or MemoryStore())
    d.connect()
    return d


class Watcher:
    """A console-rights subscriber keeping every message (retained ones included)."""

    def __init__(self, broker: MosquittoBroker, topic: str) -> None:
        self.messages: list[tuple[str, dict[str, Any], bool]] = []
        self.lock = threading.Lock()
        subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.username_pw_set(CONSOLE_USER, broker.console_password)
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert subscribed.wait(5)

    def _on_message(self, _c: Any, _u: Any, m: mqtt.MQTTMessage) -> None:
        payload = loads(bytes(m.payload)) if m.payload else {}
        with self.lock:
            self.messages.append((m.topic, payload, bool(m.retain)))

    def wait_for(self, predicate: Any, timeout_s: float = 10.0) -> list[Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.lock:
                found = [m for m in self.messages if predicate(m)]
            if found:
                return found
            time.sleep(0.02)
        return []

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_terminals_publish_presence_health_and_events_and_leave_a_will(
    broker: MosquittoBroker,
) -> None:
    watcher = Watcher(broker, "kiosk/v1/#")
    sim = simulator(broker, 20, health_interval_s=0.5, event_interval_s=0.3, will_delay_s=0)
    try:
        term = sim.terminals[3]
        root = term.topics.root
        assert watcher.wait_for(
            lambda m: m[0] == term.topics.birth and m[1]["station"] == term.station
        )
        state = watcher.wait_for(lambda m: m[0] == term.topics.state)
        assert state[0][1]["online"] is True and state[0][1]["session"] == 1
        health = watcher.wait_for(lambda m: m[0] == term.topics.health and m[1]["seq"] >= 2, 5)
        assert health and health[0][1]["ui_alive"] is True
        events = watcher.wait_for(lambda m: m[0].startswith("kiosk/v1/") and "/evt/" in m[0], 5)
        kinds = {parse_station_topic(t)[2] for t, _, _ in events}  # type: ignore[index]
        assert kinds <= {"evt/transaction", "evt/rating", "evt/help"}
        ids = [p["event_id"] for _, p, _ in events]
        assert len(ids) == len(set(ids)) > 0
        # the connection breaks: the Will says offline ("lost", session 1), then it comes back
        sock = sim.call(lambda: term.client.socket()).result(5)
        sock.shutdown(2)
        lost = watcher.wait_for(lambda m: m[0] == term.topics.state and m[1]["online"] is False, 10)
        assert lost and lost[0][1]["reason"] == "lost" and lost[0][1]["session"] == 1
        back = watcher.wait_for(lambda m: m[0] == term.topics.state and m[1]["session"] == 2, 15)
        assert back and back[0][1]["online"] is True
        assert root.startswith("kiosk/v1/sim-site-")
    finally:
        sim.stop()
    gone = watcher.wait_for(
        lambda m: m[0] == sim.terminals[0].topics.state and m[1].get("reason") == "shutdown"
    )
    watcher.close()
    assert gone


def test_a_station_cannot_publish_outside_its_own_root(broker: MosquittoBroker) -> None:
    """The simulator goes through the broker's ACL like a real terminal (client id = station)."""
    watcher = Watcher(broker, "kiosk/v1/#")
    sim = simulator(broker, 2)
    try:
        intruder, victim = sim.terminals
        sim.call(
            lambda: intruder.client.publish(victim.topics.health, b'{"forged":true}', qos=1)
        ).result(5)
        time.sleep(0.5)
        assert not watcher.wait_for(lambda m: m[1].get("forged"), 0.5)
    finally:
        sim.stop()
        watcher.close()


def test_rollout_goes_canary_then_half_then_all(broker: MosquittoBroker) -> None:
    sim = simulator(broker, 50)
    rollouts = driver(broker)
    try:
        policy = Policy(canary=3, percent=50, min_results=5, wave_timeout_s=30, soak_s=0)
        rollout_id = rollouts.start(DESIRED, sim.station_keys, policy)
        progress = rollouts.wait(rollout_id, 60)
        assert progress.state == "completed", progress
        assert [(w.name, w.size, w.applied, w.failed) for w in progress.waves] == [
            ("canary", 3, 3, 0),
            ("50%", 22, 22, 0),
            ("all", 25, 25, 0),
        ]
        starts = [w.started_at or 0.0 for w in progress.waves]
        assert starts == sorted(starts)
        record = rollouts._get(rollout_id).record
        canary_done = max(r.ts for r in record.stations.values() if r.wave == 0)
        assert starts[1] >= canary_done  # the half wave waited for the canaries
        for key in sim.station_keys:  # each got the desired once, with the rollout's rev
            assert sim.desired_revs(key) == [progress.rev]
        assert sim.stats.applied == 50
        # a second rollout over the same stations gets a higher rev, even from a driver that
        # starts from an empty store: it reads the revs from the retained desired/reported
        again = driver(broker)
        try:
            second = again.start(
                {**DESIRED, "catalog": {**DESIRED["catalog"], "version": 6}},
                sim.station_keys[:10],
                Policy(canary=1, min_results=1, soak_s=0),
            )
            done = again.wait(second, 30)
            assert done.state == "completed" and done.rev > progress.rev
            assert sim.desired_revs(sim.station_keys[0]) == [progress.rev, done.rev]
        finally:
            again.close()
    finally:
        rollouts.close()
        sim.stop()


def test_rollout_aborts_by_itself_and_later_waves_never_get_the_desired(
    broker: MosquittoBroker,
) -> None:
    sim = simulator(broker, 50, failure_fraction=0.5, seed=3)
    rollouts = driver(broker)
    try:
        # advance at 80 %: the canary wave (5) ends by advancing or by the failure rate
        policy = Policy(
            canary=5, advance_at=0.8, min_results=5, abort_above=0.2, wave_timeout_s=30, soak_s=0
        )
        rollout_id = rollouts.start(DESIRED, sim.station_keys, policy)
        progress = rollouts.wait(rollout_id, 60)
        assert progress.state == "aborted", progress
        assert progress.reason is not None
        match = re.fullmatch(
            r"failure rate (\d+)% > 20% after (\d+) results in wave (canary|50%)", progress.reason
        )
        assert match, progress.reason
        assert int(match.group(1)) > 20 and int(match.group(2)) >= 5
        assert progress.waves[-1].targeted == 0
        time.sleep(0.5)  # anything in flight would arrive now
        record = rollouts._get(rollout_id).record
        never = [k for k, r in record.stations.items() if r.phase == "waiting"]
        assert len(never) >= 25
        for key in never:
            assert sim.desired_revs(key) == []
        # and the broker holds no retained desired for them (a terminal connecting later)
        watcher = Watcher(broker, "kiosk/v1/+/+/desired")
        time.sleep(0.5)
        with watcher.lock:
            retained = {t for t, _, r in watcher.messages if r}
        watcher.close()
        sent = {k for k, r in record.stations.items() if r.phase != "waiting"}
        assert len(retained) == len(sent)
        for key in never:
            site, station = key.split("/")
            assert f"kiosk/v1/{site}/{station}/desired" not in retained
    finally:
        rollouts.close()
        sim.stop()


def test_silent_stations_time_out_and_abort_the_rollout(broker: MosquittoBroker) -> None:
    sim = simulator(broker, 10)
    rollouts = driver(broker)
    try:
        ghosts = ["sim-site-00/ghost-1", "sim-site-01/ghost-2"]  # never connected
        policy = Policy(canary_stations=tuple(ghosts), wave_timeout_s=1.0, min_results=2, soak_s=0)
        rollout_id = rollouts.start(DESIRED, ghosts + sim.station_keys, policy)
        progress = rollouts.wait(rollout_id, 15)
        assert progress.state == "aborted"
        assert progress.reason == "failure rate 100% > 20% after 2 results in wave canary"
        assert progress.waves[0].timed_out == 2
        assert all(sim.desired_revs(k) == [] for k in sim.station_keys)
    finally:
        rollouts.close()
        sim.stop()


def test_pause_resume_and_abort_by_hand_over_mqtt(broker: MosquittoBroker, tmp_path: Path) -> None:
    from fleet.console.rollout_stores import JsonFileStore

    sim = simulator(broker, 20)
    store = JsonFileStore(tmp_path / "rollouts")
    rollouts = driver(broker, store)
    try:
        rollout_id = rollouts.start(
            DESIRED, sim.station_keys, Policy(canary=2, min_results=2, soak_s=0)
        )
        rollouts.pause(rollout_id)
        time.sleep(1.0)  # the canaries apply meanwhile; no new wave while paused
        progress = rollouts.status(rollout_id)
        assert progress.state == "paused" and progress.waves[0].applied == 2
        assert progress.waves[1].targeted == 0
        rollouts.resume(rollout_id)
        rollouts.wait(rollout_id, 10, states={"completed"})
        assert rollouts.status(rollout_id).state == "completed"
        # a second one, aborted by hand: the reason is kept in the store
        later = rollouts.start(
            {**DESIRED, "catalog": {**DESIRED["catalog"], "version": 9}},
            sim.station_keys,
            Policy(canary=2, min_results=2, soak_s=0),
        )
        rollouts.pause(later)
        assert rollouts.abort(later, "aborted by ops: wrong catalog").state == "aborted"
        stored = store.load(later)
        assert stored is not None and stored.reason == "aborted by ops: wrong catalog"
        assert store.active_ids() == []
    finally:
        rollouts.close()
        sim.stop()
