"""The kiosk's own report of a call's end (``evt/call_end``, issue 22) in the console's audit:
one ``call_end`` per call, whoever reports first, de-duplicated by event id and by call; a
station cannot end another station's call. The console is fed by hand (no broker)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from fleet.console import Console
from fleet.console.store import AuditEntry, audit, new_command
from fleet.protocol.call import CALL_OFFER
from tests.fleet import messages
from tests.fleet.console.test_console import make_console

SITE = "zibo-gx"
IDS = itertools.count()


@pytest.fixture
def console(db_url: str) -> Iterator[Console]:
    c = make_console(None, db_url)
    yield c
    c.store.close()


def offered(console: Console, station: str, actor: str = "tech") -> str:
    """A call_offer the console sent to ``station`` (recorded as the page's route does)."""
    station_id = console.ingest.station_id(SITE, station)
    row = new_command(station_id, CALL_OFFER, {}, 30.0, actor)
    with console.store.session() as db:
        db.add(row)
        audit(db, actor, "call_offer", f"{SITE}/{station}", id=row.id)
        audit(db, actor, "call_start", f"{SITE}/{station}", id=row.id, staff=actor)
    return row.id


def ended(console: Console, station: str, event_id: str, call_id: str, **fields: Any) -> None:
    data = messages.event("call_end", station, event_id, call_id=call_id, **fields)
    console.ingest.handle(f"kiosk/v1/{SITE}/{station}/evt/call_end", data)


def ends(console: Console) -> list[tuple[str, str, dict[str, Any]]]:
    with console.store.session() as db:
        rows = db.scalars(select(AuditEntry).where(AuditEntry.action == "call_end"))
        return [(r.actor, r.target, dict(r.detail or {})) for r in rows]


def test_the_kiosks_end_is_audited_once_with_its_duration_and_reason(console: Console) -> None:
    call = offered(console, "st-1")
    ended(console, "st-1", "e-1", call, reason="dropped", duration_s=42.04)
    ended(console, "st-1", "e-1", call, reason="dropped", duration_s=42.04)  # redelivered
    ended(console, "st-1", "e-2", call, reason="resident", duration_s=43.0)  # a second word
    assert ends(console) == [
        (
            "tech",
            f"{SITE}/st-1",
            {
                "id": call,
                "staff": "tech",
                "reason": "dropped",
                "connected": True,
                "duration_s": 42.0,
                "by": "station",
            },
        )
    ]


def test_the_pages_end_first_leaves_the_kiosks_out(console: Console) -> None:
    call = offered(console, "st-1")
    with console.store.session() as db:
        audit(db, "tech", "call_end", f"{SITE}/st-1", id=call, reason="staff", duration_s=9.0)
    ended(console, "st-1", f"e-{next(IDS)}", call, reason="staff")
    assert [d["reason"] for _, _, d in ends(console)] == ["staff"]


def test_a_station_cannot_end_another_stations_call(console: Console) -> None:
    call = offered(console, "st-1")
    ended(console, "st-2", f"e-{next(IDS)}", call)  # st-2 names st-1's call
    ended(console, "st-2", f"e-{next(IDS)}", "no-such-call")
    assert ends(console) == []
    ended(console, "st-1", f"e-{next(IDS)}", call)
    assert len(ends(console)) == 1


def test_an_end_event_out_of_its_limits_is_set_aside() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        messages.event("call_end", "st-1", "e-x", reason="hung up")
    with pytest.raises(ValidationError):
        messages.event("call_end", "st-1", "e-x", duration_s=-1.0)
    with pytest.raises(ValidationError):
        messages.event("call_end", "st-1", "e-x", staff="a name")  # no name rides along


def test_the_station_page_offers_a_call_only_where_the_station_reported_call_devices(
    console: Console,
) -> None:
    from tests.fleet.console.test_console import login

    for station, capabilities in (
        ("st-mic", ["id_card", "a4", "thermal", "voice", "call"]),
        ("st-mute", ["id_card", "a4", "thermal", "voice"]),
    ):
        data = messages.birth(SITE, station, capabilities=capabilities)
        console.ingest.handle(f"kiosk/v1/{SITE}/{station}/birth", data)
    tech, _ = login(console, "tech")
    page = tech.get(f"/stations/{SITE}/st-mic").text
    assert 'id="call-station"' in page and 'id="call-unavailable"' not in page
    page = tech.get(f"/stations/{SITE}/st-mute").text
    assert 'id="call-station"' not in page and 'id="call-unavailable"' in page
    assert "无法通话" in page or "no call is possible" in page
