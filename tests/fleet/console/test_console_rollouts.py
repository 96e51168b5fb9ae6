"""Catalog rollouts through the console: its API and pages, its rollout driver, its database.

Real peers only: a private mosquitto (plain TCP), simulated terminals with real MQTT
connections in a child process (:class:`fleet.simulate.process.SimulatorProcess`), SQLite and a
private
PostgreSQL cluster (every test runs on both).
"""

from __future__ import annotations

import html
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select
from starlette.testclient import TestClient

from fleet.agent import Agent, AgentConfig
from fleet.console import Console, Settings
from fleet.console.store import Station
from fleet.simulate import SimConfig
from fleet.simulate.process import SimulatorProcess
from sandbox.mosquitto import MosquittoBroker
from tests.fleet.console.test_console import (
    PASSWORD,
    audit_actions,
    client,
    login,
    make_console,
    until,
)

SHA = "ab" * 32
CATALOG = {
    "target": "catalog.toml",
    "version": 7,
    "sha256": SHA,
    "length": 4321,
    "metadata_url": "http://127.0.0.1:8001/metadata/",
}
QUICK = {"canary": 2, "percent": 50, "advance_at": 1.0, "wave_timeout_s": 60, "soak_s": 0}
EN = {"Accept-Language": "en"}


def simulated_fleet(broker: MosquittoBroker, **config: Any) -> SimulatorProcess:
    """20 simulated terminals on two sites (sim-site-00, sim-site-01), in their own process."""
    sim = SimulatorProcess(
        SimConfig(
            broker.host,
            broker.port,
            **{"kiosks": 20, "sites": 2, "health_interval_s": 5.0, "event_interval_s": 0.0}
            | config,
        )
    )
    sim.start()
    assert sim.wait_connected(60), "the simulated terminals did not connect"
    return sim


def running_console(broker: MosquittoBroker, db_url: str) -> Console:
    console = make_console(broker, db_url)
    console.start()
    assert console.rollouts.ready.wait(30), console.rollouts.error
    until(lambda: len(console.snapshot()) == 20, 30, "20 stations in the console")
    return console


def progress(http: TestClient, rollout_id: str) -> dict[str, Any]:
    response = http.get(f"/api/rollouts/{rollout_id}")
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def wait_state(http: TestClient, rollout_id: str, state: str, timeout: float = 60) -> Any:
    return until(
        lambda: (p := progress(http, rollout_id))["state"] == state and p,
        timeout,
        f"rollout {rollout_id} {state}",
    )


def test_a_rollout_started_through_the_api_completes_on_simulated_terminals(
    broker: MosquittoBroker, db_url: str
) -> None:
    sim = simulated_fleet(broker)
    console = running_console(broker, db_url)
    try:
        tech, tech_csrf = login(console, "tech")
        oper, csrf = login(console, "oper")
        body = CATALOG | {"scope": "all", "policy": QUICK}
        # technicians may not; nobody may without the session's CSRF token or from elsewhere
        denied = tech.post("/api/rollouts", headers={"X-CSRF-Token": tech_csrf}, json=body)
        assert denied.status_code == 403 and "技术员" in denied.json()["error"]
        assert oper.post("/api/rollouts", json=body).status_code == 403
        cross = oper.post(
            "/api/rollouts",
            headers={"X-CSRF-Token": csrf, "Origin": "https://evil.example"},
            json=body,
        )
        assert cross.status_code == 403
        bad = oper.post(
            "/api/rollouts", headers={"X-CSRF-Token": csrf}, json=body | {"sha256": "x" * 64}
        )
        assert bad.status_code == 400 and "SHA-256 应为" in bad.json()["error"]  # in Chinese
        unknown = oper.post(
            "/api/rollouts",
            headers={"X-CSRF-Token": csrf},
            json=body | {"scope": "list", "stations": ["sim-site-00/nowhere"]},
        )
        assert unknown.status_code == 400 and "这些终端不存在" in unknown.json()["error"]
        english = oper.post(
            "/api/rollouts",
            headers={"X-CSRF-Token": csrf, "Accept-Language": "en"},
            json=body | {"scope": "list", "stations": ["sim-site-00/nowhere"]},
        )
        assert english.json()["error"] == "unknown stations: sim-site-00/nowhere"
        assert sim.stats()[0]["desired"] == 0  # nothing refused reached a terminal

        started = oper.post("/api/rollouts", headers={"X-CSRF-Token": csrf}, json=body)
        assert started.status_code == 201, started.text
        rollout_id = started.json()["id"]
        assert started.json()["state"] == "running" and started.json()["wave"] == "canary"

        done = wait_state(oper, rollout_id, "completed")
        waves = [(w["name"], w["size"], w["applied"], w["failed"]) for w in done["waves"]]
        assert waves == [("canary", 2, 2, 0), ("50%", 8, 8, 0), ("all", 10, 10, 0)]
        assert done["reason"] is None and done["started_by"] == "oper"
        assert done["catalog"] == {k: CATALOG[k] for k in ("target", "version", "sha256", "length")}
        assert {r["phase"] for r in done["station_results"].values()} == {"applied"}
        counters, _ = sim.stats()
        assert counters["applied"] == 20 and counters["failed"] == 0
        # the console saw every terminal report the new catalog
        until(
            lambda: {s["catalog_version"] for s in console.snapshot()} == {7},
            15,
            "catalog 7 reported by all",
        )
        listed = tech.get("/api/rollouts").json()  # anyone logged in may watch
        assert [r["id"] for r in listed] == [rollout_id]
        page = tech.get("/rollouts")
        assert page.status_code == 200
        assert f'data-rollout="{rollout_id}" data-state="completed"' in page.text
        assert 'id="rollout-form"' not in page.text  # no start form for technicians
        actions = audit_actions(console)
        assert ("tech", "denied", False) in actions
        assert ("oper", "rollout", False) in actions  # the bad sha256, the unknown station
        assert ("oper", "rollout", True) in actions
    finally:
        console.stop()
        sim.stop()


