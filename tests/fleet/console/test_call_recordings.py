"""Recording a staff member's call with the resident's consent (issue 22), the console's side:
the real console app and database (SQLite and PostgreSQL) through HTTP, its recordings on disk.

The technician's page relays the kiosk's consent and uploads the recording in pieces; the kiosk's
``evt/call_end`` is fed to the ingest by hand (no broker: the offer's publish goes nowhere).
"""

from __future__ import annotations

import itertools
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from fleet.console import Console
from fleet.console.call_records import MAX_PIECE, RecordingPolicy
from fleet.console.store import AuditEntry, CommandRow, Store
from tests.fleet import messages
from tests.fleet.console.test_console import login, make_console

SITE = "zibo-gx"
STATION = "st-rec"
SDP = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
WEBM = {"Content-Type": "audio/webm;codecs=opus"}
EVENTS = itertools.count()
DAYS = 30


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "recordings"


def console_with(db_url: str, policy: RecordingPolicy) -> Console:
    console = make_console(None, db_url, recording=policy)
    console.add_user("tech2", "correct horse battery", "technician")
    data = messages.birth(SITE, STATION, capabilities=["id_card", "voice", "call"])
    console.ingest.handle(f"kiosk/v1/{SITE}/{STATION}/birth", data)
    return console


@pytest.fixture
def console(db_url: str, folder: Path) -> Iterator[Console]:
    c = console_with(db_url, RecordingPolicy(True, DAYS, folder))
    yield c
    c.store.close()


class Tech:
    """A logged-in technician's page, as call.js calls the console."""

    def __init__(self, console: Console, name: str = "tech") -> None:
        self.http, self.csrf = login(console, name)

    def post(self, path: str, **kw: Any) -> Any:
        headers = {"X-CSRF-Token": self.csrf, **kw.pop("headers", {})}
        return self.http.post(path, headers=headers, **kw)

    def call(self) -> str:
        made = self.post(f"/api/stations/{SITE}/{STATION}/calls", json={"sdp": SDP})
        assert made.status_code == 202, made.text
        call_id = str(made.json()["id"])
        assert self.post(f"/api/calls/{call_id}/connected").status_code == 200
        return call_id

    def consent(self, call_id: str, said: str) -> Any:
        return self.post(f"/api/calls/{call_id}/consent", json={"consent": said})

    def piece(self, call_id: str, seq: int, data: bytes, **headers: str) -> Any:
        return self.post(
            f"/api/calls/{call_id}/recording?seq={seq}", content=data, headers={**WEBM, **headers}
        )


def station_end(console: Console, call_id: str, consent: str) -> None:
    data = messages.event(
        "call_end",
        STATION,
        f"e-{next(EVENTS)}",
        call_id=call_id,
        reason="resident",
        connected=True,
        duration_s=12.0,
        consent=consent,
    )
    console.ingest.handle(f"kiosk/v1/{SITE}/{STATION}/evt/call_end", data)


def audited(console: Console, action: str) -> list[tuple[str, str, dict[str, Any]]]:
    with console.store.session() as db:
        rows = db.scalars(
            select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
        )
        return [(r.actor, r.target, dict(r.detail or {})) for r in rows]


def offer_args(console: Console, call_id: str) -> dict[str, Any]:
    with console.store.session() as db:
        row = db.get(CommandRow, call_id)
        assert row is not None
        return dict(row.args)


PIECES = [b"\x1a\x45\xdf\xa3" + bytes([i]) * (1000 + i) for i in range(3)]


def test_with_consent_the_pieces_are_kept_in_order_privately(
    console: Console, folder: Path
) -> None:
    tech = Tech(console)
    call = tech.call()
    args = offer_args(console, call)  # the kiosk is to ask the resident, saying how long
    assert (args["record"], args["record_days"]) == (True, DAYS)
    page = tech.http.get(f"/stations/{SITE}/{STATION}/call").text
    assert 'data-recording="on"' in page
    assert tech.consent(call, "yes").json() == {"consent": "yes"}
    assert tech.consent(call, "yes").status_code == 200  # relayed twice: audited once
    assert tech.consent(call, "no").status_code == 409  # the answer does not change
    for seq, data in enumerate(PIECES):
        done = tech.piece(call, seq, data)
        assert done.status_code == 200, done.text
        assert done.json()["appended"] is True
    again = tech.piece(call, 1, PIECES[1])  # a retry of a stored piece
    assert again.status_code == 200 and again.json()["appended"] is False
    gap = tech.piece(call, 5, b"late")
    assert gap.status_code == 409 and "piece 3 is next" in gap.json()["error"]
    path = folder / f"{call}.webm"
    assert path.read_bytes() == b"".join(PIECES)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert [d for _, _, d in audited(console, "call_consent")] == [{"id": call, "consent": "yes"}]
    station_end(console, call, "yes")  # the kiosk agrees: kept
    assert path.read_bytes() == b"".join(PIECES)
    assert audited(console, "recording_deleted") == []


