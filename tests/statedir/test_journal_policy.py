"""The journal's outbox policy (what may be thinned, what never) and its remote-command table."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from statedir.journal import OUTBOX_CAPS, Journal, JournalError, identity_hash


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        self.now += 0.001
        return self.now


def test_transactions_ratings_and_help_are_never_dropped_alerts_are_thinned_per_kind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(OUTBOX_CAPS, "alert", 5)  # the policy's numbers, made small
    j = Journal(tmp_path / "j.sqlite3", clock=Clock())
    j.alert("maintenance", {"action": "entered"})  # a rare kind, before the flood
    for i in range(30):
        txn = j.begin_transaction("queue_ticket", lang="zh", elder=False)
        j.finish_transaction(txn, outcome="completed", outputs=["thermal"])
        j.rate(txn, 5)
        j.help_request(screen="choose", txn_id=txn)
        j.alert("reader_flapping", {"n": i})
    kinds: dict[str, int] = {}
    for event in j.pending_events(limit=1000):
        key = event.type if event.type != "alert" else f"alert:{event.payload['kind']}"
        kinds[key] = kinds.get(key, 0) + 1
    assert kinds == {
        "transaction": 30,
        "rating": 30,
        "help": 30,
        "alert:reader_flapping": 5,  # the newest five
        "alert:maintenance": 1,  # not pushed out by another kind's flood
    }
    flood = [e for e in j.pending_events(1000) if e.payload.get("kind") == "reader_flapping"]
    newest = [e.payload["detail"]["n"] for e in flood]
    assert newest == [25, 26, 27, 28, 29]
    assert j.get_meta("outbox_dropped.alert") == "25"


def test_the_caps_hold_for_the_real_numbers(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.sqlite3", clock=Clock())
    for i in range(OUTBOX_CAPS["alert"] + 50):
        j.alert("print_failed", {"n": i})
    assert j.outbox_size() == OUTBOX_CAPS["alert"]


def test_personal_values_are_the_identity_hashes(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.sqlite3")
    h = identity_hash(b"k", "11010519491231002X")
    j.begin_transaction("x", lang="zh", elder=False, identity_hash=h)
    j.begin_transaction("y", lang="zh", elder=False)
    assert j.personal_values() == [h]


def test_a_command_is_recorded_once_and_the_first_result_wins(tmp_path: Path) -> None:
    clock = Clock()
    j = Journal(tmp_path / "j.sqlite3", clock=clock)
    record, new = j.add_command("c-1", "self_test", {}, target="ui", deadline=clock.now + 10)
    assert new and record.state == "pending" and not record.final
    again, new = j.add_command("c-1", "other", {"x": 1}, target="agent", deadline=0)
    assert not new and (again.name, again.target) == ("self_test", "ui")  # the stored one
    assert j.claim_command("c-1") and not j.claim_command("c-1")  # one claimant
    assert j.finish_command("c-1", "succeeded", {"devices": {}})
    assert not j.finish_command("c-1", "failed", {"reason": "late"})
    done = j.command("c-1")
    assert done is not None and (done.state, done.detail, done.published) == (
        "succeeded",
        {"devices": {}},
        False,
    )
    j.mark_command_published("c-1", "succeeded")
    assert j.commands(unpublished=True) == []
    with pytest.raises(JournalError):
        j.add_command("bad/id", "x", {}, target="ui", deadline=0)


def test_open_commands_time_out_at_their_deadline_and_cannot_be_claimed_after(
    tmp_path: Path,
) -> None:
    clock = Clock()
    j = Journal(tmp_path / "j.sqlite3", clock=clock)
    j.add_command("late", "test_print", {"printer": "a4"}, target="ui", deadline=clock.now + 5)
    j.add_command("ok", "screenshot", {}, target="ui", deadline=clock.now + 50)
    assert j.expire_commands() == []
    clock.now += 10
    assert not j.claim_command("late")
    assert j.expire_commands() == ["late"]
    late = j.command("late")
    assert late is not None and (late.state, late.detail) == ("timed_out", {"reason": "deadline"})
    assert not j.finish_command("late", "succeeded", {})  # the UI's late result is ignored
    assert [c.id for c in j.commands(state="pending", target="ui")] == ["ok"]
    j.mark_command_published("late", "timed_out")
    clock.now += 100
    assert j.prune_commands(60) == 1 and j.command("late") is None


def test_an_existing_journal_gains_the_commands_table(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "CREATE TABLE outbox (id TEXT PRIMARY KEY, type TEXT NOT NULL, payload TEXT NOT NULL,"
        " created REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0);"
        "INSERT INTO outbox VALUES ('e1', 'rating', '{\"event_id\": \"e1\"}', 1.0, 0);"
    )
    db.commit()
    db.close()
    j = Journal(path)
    assert [e.id for e in j.pending_events()] == ["e1"]  # nothing of the old journal is lost
    assert j.add_command("c", "rebirth", {}, target="agent", deadline=1e12)[1]