def test_failing_terminals_abort_the_rollout_and_the_reason_is_shown(
    broker: MosquittoBroker, db_url: str
) -> None:
    sim = simulated_fleet(broker, failure_fraction=1.0)
    console = running_console(broker, db_url)
    try:
        oper, csrf = login(console, "oper")
        policy = QUICK | {"min_results": 2, "abort_above": 0.2}
        started = oper.post(
            "/api/rollouts",
            headers={"X-CSRF-Token": csrf},
            json=CATALOG | {"scope": "all", "policy": policy},
        )
        assert started.status_code == 201, started.text
        rollout_id = started.json()["id"]
        aborted = wait_state(oper, rollout_id, "aborted", 30)
        reason = "failure rate 100% > 20% after 2 results in wave canary"
        assert aborted["reason"] == reason
        assert [w["targeted"] for w in aborted["waves"]] == [2, 0, 0]
        assert aborted["failures"] == [
            {
                "station": key,
                "phase": "failed",
                "error": "hash_mismatch",
                "detail": "simulated failure",
            }
            for key in ("sim-site-00/sim-00000", "sim-site-00/sim-00002")
        ]
        time.sleep(1.0)
        assert sim.stats()[0]["desired"] == 2  # later waves never got the desired
        page = oper.get("/rollouts")
        assert f'data-rollout="{rollout_id}" data-state="aborted"' in page.text
        worded = "“试点”批失败率 100%，超过上限 20%（已有 2 台出结果），已自动中止"
        assert f"原因：{worded}" in page.text
        assert f"Reason: {html.escape(reason)}" in oper.get("/rollouts", headers=EN).text
        fragment = oper.get("/rollouts?fragment=1")  # what the live update swaps in
        assert html.escape(reason) in fragment.text and "<html" not in fragment.text
        assert oper.get("/api/rollouts").json()[0]["reason"] == reason
        # a finished rollout cannot be steered any more
        again = oper.post(f"/api/rollouts/{rollout_id}/resume", headers={"X-CSRF-Token": csrf})
        assert again.status_code == 409
    finally:
        console.stop()
        sim.stop()