def test_a_torn_piece_left_by_a_crash_is_cut_off(console: Console, folder: Path) -> None:
    tech = Tech(console)
    call = tech.call()
    tech.consent(call, "yes")
    assert tech.piece(call, 0, PIECES[0]).status_code == 200
    with (folder / f"{call}.webm").open("ab") as f:
        f.write(b"half a piece")  # written, never counted: the console died here
    assert tech.piece(call, 1, PIECES[1]).status_code == 200
    assert (folder / f"{call}.webm").read_bytes() == PIECES[0] + PIECES[1]


def test_without_consent_nothing_is_written(console: Console, folder: Path) -> None:
    tech = Tech(console)
    call = tech.call()
    refused = tech.piece(call, 0, PIECES[0])
    assert refused.status_code == 403 and "consented" in refused.json()["error"]
    assert tech.consent(call, "no").status_code == 200
    assert tech.piece(call, 0, PIECES[0]).status_code == 403
    assert tech.consent(call, "maybe").status_code == 400
    not_json = tech.post(
        f"/api/calls/{call}/consent", content=b"{", headers={"Content-Type": "application/json"}
    )
    assert not_json.status_code == 400
    assert not (folder / f"{call}.webm").exists()
    other = tech.call()
    tech.consent(other, "yes")
    assert tech.piece(other, 0, PIECES[0], **{"Content-Type": "video/mp4"}).status_code == 415
    big = tech.piece(other, 0, b"\0" * (MAX_PIECE + 1))
    assert big.status_code == 413
    assert not (folder / f"{other}.webm").exists()


def test_another_technicians_call_is_refused(console: Console, folder: Path) -> None:
    tech, other = Tech(console), Tech(console, "tech2")
    call = tech.call()
    assert other.consent(call, "yes").status_code == 403
    tech.consent(call, "yes")
    assert other.piece(call, 0, PIECES[0]).status_code == 403
    assert tech.post("/api/calls/no-such-call/consent", json={"consent": "yes"}).status_code == 404
    assert not (folder / f"{call}.webm").exists()
    no_csrf = tech.http.post(f"/api/calls/{call}/recording?seq=0", content=b"x", headers=WEBM)
    assert no_csrf.status_code == 403


def test_recording_off_offers_no_recording_and_takes_nothing(db_url: str, folder: Path) -> None:
    console = console_with(db_url, RecordingPolicy(False, DAYS, folder))
    try:
        tech = Tech(console)
        call = tech.call()
        args = offer_args(console, call)
        assert (args["record"], args["record_days"]) == (False, 0)
        page = tech.http.get(f"/stations/{SITE}/{STATION}/call").text
        assert 'data-recording="off"' in page
        assert tech.consent(call, "yes").status_code == 409
        refused = tech.piece(call, 0, PIECES[0])
        assert refused.status_code == 409 and "does not record" in refused.json()["error"]
        assert not folder.exists()
        assert audited(console, "call_consent") == []
    finally:
        console.store.close()


@pytest.mark.parametrize("kiosk_says", ["no", ""])
def test_the_kiosks_word_wins(console: Console, folder: Path, kiosk_says: str) -> None:
    tech = Tech(console)
    call = tech.call()
    tech.consent(call, "yes")  # the page said yes ...
    tech.piece(call, 0, PIECES[0])
    tech.piece(call, 1, PIECES[1])
    assert (folder / f"{call}.webm").exists()
    station_end(console, call, kiosk_says)  # ... the kiosk's end event did not
    assert not (folder / f"{call}.webm").exists()
    assert not (folder / f"{call}.json").exists()
    size = len(PIECES[0]) + len(PIECES[1])
    assert audited(console, "recording_deleted") == [
        (
            "station",
            f"{SITE}/{STATION}",
            {
                "id": call,
                "reason": "no consent from the station",
                "consent": kiosk_says,
                "bytes": size,
            },
        )
    ]
    late = tech.piece(call, 2, PIECES[2])  # the page's last piece, just after the end
    assert late.status_code == 403
    assert not (folder / f"{call}.webm").exists()
    station_end(console, call, kiosk_says)  # redelivered: audited once
    assert len(audited(console, "recording_deleted")) == 1


