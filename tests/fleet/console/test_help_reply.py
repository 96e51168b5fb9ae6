"""Help requests on the console (issue 18, 帮办): repeated presses are one alert that lists the
screens they came from; an acknowledgement may carry an answer, checked, audited and sent to the
station as the ``help_reply`` command (from the API and the CLI alike). The full way to the
resident's screen is tests/kiosk/ui/test_help.py."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from fleet.agent.commands import UI_HANDLERS
from fleet.console import Console
from fleet.console.alerting import MAX_SCREENS
from fleet.console.store import Alert, AuditEntry, CommandRow, Station
from tests.fleet import messages
from tests.fleet.console.test_console import login, make_console

SITE = "zibo-gx"
IDS = itertools.count()  # event ids: each press is a new event


def topic(station: str, rest: str) -> str:
    return f"kiosk/v1/{SITE}/{station}/{rest}"


@pytest.fixture
def console(db_url: str) -> Iterator[Console]:
    c = make_console(None, db_url)  # never started: the ingest is fed by hand, no broker
    yield c
    c.store.close()


def press(console: Console, station: str, *screens: str, batch: bool = False) -> None:
    """Help pressed on these screens: one message at a time, or all in one batch."""
    sent = [
        (topic(station, "evt/help"), messages.event("help", station, f"h-{next(IDS)}", screen=s))
        for s in screens
    ]
    if batch:
        console.ingest.handle_batch(sent)
    else:
        for t, data in sent:
            console.ingest.handle(t, data)


def help_alerts(console: Console, station: str) -> list[Alert]:
    with console.store.session() as db:
        sid = select(Station.id).where(Station.station == station).scalar_subquery()
        query = select(Alert).where(Alert.station_id == sid, Alert.kind == "help_request")
        rows = list(db.scalars(query.order_by(Alert.id)))
        db.expunge_all()
        return rows


def test_repeated_presses_are_one_alert_with_every_screen(console: Console) -> None:
    press(console, "st-1", "choose")
    press(console, "st-1", "preview", "preview")  # one at a time: raise_alert
    press(console, "st-1", "printing", "rate", batch=True)  # one batch: raise_alerts
    [alert] = help_alerts(console, "st-1")
    assert alert.count == 5
    assert alert.detail["screens"] == ["choose", "preview", "preview", "printing", "rate"]
    assert alert.detail["screen"] == "choose"  # the first, as before
    # bounded: the newest MAX_SCREENS while the alert is open
    press(console, "st-1", *[f"s{i}" for i in range(12)], batch=True)
    [alert] = help_alerts(console, "st-1")
    assert alert.count == 17
    assert alert.detail["screens"] == [f"s{i}" for i in range(2, 12)]
    assert len(alert.detail["screens"]) == MAX_SCREENS
    # another station's presses are its own alert
    press(console, "st-2", "identify")
    [other] = help_alerts(console, "st-2")
    assert (other.count, other.detail["screens"]) == (1, ["identify"])
    # once acknowledged, the next press is a new alert with its own list
    tech, csrf = login(console, "tech")
    assert tech.post(f"/api/alerts/{alert.id}/ack", headers={"X-CSRF-Token": csrf}).status_code
    press(console, "st-1", "idle")
    old, new = help_alerts(console, "st-1")
    assert old.active_key is None and new.detail["screens"] == ["idle"] and new.count == 1


def reply_commands(console: Console) -> list[CommandRow]:
    with console.store.session() as db:
        rows = list(db.scalars(select(CommandRow).where(CommandRow.name == "help_reply")))
        db.expunge_all()
        return rows


def test_an_answer_is_checked_audited_and_sent_with_the_acknowledgement(console: Console) -> None:
    press(console, "st-1", "preview")
    [alert] = help_alerts(console, "st-1")
    tech, csrf = login(console, "tech")
    headers = {"X-CSRF-Token": csrf}
    url = f"/api/alerts/{alert.id}/ack"
    for bad in (
        {"reply": "on_the_way", "minutes": 0},
        {"reply": "on_the_way", "minutes": "soon"},
        {"reply": "call", "number": "call me"},
        {"reply": "text", "text": "x" * 61},
        {"reply": "text", "text": "line one\nline two"},
        {"reply": "sing"},
    ):
        assert tech.post(url, headers=headers, json=bad).status_code == 400, bad
    [still] = help_alerts(console, "st-1")
    assert still.acknowledged_at is None and reply_commands(console) == []
    text = "[size=400]稍等[/size] 马上到"  # data, never markup: the kiosk shows it as written
    done = tech.post(url, headers=headers, json={"reply": "text", "text": text})
    assert done.status_code == 200
    [command] = reply_commands(console)
    assert done.json() == {"acknowledged": True, "reply_command": command.id}
    assert command.args == {"kind": "text", "text": text} and command.status == "sent"
    assert command.actor == "tech" and command.timeout_s == 120.0
    [acked] = help_alerts(console, "st-1")
    assert acked.acknowledged_by == "tech" and acked.active_key is None
    assert acked.detail["reply"]["text"] == text and acked.detail["reply"]["by"] == "tech"
    # the station's agent takes exactly these arguments
    [handler] = [h for h in UI_HANDLERS if h.name == "help_reply"]
    assert handler.target == "ui" and handler.validate(dict(command.args)) == command.args
    # the alerts page shows the answer, escaped
    page = tech.get("/alerts?all=1").text
    assert "[size=400]稍等[/size] 马上到" in page and "已回复" in page
    # only a help request is answered
    press(console, "st-1", "choose")
    with console.store.session() as db:
        station_id = db.scalar(select(Station.id).where(Station.station == "st-1"))
    assert station_id is not None
    console.ingest.raise_alert(station_id, "paper_low", {})
    with console.store.session() as db:
        paper = db.scalar(select(Alert.id).where(Alert.kind == "paper_low"))
    refused = tech.post(
        f"/api/alerts/{paper}/ack", headers=headers, json={"reply": "on_the_way", "minutes": 5}
    )
    assert refused.status_code == 400
    with console.store.session() as db:
        trail = [
            (a.action, a.actor, a.detail)
            for a in db.scalars(select(AuditEntry).order_by(AuditEntry.id))
            if a.action in ("acknowledge_alert", "help_reply")
        ]
    assert [(a, b) for a, b, _ in trail] == [("acknowledge_alert", "tech"), ("help_reply", "tech")]
    assert trail[0][2]["reply"] == {"kind": "text", "text": text}
    assert trail[1][2]["id"] == command.id and trail[1][2]["text"] == text


def test_the_cli_queues_the_answer_and_the_console_sends_it(
    console: Console, db_url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from fleet.cli import main as fleet

    press(console, "st-1", "identify")
    [alert] = help_alerts(console, "st-1")
    ack = ["alerts", "ack", str(alert.id), "--db", db_url, "--as", "tech"]
    assert fleet([*ack, "--on-the-way", "0"]) == 2  # refused before anything is written
    assert "minutes" in capsys.readouterr().err
    assert help_alerts(console, "st-1")[0].acknowledged_at is None
    assert fleet([*ack, "--call", "0533-12345"]) == 0
    assert "queued" in capsys.readouterr().out
    [command] = reply_commands(console)
    assert command.status == "queued" and command.args == {"kind": "call", "number": "0533-12345"}
    console.ingest.sweep()  # a running console's sweep publishes it
    [command] = reply_commands(console)
    assert command.status == "sent"
    console.ingest.sweep()
    assert reply_commands(console)[0].status == "sent"  # once
    # an answer no console sent within its timeout is not sent late
    press(console, "st-1", "choose")
    [_, again] = help_alerts(console, "st-1")
    assert (
        fleet(["alerts", "ack", str(again.id), "--db", db_url, "--as", "tech", "--say", "ok"]) == 0
    )
    capsys.readouterr()
    late = [c for c in reply_commands(console) if c.status == "queued"]
    assert len(late) == 1
    console.ingest.sweep(now=late[0].created_at + 121)
    assert [c.status for c in reply_commands(console) if c.id == late[0].id] == ["timed_out"]
    assert json.dumps(late[0].args) == '{"kind": "text", "text": "ok"}'
