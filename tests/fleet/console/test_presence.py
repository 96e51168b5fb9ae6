"""Presence from the Will (issue 18): a station whose agent dies is offline at the console within
seconds, over the shipped TLS configuration, with one alert; the Will is ordered by the session
counter, not by the time stamped on it before the connection."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from fleet.console.ingest import Ingest, Settings
from fleet.console.ingest_batch import StateFields, apply_state
from fleet.console.store import Alert, Station, Store, Timers, offline_since
from sandbox.mosquitto import MosquittoBroker
from statedir.journal import Journal

SITE = "zibo-gx"

_AGENT = """
import sys, time
from pathlib import Path
from fleet.agent import Agent, AgentConfig
d = Path(sys.argv[4])
cfg = AgentConfig(site=sys.argv[1], station=sys.argv[2], host="127.0.0.1", port=int(sys.argv[3]),
                  state_dir=d, journal_path=d / "j.sqlite3", health_interval_s=60,
                  ca_file=d / "ca.crt", cert_file=d / "st.crt", key_file=d / "st.key")
a = Agent(cfg); a.start(); a.connected.wait(20); print("up", a.session, flush=True)
time.sleep(600)
"""


def fields(session: int, online: bool, ts: float) -> StateFields:
    return StateFields(session, ts, online, "", 0.0, None)


def state(session: int, online: bool, ts: float, reason: str = "connect") -> dict[str, object]:
    return {"session": session, "online": online, "ts": ts, "reason": reason}


def test_the_will_ends_its_session_though_stamped_before_the_connect() -> None:
    row = fields(0, False, 0.0)
    assert apply_state(row, state(3, True, 100.0), now=1.0)  # connect, stamped at 100
    assert apply_state(row, state(3, False, 99.0, "lost"), now=2.0)  # its Will, stamped at 99
    assert (row.online, row.offline_since) == (False, 2.0)
    assert not apply_state(row, state(3, True, 100.0), now=3.0)  # a late copy of the connect
    assert not apply_state(row, state(2, False, 150.0, "lost"), now=4.0)  # an older session's
    assert apply_state(row, state(4, True, 98.0), now=5.0)  # the next session, whatever its ts
    assert row.online and row.session == 4


def test_a_station_whose_state_has_not_arrived_is_not_offline_since_1970() -> None:
    # registered by its birth a moment before its state is written (a thousand connecting)
    row = Station(
        site=SITE,
        station="k1",
        online=False,
        state_ts=0.0,
        offline_since=None,
        last_seen=0.0,
        interval_s=60.0,
        first_seen=1000.0,
    )
    assert offline_since(row, now=1001.0) is None
    grace = Timers().missed_for_offline * 60.0
    assert offline_since(row, now=1000.0 + grace + 5) == 1000.0 + grace  # it never said a word
    row.state_ts, row.offline_since = 1200.0, 1300.0  # a Will: offline since it arrived
    assert offline_since(row, now=1301.0) == 1300.0


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    b = MosquittoBroker(tmp_path / "broker", tls=True)
    b.start()
    yield b
    b.stop()


@pytest.mark.slow
def test_an_agent_killed_is_offline_within_seconds_with_one_alert(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    store = Store(f"sqlite:///{tmp_path / 'console.sqlite3'}")
    store.migrate()
    ingest = Ingest(
        store,
        broker.console_access(),
        settings=Settings(offline_alert_after_s=1.0, sweep_s=0.5),
    )
    ingest.start()
    folder = tmp_path / "st-1"
    creds = broker.issue_client("st-1", folder)
    for src, name in ((creds.ca_file, "ca.crt"), (creds.cert_file, "st.crt")):
        (folder / name).write_bytes(src.read_bytes())
    (folder / "st.key").write_bytes(creds.key_file.read_bytes())
    journal = Journal(folder / "j.sqlite3")
    journal.touch_ui_heartbeat()  # the kiosk's UI runs beside the agent: no "UI frozen"
    journal.close()
    agent = subprocess.Popen(
        [sys.executable, "-c", _AGENT, SITE, "st-1", str(broker.port), str(folder)],
        stdout=subprocess.PIPE,
        text=True,
    )

    def row() -> Station | None:
        with store.session() as db:
            found = db.scalars(select(Station).where(Station.station == "st-1")).first()
            if found is not None:
                db.expunge(found)
            return found

    try:
        assert agent.stdout is not None and agent.stdout.readline().startswith("up")
        deadline = time.monotonic() + 20
        while not ((r := row()) and r.online):
            assert time.monotonic() < deadline, "the console never saw the station online"
            time.sleep(0.1)
        agent.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        agent.wait(10)
        while (r := row()) is not None and r.online:
            assert time.monotonic() - killed < 10, "still online 10 s after the kill"
            time.sleep(0.1)
        offline_after = time.monotonic() - killed
        time.sleep(3)  # the sweep raises the alert once, and only once
        with store.session() as db:
            kinds = [a.kind for a in db.scalars(select(Alert))]
        assert kinds == ["offline"], kinds
        assert offline_after < 10
        assert r is not None and r.reason == "lost"
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
        if agent.stdout is not None:
            agent.stdout.close()
        ingest.stop()
        store.close()


def test_a_burst_at_one_site_is_one_incident_and_scattered_stations_stay_single() -> None:
    from fleet.console.incidents import group

    burst = [(i, "hall-a", f"st-{i}", 1000.0 + i * 0.05) for i in range(1000)]
    scattered = [(2000 + i, "hall-b", f"st-b{i}", 1000.0 + i * 120) for i in range(6)]
    few = [(3000 + i, "hall-c", f"st-c{i}", 1000.0) for i in range(4)]
    out = group(burst + scattered + few, set(), min_stations=5, window_s=60)
    assert list(out.incidents) == ["hall-a"] and len(out.incidents["hall-a"]) == 1000
    assert len(out.singles) == 10  # six two minutes apart, and four (fewer than five) at once
    # while an incident is open, its site's stations stay in it, however they trickle
    again = group(scattered, {"hall-b"}, min_stations=5, window_s=60)
    assert list(again.incidents) == ["hall-b"] and again.singles == []


@pytest.mark.slow
def test_a_thousand_stations_dropping_at_one_site_are_one_incident_with_the_count(
    tmp_path: Path,
) -> None:
    from fleet.simulate import SimConfig
    from fleet.simulate.process import SimulatorProcess

    broker = MosquittoBroker(tmp_path / "broker")
    broker.start()
    store = Store(f"sqlite:///{tmp_path / 'console.sqlite3'}")
    store.migrate()
    ingest = Ingest(
        store, broker.console_access(), settings=Settings(offline_alert_after_s=1.0, sweep_s=0.5)
    )
    ingest.start()
    sim = SimulatorProcess(
        SimConfig(
            broker.host,
            broker.port,
            kiosks=1000,
            sites=1,
            health_interval_s=3600.0,
            event_interval_s=0.0,
            will_delay_s=1,
        )
    )
    try:
        sim.start()
        assert sim.wait_connected(60)

        def online() -> int:
            with store.session() as db:
                return len(db.scalars(select(Station.id).where(Station.online)).all())

        deadline = time.monotonic() + 60
        while online() < 1000:
            assert time.monotonic() < deadline, f"{online()} of 1000 online"
            time.sleep(0.2)
        sim.kill()  # the hall's power goes

        # A sweep that saw fewer than 5 stations past the threshold (the wills still arriving:
        # on a loaded machine they spread over seconds) alerts those alone; the incident folds
        # them in (resolves them) when it forms. So: one active alert, the site's, with all
        # 1000, and at most 4 offline alerts ever raised, all folded.
        def alerts() -> tuple[list[tuple[str, Any]], list[str]]:
            with store.session() as db:
                rows = list(db.scalars(select(Alert)))
            active = [(a.kind, a.detail.get("count")) for a in rows if a.resolved_at is None]
            return active, [a.kind for a in rows if a.resolved_at is not None]

        deadline = time.monotonic() + 60
        while (found := alerts())[0] != [("site_outage", 1000)]:
            assert time.monotonic() < deadline, found[0][:5]
            time.sleep(0.5)
        time.sleep(2)  # a few more sweeps change nothing
        active, folded = alerts()
        assert active == [("site_outage", 1000)]
        assert set(folded) <= {"offline"} and len(folded) <= 4, folded
    finally:
        sim.stop()
        ingest.stop()
        store.close()
        broker.stop()
