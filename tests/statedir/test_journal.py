"""The journal in SQLite WAL: transactions, ratings, the outbox, and survival of kill -9."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from statedir.journal import Journal, JournalError, identity_hash


def test_transaction_rating_and_outbox(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.sqlite3")
    txn = j.begin_transaction("", lang="zh", elder=True)
    j.update_transaction(txn, service="queue_ticket", identity_hash=identity_hash(b"k", "1"))
    j.finish_transaction(txn, outcome="completed", outputs=["thermal"])
    j.rate(txn, 4, ["fast"])
    [record] = j.transactions()
    assert (record.service, record.outcome, record.rating, record.rating_tags) == (
        "queue_ticket",
        "completed",
        4,
        ["fast"],
    )
    assert record.elder and record.outputs == ["thermal"]
    events = j.pending_events()
    assert [e.type for e in events] == ["transaction", "rating"]
    assert all(e.payload["event_id"] == e.id for e in events)
    j.ack_events([events[0].id])
    assert [e.type for e in j.pending_events()] == ["rating"]
    j.ack_events([events[0].id])  # acknowledging twice is harmless
    assert j.outbox_size() == 1


def test_wrong_use_is_refused(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.sqlite3")
    with pytest.raises(JournalError):
        j.finish_transaction("nope", outcome="completed")
    txn = j.begin_transaction("x", lang="zh", elder=False)
    with pytest.raises(JournalError):
        j.finish_transaction(txn, outcome="exploded")
    j.finish_transaction(txn, outcome="abandoned", abandoned_state="choose", reason="timeout")
    with pytest.raises(JournalError):
        j.finish_transaction(txn, outcome="completed")
    with pytest.raises(JournalError):
        j.rate(txn, 6)


def test_identity_hash_is_keyed_and_not_the_number() -> None:
    a = identity_hash(b"key-a", "11010519491231002X")
    assert a != identity_hash(b"key-b", "11010519491231002X")
    assert "11010519491231002X" not in a and len(a) == 64


_WRITER = """
import sys
from pathlib import Path
from statedir.journal import Journal
j = Journal(Path(sys.argv[1]))
print("ready", flush=True)
n = 0
while True:
    t = j.begin_transaction("s", lang="zh", elder=False)
    j.finish_transaction(t, outcome="completed", outputs=["a4"])
    j.rate(t, 5)
    n += 1
"""


@pytest.mark.slow
def test_kill_9_mid_write_leaves_a_consistent_journal(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    for round_ in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE, text=True
        )
        try:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
            time.sleep(0.3 + 0.2 * round_)
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            assert proc.stdout is not None
            proc.stdout.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    j = Journal(path)
    records = j.transactions()
    assert records, "the writer committed nothing"
    finished = [r for r in records if r.outcome == "completed"]
    # every finished transaction has exactly its one transaction event in the outbox
    events = j.pending_events(limit=100_000)
    txn_events = [e for e in events if e.type == "transaction"]
    assert sorted(e.payload["txn_id"] for e in txn_events) == sorted(r.id for r in finished)
    rated = {e.payload["txn_id"] for e in events if e.type == "rating"}
    assert rated == {r.id for r in records if r.rating is not None}
    # at most the one transaction that was open at the kill is unfinished
    assert sum(1 for r in records if r.outcome is None) <= 3
    assert all(json.loads(json.dumps(e.payload)) == e.payload for e in events)


def test_a_commit_that_fails_leaves_the_journal_usable(tmp_path: Path) -> None:
    """A full disk can fail COMMIT itself; the journal must not stay inside that transaction.

    (The real full disk is ``make faults``'s disk scenario; here the failing COMMIT is forced.)
    """
    journal = Journal(tmp_path / "j.sqlite3")
    real = journal._db
    calls = {"n": 0}

    class FailingCommit:
        def __getattr__(self, name: str) -> object:
            return getattr(real, name)

        def execute(self, sql: str, *args: object) -> object:
            if sql == "COMMIT" and calls["n"] == 0:
                calls["n"] += 1
                raise sqlite3.OperationalError("database or disk is full")
            return real.execute(sql, *args)

    journal._db = FailingCommit()  # type: ignore[assignment]
    with pytest.raises(sqlite3.OperationalError):
        journal.begin_transaction("queue_ticket", lang="zh", elder=False)
    journal._db = real
    assert not real.in_transaction
    txn = journal.begin_transaction("queue_ticket", lang="zh", elder=False)  # works again
    journal.finish_transaction(txn, outcome="completed")
    assert [e.type for e in journal.pending_events()] == ["transaction"]


def test_reads_do_not_wait_behind_a_write_that_waits_for_the_lock(tmp_path: Path) -> None:
    """Another process holds the write lock (a backup, a stuck transaction): a write of this
    journal waits out the busy timeout, and meanwhile the other threads still read (the agent's
    MQTT callbacks read the journal; they stalled behind such a write before)."""
    import threading

    path = tmp_path / "j.sqlite3"
    j = Journal(path)
    j.set_meta("session", "7")
    j.put_health([{"device": "a4_printer", "state": "ok"}])
    locker = sqlite3.connect(path, isolation_level=None, timeout=30)
    locker.execute("BEGIN EXCLUSIVE")
    failed: list[BaseException] = []

    def write() -> None:
        try:
            j.set_meta("session", "8")  # waits for the lock, then gives up
        except sqlite3.OperationalError as err:
            failed.append(err)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        time.sleep(0.3)  # the writer is inside its transaction attempt now
        assert writer.is_alive()
        assert j.get_meta("session") == "7"
        assert j.health_snapshot()["a4_printer"]["state"] == "ok"
        assert j.outbox_size() == 0
        assert writer.is_alive()  # the reads were answered while the write still waited
    finally:
        locker.execute("ROLLBACK")
        locker.close()
        writer.join(timeout=30)
    assert not failed and j.get_meta("session") == "8"  # the write went through once free
    j.close()


def test_a_write_gives_up_after_the_busy_timeout_it_was_given(tmp_path: Path) -> None:
    """``busy_timeout_s`` (the agent's ``journal_busy_timeout_s``) is how long a write waits for
    another process's lock before "database is locked"; the default is 10 s."""
    path = tmp_path / "j.sqlite3"
    j = Journal(path, busy_timeout_s=0.5)
    locker = sqlite3.connect(path, isolation_level=None, timeout=30)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        started = time.monotonic()
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            j.set_meta("session", "8")
        waited = time.monotonic() - started
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert 0.4 < waited < 5.0, waited
    j.set_meta("session", "8")  # once free, the write goes through
    assert j.get_meta("session") == "8"
    j.close()


def test_usage_counts_completed_matters_of_the_last_90_days(tmp_path: Path) -> None:
    now = [1_000_000_000.0]
    j = Journal(tmp_path / "j.sqlite3", clock=lambda: now[0])

    def session(service: str, outcome: str) -> None:
        txn = j.begin_transaction("", lang="zh", elder=False)
        if service:
            j.update_transaction(txn, service=service)
        j.finish_transaction(txn, outcome=outcome)

    session("fund_01", "completed")  # 100 days before the count: too old
    now[0] += 100 * 86400
    for _ in range(3):
        session("fund_02", "completed")
    session("fund_01", "completed")
    session("fund_01", "abandoned")  # not done: not counted
    session("", "abandoned")  # left before picking anything
    assert j.usage() == {"fund_02": 3, "fund_01": 1}
