"""Alerts that cannot hide (issue 18): with a thousand stations offline and five residents asking
for help, every alert view — the web pages, the API and the CLI — shows the five help requests
first and says how many it shows of how many."""

from __future__ import annotations

import json
import re
import time

import pytest
from sqlalchemy import insert

from fleet.cli import main as fleet
from fleet.console import Console
from fleet.console.store import Alert, Station
from tests.fleet.console.test_console import login, make_console

OFFLINE, HELP = 1000, 5


def crowd(console: Console) -> None:
    """1,000 offline alerts (the newest of all) and 5 help requests raised before them."""
    now = time.time()
    with console.store.session() as db:
        db.execute(
            insert(Station),
            [{"site": "zibo-gx", "station": f"st-{i:04d}"} for i in range(OFFLINE)],
        )
        rows = [
            {
                "station_id": i + 1,
                "kind": "help_request",
                "active_key": f"{i + 1}:help_request",
                "raised_at": now - 600 + i,
                "last_at": now - 600 + i,
                "count": 1,
                "detail": {"screen": "choose"},
            }
            for i in range(HELP)
        ]
        rows += [
            {
                "station_id": i + 1,
                "kind": "offline",
                "active_key": f"{i + 1}:offline",
                "raised_at": now - 300 + i * 0.1,
                "last_at": now - 300 + i * 0.1,
                "count": 1,
                "detail": {},
            }
            for i in range(OFFLINE)
        ]
        db.execute(insert(Alert), rows)


def test_every_alert_view_shows_the_help_requests_and_how_many_of_how_many(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    console = make_console(None, db_url)
    try:
        crowd(console)
        total = OFFLINE + HELP
        tech, _ = login(console, "tech")

        api = tech.get("/api/alerts")
        kinds = [a["kind"] for a in api.json()]
        assert kinds[:HELP] == ["help_request"] * HELP and "help_request" not in kinds[HELP:]
        assert api.headers["X-Total-Count"] == str(total)
        assert api.headers["X-Shown-Count"] == str(len(kinds)) == "200"

        for page, shown in (("/alerts", 200), ("/", 20)):  # the fleet page shows the first 20
            html = tech.get(page).text
            assert f"{shown} / {total}" in html, page
            assert f"显示前 {shown} 条，共 {total} 条" in html
            assert len(re.findall('<td class="kind">求助</td>', html)) >= HELP, page

        assert fleet(["alerts", "list", "--db", db_url]) == 0
        out = capsys.readouterr().out
        lines = out.splitlines()
        assert lines[0].split()[:2] == ["id", "kind"]
        assert [line.split()[1:3] for line in lines[1 : 1 + HELP]] == [["Help", "request"]] * HELP
        assert f"200 of {total} open alerts" in lines[-1]
        assert fleet(["alerts", "list", "--db", db_url, "--json"]) == 0
        captured = capsys.readouterr()
        assert [a["kind"] for a in json.loads(captured.out)][:HELP] == ["help_request"] * HELP
        assert f"200 of {total}" in captured.err
    finally:
        console.stop()


def test_a_device_fault_that_stops_a_service_raises_an_alert_and_its_end_resolves_it(
    db_url: str,
) -> None:
    from fleet.console.conditions import health_conditions
    from fleet.console.ingest import Ingest
    from fleet.console.store import Store
    from fleet.mqtt.client import BrokerAccess
    from tests.fleet import messages

    def devices(**states: tuple[str, list[str]]) -> dict[str, object]:
        return {"devices": {n: {"state": s, "reasons": r} for n, (s, r) in states.items()}}

    found = health_conditions(
        devices(
            a4_printer=("offline", ["unreachable"]),
            thermal_printer=("fault", ["paper_out"]),
            speech=("fault", ["no_audio_device"]),
        )
    )
    assert found["printer_fault"] == {"devices": ["a4_printer"]}  # the thermal's is paper_out
    assert "paper_out" in found and found["speech_fault"]["device"] == "speech"

    store = Store(db_url)
    store.migrate()
    ingest = Ingest(store, BrokerAccess("127.0.0.1", 1, "unused"))
    try:
        topic = "kiosk/v1/zibo-gx/st-1/health"
        broken = {"a4_printer": {"state": "offline", "reasons": ["unreachable"]}}
        ingest.handle(topic, messages.health(devices=broken))
        with store.session() as db:
            assert [(a.kind, a.active_key is not None) for a in db.query(Alert)] == [
                ("printer_fault", True)
            ]
        ingest.handle(
            topic, messages.health(devices={"a4_printer": {"state": "ok", "reasons": []}})
        )
        with store.session() as db:
            assert [(a.kind, a.active_key is not None) for a in db.query(Alert)] == [
                ("printer_fault", False)
            ]
    finally:
        store.close()


def test_a_disk_nearly_full_and_a_wrong_clock_are_alerts_until_they_are_right(
    db_url: str,
) -> None:
    """Either stops a station quietly: the journal cannot keep a print job, a rating or an event
    on a full disk; dates on certificates and TLS go wrong with the clock."""
    from fleet.console.conditions import CLOCK_SKEW_S, DISK_LOW_MIB, health_conditions
    from fleet.console.ingest import Ingest
    from fleet.console.store import Store
    from fleet.mqtt.client import BrokerAccess
    from tests.fleet import messages

    now = time.time()
    assert health_conditions({"disk_free_mib": DISK_LOW_MIB - 1})["disk_low"] == {
        "free_mib": DISK_LOW_MIB - 1
    }
    assert "disk_low" not in health_conditions({"disk_free_mib": DISK_LOW_MIB})
    ahead = health_conditions({"ts": now + CLOCK_SKEW_S + 30}, received=now)
    assert ahead["clock_skew"] == {"skew_s": round(CLOCK_SKEW_S + 30)}
    assert "clock_skew" in health_conditions({"ts": now - 3600}, received=now)  # behind
    assert "clock_skew" not in health_conditions({"ts": now - 5}, received=now)
    assert "clock_skew" not in health_conditions({"ts": now + 3600})  # arrival unknown: no verdict

    store = Store(db_url)
    store.migrate()
    ingest = Ingest(store, BrokerAccess("127.0.0.1", 1, "unused"))
    try:
        topic = "kiosk/v1/zibo-gx/st-1/health"
        ingest.handle(topic, messages.health(disk_free_mib=80, ts=time.time() - 7200))
        with store.session() as db:
            active = {a.kind for a in db.query(Alert) if a.active_key is not None}
        assert active == {"disk_low", "clock_skew"}
        ingest.handle(topic, messages.health(disk_free_mib=20_000, ts=time.time()))
        with store.session() as db:
            assert {a.kind for a in db.query(Alert) if a.active_key is not None} == set()
    finally:
        store.close()
