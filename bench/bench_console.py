"""The console's side of a large fleet: 10,000 simulated terminals on a private mosquitto.

The terminals are a :class:`fleet.simulate.Simulator` in a child process: one network thread, a
real MQTT connection per terminal (client id = station id, through the broker's ACL).

``console.ingest_to_mosquitto_sub``: rate at which the console's ingest stores the stations'
stream, over the rate at which ``mosquitto_sub`` drains the same stream, same run. Both hold a
persistent session (MQTT v5, session expiry) with a QoS 1 shared subscription on
``$share/…/kiosk/v1/…``; while both are offline every terminal publishes the same burst of events
(5 each: 50,000 messages for 10,000 terminals), which the broker queues for each session; then
each connects and is timed from connect to the last message of the burst. The ingest is the
console's own (:class:`fleet.console.ingest.Ingest` on :mod:`fleet.mqtt.stream`) in a process tuned
as ``fleet console`` tunes itself (:func:`fleet.console.ingest.tune_gc`). It has run before: its
database knows the 10,000 stations from their retained ``state`` and ``birth``, which a kept
session does not replay. It de-duplicates and stores every event in its SQLite database, raises
the alerts of help requests and acknowledges each batch after its commit; it is timed until the
database holds all 50,000 events. ``mosquitto_sub -C N`` (output to /dev/null) is the baseline.
Three bursts, each drained by both; the figure is the median of the three ratios. Goal ≥ 0.8.

``console.rollout_10000_s``: a catalog rollout to every terminal through the engine and its MQTT
driver (:mod:`fleet.console.rollout_mqtt`: canary 10 stations → 50 % → all, advance at 90 %
success),
from start to ``completed``; each simulated terminal reports ``downloading`` then, after 0.05–0.5 s,
``applied``. Seconds. Goal < 60.

``console.rss_10000_mib``: resident memory of the process hosting the ingest (with the state of
10,000 stations) and the rollout driver (with its 10,000-station rollout), at the end. MiB. The
simulator runs in a child process (:class:`fleet.simulate.process.SimulatorProcess`: paho's own
network
loop uses ``select()``, which fails on descriptors above 1023, so the console-side clients cannot
share a process with 10,000 sockets); its RSS is printed too.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select

from fleet.console.ingest import Ingest, Settings, tune_gc
from fleet.console.rollout import Policy
from fleet.console.rollout_mqtt import RolloutDriver
from fleet.console.rollout_stores import MemoryStore
from fleet.console.store import Station, StationEvent, Store
from fleet.mqtt.client import CONSOLE_USER
from fleet.protocol.topics import ROOT
from fleet.simulate import SimConfig, raise_nofile, rss_mib
from fleet.simulate.process import SimulatorProcess
from sandbox.mosquitto import MosquittoBroker

INGEST_ID = "bench-console-ingest"
ROUNDS = 3  # bursts; the two rates vary by a third between runs on shared cores
SUB_ID = "bench-mosquitto-sub"
DESIRED = {
    "catalog": {"target": "catalog.toml", "version": 2, "sha256": "ef" * 32, "length": 4096},
    "metadata_url": "http://127.0.0.1:1/metadata/",
    "targets_url": "http://127.0.0.1:1/targets/",
}


class ConsoleIngest:
    """The console's own ingest (:class:`fleet.console.ingest.Ingest`) on a SQLite database."""

    def __init__(self, broker: MosquittoBroker, expected: int, db_path: Path) -> None:
        self.broker = broker
        self.expected = expected
        self.store = Store(f"sqlite:///{db_path}")
        self.store.migrate()

    def _ingest(self) -> Ingest:
        settings = Settings(client_id=INGEST_ID, session_expiry_s=3600, share_group="console")
        return Ingest(self.store, self.broker.console_access(), settings=settings)

    def create_session(self, stations: int, timeout_s: float) -> float:
        """Run the console until it knows every station (their retained ``state`` and ``birth``,
        replayed at the first subscription of its session), then stop it: the session stays.
        Seconds taken."""
        t0 = time.perf_counter()
        ingest = self._ingest()
        ingest.start()
        try:
            if not ingest.connected.wait(10):
                raise RuntimeError("the ingest did not subscribe")
            deadline = t0 + timeout_s
            # every retained state and birth handled (and acknowledged, so none comes again)
            while (known := self.stations()) < stations or (
                ingest.stream.acknowledged < 2 * stations
            ):
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"the ingest registered {known} of {stations} stations")
                time.sleep(0.05)
            return time.perf_counter() - t0
        finally:
            ingest.stop()

    def events_stored(self) -> int:
        with self.store.session() as db:
            return db.scalar(select(func.count(StationEvent.id))) or 0

    def drain_seconds(self, burst: int, total: int, timeout_s: float) -> float:
        """Connect, and time until ``burst`` messages are acknowledged and the database holds
        ``total`` events."""
        tune_gc()  # as ``fleet console`` does when it starts
        t0 = time.perf_counter()
        ingest = self._ingest()
        ingest.start()
        try:
            deadline = t0 + timeout_s
            while True:
                # the stream counts what it acknowledged, after each commit; the database
                # itself is asked only then (a COUNT every 50 ms would slow the ingest down)
                if ingest.stream.acknowledged >= burst:
                    stored = self.events_stored()
                    if stored >= total:
                        return time.perf_counter() - t0
                if time.perf_counter() > deadline:
                    stored = self.events_stored()
                    raise RuntimeError(f"the ingest stored {stored} of {total} events")
                time.sleep(0.01)
        finally:
            ingest.stop()

    def stations(self) -> int:
        with self.store.session() as db:
            return db.scalar(select(func.count(Station.id))) or 0


