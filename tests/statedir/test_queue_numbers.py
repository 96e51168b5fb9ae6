"""Queue numbers in the journal: one sequence per window and day, never lost, never twice."""

from __future__ import annotations

from pathlib import Path

from statedir.journal import Journal
from statedir.queue_numbers import ticket_job_key

DAY = "2026-12-07"


def reserve(j: Journal, txn: str, prefix: str = "A", service: str = "queue_ticket") -> int:
    return j.reserve_number(day=DAY, prefix=prefix, txn_id=txn, service=service)


def test_each_window_has_its_own_sequence_and_a_session_keeps_its_number(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.sqlite3")
    assert (reserve(j, "t1"), reserve(j, "t2"), reserve(j, "t3", "C")) == (1, 2, 1)
    assert reserve(j, "t1") == 1  # the preview built again shows the same number
    assert j.reserve_number(day="2026-12-08", prefix="A", txn_id="t9", service="q") == 1


def test_a_released_number_at_the_top_is_given_again_one_below_is_skipped(
    tmp_path: Path,
) -> None:
    j = Journal(tmp_path / "j.sqlite3")
    reserve(j, "t1")
    reserve(j, "t2")
    j.end_number("t2", "queue_ticket", state="issued")
    assert j.release_numbers("t1") == 1  # t1 cancelled below an issued number: a gap
    assert reserve(j, "t3") == 3
    assert j.release_numbers("t3") == 1  # cancelled at the top: the next resident gets it
    assert reserve(j, "t4") == 3
    j.end_number("t4", "queue_ticket", state="issued")
    assert j.release_numbers("t4") == 0  # an issued number is never released
    assert reserve(j, "t5") == 4


def test_a_crash_never_lets_a_number_be_issued_twice(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    j = Journal(path)
    for txn in ("printed", "interrupted", "never_sent"):
        reserve(j, txn)
    for txn in ("printed", "interrupted"):
        j.begin_print(ticket_job_key(txn, "queue_ticket"), txn_id=txn, printer="thermal")
    j.end_print(ticket_job_key("printed", "queue_ticket"), state="completed")
    j.close()
    j = Journal(path)  # the restart
    j.settle_numbers()
    assert j.queue_numbers(DAY) == [
        ("A", 1, "queue_ticket", "issued"),
        ("A", 2, "queue_ticket", "void"),  # may be in someone's hand: never given again
        ("A", 3, "queue_ticket", "released"),
    ]
    assert reserve(j, "next") == 3