def test_the_last_piece_is_taken_just_after_the_end_and_not_later(
    console: Console, folder: Path
) -> None:
    tech = Tech(console)
    call = tech.call()
    tech.consent(call, "yes")
    tech.piece(call, 0, PIECES[0])
    assert tech.post(f"/api/calls/{call}/end", json={"reason": "staff"}).status_code == 200
    assert tech.consent(call, "yes").status_code == 409  # nothing to ask after the end
    assert tech.piece(call, 1, PIECES[1]).status_code == 200  # just after the end
    with console.store.session() as db:  # the call, moved a few minutes back: ended 61 s ago
        offer = db.get_one(CommandRow, call)
        offer.created_at -= 300
        end = db.scalars(select(AuditEntry).where(AuditEntry.action == "call_end")).one()
        end.ts = time.time() - 61
    late = tech.piece(call, 2, PIECES[2])
    assert late.status_code == 409 and "ended" in late.json()["error"]
    assert (folder / f"{call}.webm").read_bytes() == PIECES[0] + PIECES[1]


def test_retention_purges_after_the_days_and_audits(console: Console, folder: Path) -> None:
    tech = Tech(console)
    call = tech.call()
    tech.consent(call, "yes")
    tech.piece(call, 0, PIECES[0])
    tech.post(f"/api/calls/{call}/end", json={"reason": "staff"})
    now = time.time()
    assert console.ingest.purge_recordings(now + (DAYS - 1) * 86400) == []
    assert (folder / f"{call}.webm").exists()
    assert console.ingest.purge_recordings(now + (DAYS + 1) * 86400) == [call]
    assert not (folder / f"{call}.webm").exists()
    [(actor, target, detail)] = audited(console, "recording_purged")
    assert (actor, target, detail["id"], detail["bytes"], detail["days"]) == (
        "retention",
        f"{SITE}/{STATION}",
        call,
        len(PIECES[0]),
        DAYS,
    )
    # a file the audit knows nothing of goes by its own time
    stray = folder / "0123abcd.webm"
    stray.write_bytes(b"x")
    os.utime(stray, (now - (DAYS + 1) * 86400,) * 2)
    assert console.ingest.purge_recordings(now) == ["0123abcd"]
    assert not stray.exists()


def test_admins_list_and_listen_technicians_may_not(console: Console, folder: Path) -> None:
    tech = Tech(console)
    call = tech.call()
    tech.consent(call, "yes")
    tech.piece(call, 0, PIECES[0])
    tech.piece(call, 1, PIECES[1])
    station_end(console, call, "yes")
    assert tech.http.get("/calls").status_code == 403
    assert tech.http.get(f"/calls/{call}/recording.webm").status_code == 403
    assert 'href="/calls"' not in tech.http.get("/").text
    boss, _ = login(console, "boss")
    page = boss.get("/calls", headers={"Accept-Language": "en"})
    assert page.status_code == 200
    assert 'href="/calls"' in page.text  # in the navigation
    assert f'href="/calls/{call}/recording.webm"' in page.text
    row = page.text.split(f'id="call-{call}"')[1].split("</tr>")[0]
    assert f"{SITE}/{STATION}" in row and ">tech<" in row and "Agreed" in row
    assert "12 s" in row  # the kiosk's duration
    zh = boss.get("/calls")  # Chinese first
    assert "通话与录音" in zh.text and "同意" in zh.text
    listened = boss.get(f"/calls/{call}/recording.webm")
    assert listened.status_code == 200
    assert listened.headers["content-type"] == "audio/webm"
    assert listened.content == PIECES[0] + PIECES[1]
    assert audited(console, "recording_fetched") == [
        ("boss", f"{SITE}/{STATION}", {"id": call, "bytes": len(PIECES[0]) + len(PIECES[1])})
    ]
    assert boss.get("/calls/0123abcd/recording.webm").status_code == 404


def test_fleet_calls_purge_recordings(
    db_url: str, folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fleet.cli import main

    console = console_with(db_url, RecordingPolicy(True, DAYS, folder))
    try:
        tech = Tech(console)
        old, new = tech.call(), tech.call()
        for call in (old, new):
            tech.consent(call, "yes")
            tech.piece(call, 0, PIECES[0])
        long_ago = time.time() - 3 * 86400
        os.utime(folder / f"{old}.webm", (long_ago, long_ago))  # neither call has an end
    finally:
        console.store.close()
    argv = ["calls", "purge-recordings", "--db", db_url, "--dir", str(folder), "--days", "2"]
    assert main(argv) == 0
    assert capsys.readouterr().out.split() == [old]
    assert not (folder / f"{old}.webm").exists() and (folder / f"{new}.webm").exists()
    store = Store(db_url)
    try:
        with store.session() as db:
            rows = db.scalars(select(AuditEntry).where(AuditEntry.action == "recording_purged"))
            assert [(r.actor, (r.detail or {})["id"]) for r in rows] == [("retention", old)]
    finally:
        store.close()