def _sub_command(broker: MosquittoBroker, *extra: str) -> list[str]:
    return [
        "mosquitto_sub",
        *("-h", broker.host, "-p", str(broker.port), "-V", "5", "-q", "1"),
        *("-u", CONSOLE_USER, "-P", broker.console_password),
        *("-c", "-x", "3600", "-i", SUB_ID, "-t", f"$share/bench/{ROOT}/#"),
        *extra,
    ]


def mosquitto_sub_seconds(broker: MosquittoBroker, n: int, timeout_s: float) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        _sub_command(broker, "-C", str(n), "-W", str(int(timeout_s))),
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=timeout_s + 10,
    )
    return time.perf_counter() - t0


def rollout_seconds(broker: MosquittoBroker, sim: SimulatorProcess, timeout_s: float) -> float:
    driver = RolloutDriver(broker.console_access(), MemoryStore())
    driver.connect(timeout_s=120)
    try:
        t0 = time.perf_counter()
        policy = Policy(canary=10, percent=50, min_results=10, wave_timeout_s=timeout_s, soak_s=0)
        rollout_id = driver.start(DESIRED, sim.station_keys, policy)
        progress = driver.wait(rollout_id, timeout_s)
        elapsed = time.perf_counter() - t0
        if progress.state != "completed":
            raise RuntimeError(f"the rollout did not complete: {progress}")
        print("rollout waves:", json.dumps([(w.name, w.size, w.applied) for w in progress.waves]))
        return elapsed
    finally:
        driver.close()


def run(n: int = 10_000, per_terminal: int = 5) -> dict[str, float]:
    raise_nofile(2 * n + 4096)  # before the broker starts: it inherits the limit
    timeout_s = max(60.0, n / 50)
    with tempfile.TemporaryDirectory(prefix="bench-console-") as tmp:
        broker = MosquittoBroker(Path(tmp) / "broker")
        broker.start()
        sim = SimulatorProcess(
            SimConfig(
                broker.host,
                broker.port,
                kiosks=n,
                health_interval_s=1e6,  # quiet: the stream under test is the burst
                event_interval_s=0.0,
            )
        )
        try:
            t0 = time.perf_counter()
            sim.start()
            if not sim.wait_connected(timeout_s):
                raise RuntimeError(f"{sim.stats()[0]['connected']} of {n} terminals connected")
            print(f"{n} terminals connected in {time.perf_counter() - t0:.1f} s")
            expected = n * per_terminal
            ingest = ConsoleIngest(broker, expected, Path(tmp) / "console.sqlite3")
            known_s = ingest.create_session(n, timeout_s)
            print(f"the console took every station's retained state and birth in {known_s:.1f} s")
            subprocess.run(_sub_command(broker, "-E"), check=True, timeout=30)
            ratios = []
            for burst in range(1, ROUNDS + 1):  # both measured once per burst; the median
                sent, acked = sim.burst(per_terminal, timeout_s)
                if acked < sent:
                    raise RuntimeError(f"{acked} of {sent} events acknowledged")
                ingest_s = ingest.drain_seconds(sent, burst * expected, timeout_s)
                sub_s = mosquitto_sub_seconds(broker, expected, timeout_s)
                ratios.append(sub_s / ingest_s)
                print(
                    f"burst {burst} of {sent} events: ingest {sent / ingest_s:.0f}/s "
                    f"({ingest.stations()} stations, {burst * expected} events stored), "
                    f"mosquitto_sub {sent / sub_s:.0f}/s: {ratios[-1]:.3f}"
                )
            rollout_s = rollout_seconds(broker, sim, timeout_s)
            rss = rss_mib()
            counters, sim_rss = sim.stats()
            print(
                f"RSS: ingest + rollout process {rss:.0f} MiB, simulator process {sim_rss:.0f} "
                f"MiB; simulator {counters}"
            )
        finally:
            sim.stop()
            broker.stop()
    return {
        "console.ingest_to_mosquitto_sub": round(statistics.median(ratios), 3),
        "console.rollout_10000_s": round(rollout_s, 2),
        "console.rss_10000_mib": round(rss, 1),
    }
