"""Bad reviews followed up (差评回访, issue 18): a rating of one or two stars becomes a follow-up
when the console first stores it, and people move it from open to resolved, audited.

Ratings are fed to the console's ingest directly (``Ingest.handle``), as the broker would hand
them over; every test runs on SQLite and on PostgreSQL (``db_url``).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from fleet.console import Console, i18n
from fleet.console.catalog_drafts import CatalogDraft
from fleet.console.followups import TAGS, FollowUp
from fleet.console.store import AuditEntry
from fleet.protocol.topics import ROOT
from tests.fleet import messages
from tests.fleet.console.test_console import login, make_console

SITE = "zibo-gx"
REPO = Path(__file__).resolve().parents[3]


def rate(console: Console, station: str, event_id: str, stars: int, **fields: Any) -> None:
    topic = f"{ROOT}/{SITE}/{station}/evt/rating"
    payload = messages.event("rating", station, event_id, rating=stars, **fields)
    console.ingest.handle(topic, payload)


def followup_rows(console: Console) -> list[tuple[str, str, int, str]]:
    with console.store.session() as db:
        return [
            (f.event_id, f.state, f.rating, f.service)
            for f in db.query(FollowUp).order_by(FollowUp.id)
        ]


def followup_audit(console: Console) -> list[tuple[str, bool, dict[str, Any]]]:
    with console.store.session() as db:
        return [
            (a.actor, a.ok, a.detail)
            for a in db.query(AuditEntry)
            .filter(AuditEntry.action == "followup")
            .order_by(AuditEntry.id)
        ]


@pytest.fixture
def console(db_url: str) -> Any:
    made = make_console(None, db_url)
    try:
        yield made
    finally:
        made.stop()


def test_a_one_star_rating_is_listed_and_moved_to_resolved_audited(console: Console) -> None:
    rate(console, "st-0001", "r-1", 1, tags=["slow", "print"], service="queue_ticket")
    tech, csrf = login(console, "tech")
    page = tech.get("/followups")
    assert page.status_code == 200
    assert 'id="followup-1"' in page.text and "st-0001" in page.text
    assert "等待太久" in page.text and "打印问题" in page.text  # tags in words
    assert "★☆☆☆☆" in page.text and "<strong>待回访</strong>" in page.text
    english = tech.get("/followups", headers={"Accept-Language": "en"}).text
    assert "Too slow" in english and "Printing problem" in english and "等待太久" not in english
    [item] = tech.get("/api/followups").json()
    assert (item["state"], item["rating"], item["next"]) == (
        "open",
        1,
        ["contacted", "unreachable"],
    )
    assert item["due_at"] == pytest.approx(item["created_at"] + 24 * 3600)
    assert not item["overdue"]

    moved = tech.post(
        f"/followups/{item['id']}",
        data={
            "csrf_token": csrf,
            "state": "contacted",
            "note": "站内工作人员已致电说明",
            "back": "/followups",
        },
    )
    assert moved.status_code == 303 and moved.headers["location"] == "/followups"
    done = tech.post(
        f"/api/followups/{item['id']}",
        json={"state": "resolved", "note": "打印机已换纸，已回复"},
        headers={"X-CSRF-Token": csrf},
    )
    assert done.status_code == 200, done.text
    assert done.json()["state"] == "resolved" and done.json()["updated_by"] == "tech"
    assert [h["state"] for h in done.json()["history"]] == ["contacted", "resolved"]
    assert [r[1] for r in followup_rows(console)] == ["resolved"]
    # no longer waiting: gone from the default list, shown with ?state=resolved
    assert tech.get("/api/followups").json() == []
    [settled] = tech.get("/api/followups?state=resolved").json()
    assert settled["note"] == "打印机已换纸，已回复" and settled["next"] == []
    trail = followup_audit(console)
    assert [(actor, ok, d["was"], d["state"]) for actor, ok, d in trail] == [
        ("tech", True, "open", "contacted"),
        ("tech", True, "contacted", "resolved"),
    ]
    assert trail[1][2]["note"] == "打印机已换纸，已回复"
    # resolved is final: a further step is refused (409) and the refusal audited
    again = tech.post(
        f"/api/followups/{item['id']}",
        json={"state": "contacted", "note": "again"},
        headers={"X-CSRF-Token": csrf},
    )
    assert again.status_code == 409
    assert followup_audit(console)[-1][:2] == ("tech", False)


def test_only_ratings_of_two_stars_or_fewer_are_followed_up_once(console: Console) -> None:
    rate(console, "st-0002", "r-3", 3)
    rate(console, "st-0002", "r-5", 5)
    assert followup_rows(console) == []
    rate(console, "st-0002", "r-2", 2, service="social_insurance_certificate")
    rate(console, "st-0002", "r-2", 2, service="social_insurance_certificate")  # redelivered
    console.ingest.handle_batch(  # and once more, twice in one batch
        [
            (
                f"{ROOT}/{SITE}/st-0002/evt/rating",
                messages.event("rating", "st-0002", "r-2", rating=2),
            )
        ]
        * 2
    )
    assert followup_rows(console) == [("r-2", "open", 2, "social_insurance_certificate")]
    rate(console, "st-0003", "r-2", 1)  # the same event id from another station is its own
    assert [r[0] for r in followup_rows(console)] == ["r-2", "r-2"]


def test_a_technician_may_move_one_and_a_role_without_the_permission_may_not(
    console: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fleet.console import auth

    rate(console, "st-0004", "r-1", 1)
    # who may: the permissions table names "followup" (technicians, operators, admins); take
    # it from operators for this test to see a role without it refused
    monkeypatch.setitem(auth.PERMISSIONS, "followup", frozenset({"technician", "admin"}))
    oper, oper_csrf = login(console, "oper")
    [item] = oper.get("/api/followups").json()  # every role may look
    page = oper.get("/followups")
    assert 'action="/followups/' not in page.text  # and sees no form it may not use
    refused = oper.post(
        f"/followups/{item['id']}",
        data={"csrf_token": oper_csrf, "state": "contacted", "note": "tried"},
    )
    assert refused.status_code == 403
    api_refused = oper.post(
        f"/api/followups/{item['id']}",
        json={"state": "contacted", "note": "tried"},
        headers={"X-CSRF-Token": oper_csrf},
    )
    assert api_refused.status_code == 403
    assert followup_rows(console)[0][1] == "open"
    tech, csrf = login(console, "tech")
    no_csrf = tech.post(f"/followups/{item['id']}", data={"state": "contacted", "note": "x"})
    assert no_csrf.status_code == 403
    no_note = tech.post(
        f"/api/followups/{item['id']}",
        json={"state": "unreachable", "note": "  "},
        headers={"X-CSRF-Token": csrf},
    )
    assert no_note.status_code == 400
    moved = tech.post(
        f"/api/followups/{item['id']}",
        json={"state": "unreachable", "note": "无联系方式 · no way to reach them"},
        headers={"X-CSRF-Token": csrf},
    )
    assert moved.status_code == 200 and moved.json()["state"] == "unreachable"
    with console.store.session() as db:
        denied = [
            (a.actor, a.detail.get("needs"))
            for a in db.query(AuditEntry).filter(AuditEntry.action == "denied")
        ]
    assert denied.count(("oper", "followup")) == 2


def test_the_list_is_filtered_ordered_and_marks_overdue(db_url: str) -> None:
    console = make_console(None, db_url, followup_due_s=0.0)  # due at once: overdue at once
    try:
        rate(console, "st-0010", "a", 1)
        time.sleep(0.01)
        rate(console, "st-0011", "b", 2)
        console.ingest.handle(
            f"{ROOT}/other-site/st-0012/evt/rating",
            messages.event("rating", "st-0012", "c", rating=1),
        )
        tech, csrf = login(console, "tech")
        everything = tech.get("/api/followups")
        assert everything.headers["X-Total-Count"] == "3"
        assert [f["event_id"] for f in everything.json()] == ["a", "b", "c"]  # oldest first
        assert all(f["overdue"] for f in everything.json())
        assert [f["station"] for f in tech.get("/api/followups?site=other-site").json()] == [
            "st-0012"
        ]
        assert [f["event_id"] for f in tech.get("/api/followups?station=st-0011").json()] == ["b"]
        first = everything.json()[0]["id"]
        tech.post(
            f"/api/followups/{first}",
            json={"state": "contacted", "note": "called"},
            headers={"X-CSRF-Token": csrf},
        )
        # open ones first: the older one, now contacted, goes after the open ones
        assert [f["event_id"] for f in tech.get("/api/followups").json()] == ["b", "c", "a"]
        assert [f["event_id"] for f in tech.get("/api/followups?state=open").json()] == ["b", "c"]
        assert "已超期" in tech.get("/followups").text
        station = tech.get("/stations/zibo-gx/st-0011")
        assert "待办差评回访" in station.text and 'id="followup-' in station.text
        assert 'action="/followups/' not in station.text  # redrawn live: a link, no form
        assert "/followups?site=zibo-gx&amp;station=st-0011" in station.text
        assert "st-0010" not in station.text  # only its own station's
        quiet = tech.get("/stations/zibo-gx/st-0010")  # contacted is still pending: shown
        assert "<strong>已回访</strong>" in quiet.text
    finally:
        console.stop()


def test_the_cli_lists_and_moves_follow_ups(
    console: Console, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from fleet.cli import main as fleet

    rate(console, "st-0020", "r-1", 1, tags=["voice"])
    assert fleet(["followups", "--db", db_url]) == 0
    table = capsys.readouterr().out
    assert "st-0020" in table and "open" in table and "Voice unclear" in table
    assert fleet(["followups", "--db", db_url, "--json"]) == 0
    [item] = json.loads(capsys.readouterr().out)
    fid = str(item["id"])
    assert fleet(["followups", "--db", db_url, "--set", fid, "contacted", "--note", "x"]) == 2
    assert (
        fleet(
            [
                "followups",
                "--db",
                db_url,
                "--set",
                fid,
                "resolved",
                "--as",
                "tech",
                "--note",
                "skip",
            ]
        )
        == 1
    )
    assert "allowed contacted, unreachable" in capsys.readouterr().err
    assert (
        fleet(
            [
                "followups",
                "--db",
                db_url,
                "--set",
                fid,
                "contacted",
                "--as",
                "tech",
                "--note",
                "已致电",
            ]
        )
        == 0
    )
    assert (
        fleet(
            [
                "followups",
                "--db",
                db_url,
                "--set",
                fid,
                "resolved",
                "--as",
                "tech",
                "--note",
                "已办结",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert fleet(["followups", "--db", db_url, "--state", "resolved", "--json"]) == 0
    [done] = json.loads(capsys.readouterr().out)
    assert (done["state"], done["updated_by"]) == ("resolved", "tech")
    trail = followup_audit(console)
    assert [(a, ok, d.get("via")) for a, ok, d in trail] == [
        ("tech", False, "cli"),
        ("tech", True, "cli"),
        ("tech", True, "cli"),
    ]


def test_tag_words_agree_with_the_kiosk_locales() -> None:
    """The console words the kiosk's tags (console.po) as the kiosk does (kiosk.po)."""
    kv = (REPO / "kiosk/ui/screens/rate.kv").read_text()
    assert set(re.findall(r"tag: '(\w+)'", kv)) == set(TAGS)
    for lang, folder in (("zh", "zh_CN"), ("en", "en")):
        po = (REPO / f"assets/locales/{folder}/LC_MESSAGES/kiosk.po").read_text()
        for tag in TAGS:
            found = re.search(rf'msgid "tag\.{tag}"\nmsgstr "([^"]*)"', po)
            assert found is not None and found.group(1) == i18n.both("tag", tag)[lang], (lang, tag)


def test_the_service_is_named_from_the_signed_catalog(console: Console) -> None:
    rate(console, "st-0030", "r-1", 2, service="queue_ticket")
    rate(console, "st-0030", "r-2", 1, service="not_in_any_catalog")
    tech, _ = login(console, "tech")
    assert {f["service_name"]["en"] for f in tech.get("/api/followups").json()} == {
        "queue_ticket",  # no catalog signed through the console yet: the code
        "not_in_any_catalog",
    }
    content = (REPO / "assets/catalog/demo.toml").read_bytes()
    with console.store.session() as db:
        db.add(
            CatalogDraft(
                target="catalog.toml",
                catalog_version=1,
                sha256=hashlib.sha256(content).hexdigest(),
                length=len(content),
                content=content,
                uploaded_by="oper",
                uploaded_at=time.time(),
                signed_by="oper",
                signed_at=time.time(),
            )
        )
    names = {f["service"]: f["service_name"] for f in tech.get("/api/followups").json()}
    assert names["queue_ticket"] == {"zh": "人工窗口取号", "en": "Ticket for a staffed window"}
    assert names["not_in_any_catalog"]["en"] == "not_in_any_catalog"
    assert "人工窗口取号" in tech.get("/followups").text
