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

import pytest
from sqlalchemy import select

from fleet.console.ingest import Ingest, Settings
from fleet.console.ingest_batch import StateFields, apply_state
from fleet.console.store import Alert, Station, Store
from sandbox.mosquitto import MosquittoBroker

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