def test_pause_survives_a_console_restart_then_resume_and_abort_by_hand(
    broker: MosquittoBroker, db_url: str
) -> None:
    sim = simulated_fleet(broker, apply_s=(1.5, 2.0))
    console = running_console(broker, db_url)
    try:
        oper, csrf = login(console, "oper")
        # the form: one site, percentages as the page asks for them
        form = {k: str(v) for k, v in CATALOG.items()} | {
            "csrf_token": csrf,
            "scope": "site",
            "site": "sim-site-01",
            "canary": "2",
            "percent": "50",
            "advance_at_pct": "100",
            "wave_timeout_s": "60",
            "soak_s": "0",
        }
        assert oper.post("/rollouts", data=form | {"csrf_token": "x"}).status_code == 403
        started = oper.post("/rollouts", data=form)
        assert started.status_code == 303 and started.headers["location"] == "/rollouts"
        first = oper.get("/api/rollouts").json()[0]
        rollout_id = first["id"]
        assert first["stations"] == 10 and first["policy"]["advance_at"] == 1.0
        assert oper.post(f"/rollouts/{rollout_id}/pause").status_code == 403  # no CSRF token
        paused = oper.post(f"/rollouts/{rollout_id}/pause", data={"csrf_token": csrf})
        assert paused.status_code == 303
        assert progress(oper, rollout_id)["state"] == "paused"
        # results still count while paused, but no new wave starts
        until(lambda: progress(oper, rollout_id)["waves"][0]["applied"] == 2, 20, "canary applied")
        busy = oper.post(
            "/api/rollouts",
            headers={"X-CSRF-Token": csrf},
            json=CATALOG | {"scope": "site", "site": "sim-site-01"},
        )
        assert busy.status_code == 409 and "running rollout" in busy.json()["error"]
        rev = first["rev"]
    finally:
        console.stop()
    # a new console process on the same database takes the paused rollout up again
    console = Console(
        broker.host,
        broker.port,
        password=broker.console_password,
        db_url=db_url,
        settings=Settings(sweep_s=0.2),
    )
    console.start()
    try:
        assert console.rollouts.ready.wait(30), console.rollouts.error
        oper, csrf = login(console, "oper")
        state = progress(oper, rollout_id)
        assert state["state"] == "paused" and state["wave"] == "canary"
        assert [w["targeted"] for w in state["waves"]] == [2, 0, 0]
        assert [w["size"] for w in state["waves"]] == [2, 3, 5]
        resumed = oper.post(f"/api/rollouts/{rollout_id}/resume", headers={"X-CSRF-Token": csrf})
        assert resumed.status_code == 200, resumed.text
        assert resumed.json()["state"] == "running" and resumed.json()["wave"] == "50%"
        aborted = oper.post(
            f"/api/rollouts/{rollout_id}/abort",
            headers={"X-CSRF-Token": csrf},
            json={"reason": "wrong catalog"},
        )
        assert aborted.status_code == 200
        assert aborted.json()["state"] == "aborted"
        assert aborted.json()["reason"] == "wrong catalog (by oper)"
        page = client(console)
        assert page.get("/rollouts").status_code == 303  # the page needs a login too
        assert "wrong catalog (by oper)" in oper.get("/rollouts").text
        # the next rollout to these stations gets a higher rev (kept in the database)
        again = oper.post(
            "/api/rollouts",
            headers={"X-CSRF-Token": csrf},
            json=CATALOG | {"scope": "site", "site": "sim-site-01", "version": 8},
        )
        assert again.status_code == 201 and again.json()["rev"] > rev
        actions = audit_actions(console)
        for action in ("pause", "resume", "abort"):
            assert ("oper", action, True) in actions
    finally:
        console.stop()
        sim.stop()


def test_over_tls_the_console_rolls_out_to_a_real_agent(tmp_path: Path, db_url: str) -> None:
    """The shipped broker configuration (certificates, ``%u`` ACL): the console's rollout driver
    connects with the console's certificate and a real fleet agent receives the ``desired``."""
    broker = MosquittoBroker(tmp_path / "broker", tls=True)
    broker.start()
    creds = broker.issue_client("st-0001", tmp_path / "st-0001" / "tls")
    agent = Agent(
        AgentConfig(
            site="zibo-gx",
            station="st-0001",
            host=broker.host,
            port=broker.port,
            state_dir=tmp_path / "st-0001",
            journal_path=tmp_path / "st-0001" / "journal.sqlite3",
            health_interval_s=0.5,
            will_delay_s=1,
            ca_file=creds.ca_file,
            cert_file=creds.cert_file,
            key_file=creds.key_file,
        )
    )
    console = Console(broker.host, broker.port, db_url=db_url, tls=broker.console_credentials())
    console.add_user("oper", PASSWORD, "operator")
    agent.start()
    console.start()
    try:
        assert console.rollouts.ready.wait(30), console.rollouts.error
        until(lambda: console.snapshot(), 20, "the agent in the console")
        oper, csrf = login(console, "oper")
        started = oper.post(
            "/api/rollouts",
            headers={"X-CSRF-Token": csrf},
            json=CATALOG | {"scope": "all", "policy": {"wave_timeout_s": 600}},
        )
        assert started.status_code == 201, started.text
        rev = started.json()["rev"]

        # no catalog repository answers at metadata_url: the agent says so about this rev
        def reported() -> dict[str, Any]:
            with console.store.session() as db:
                return dict(db.scalars(select(Station.reported)).one())

        until(lambda: reported().get("rev") == rev, 30, "the agent's reported about this rev")
        assert reported()["phase"] in ("downloading", "failed")
    finally:
        console.stop()
        agent.stop()
        broker.stop()
