"""Queue numbers: one sequence per window and day, never lost and never issued twice.

A number is reserved in the journal when the resident is shown it (the preview), so the paper
carries the number the screen showed. It becomes ``issued`` once its ticket has printed, and
``released`` when the resident leaves without printing (cancel, back). The next number of a
window is one more than its highest number that was not released: a released number at the top
is given again, one below an issued number is skipped (a gap keeps the window's order).

A crash leaves numbers ``reserved``; :meth:`QueueNumberStore.settle_numbers` settles them at
start-up from the journal's print jobs: a ticket that printed was issued, one whose fate is
unknown is ``void`` (never given again: someone may hold it), one that never reached the printer
is released.
"""

from __future__ import annotations

from statedir.db import JournalBase, JournalError

STATES = ("reserved", "issued", "released", "void")


def ticket_job_key(txn_id: str, service: str) -> str:
    """The print job key of a session's ticket for ``service`` (how a crash is settled)."""
    return f"{txn_id}:ticket:{service}"


class QueueNumberStore(JournalBase):
    """Reserve, issue and release queue numbers, atomically."""

    def reserve_number(self, *, day: str, prefix: str, txn_id: str, service: str) -> int:
        """The number this session holds for ``service``, reserving the next one if it holds
        none. Asking again returns the same number (a preview built twice shows one number)."""
        with self._tx() as db:
            row = db.execute(
                "SELECT number FROM queue_numbers WHERE txn_id = ? AND service = ?"
                " AND day = ? AND prefix = ? AND state IN ('reserved', 'issued')",
                (txn_id, service, day, prefix),
            ).fetchone()
            if row is not None:
                return int(row[0])
            (top,) = db.execute(
                "SELECT COALESCE(MAX(number), 0) FROM queue_numbers"
                " WHERE day = ? AND prefix = ? AND state != 'released'",
                (day, prefix),
            ).fetchone()
            number = int(top) + 1
            db.execute(
                "INSERT OR REPLACE INTO queue_numbers"
                "(day, prefix, number, txn_id, service, state, updated)"
                " VALUES (?, ?, ?, ?, ?, 'reserved', ?)",
                (day, prefix, number, txn_id, service, self._clock()),
            )
            return number

    def end_number(self, txn_id: str, service: str, *, state: str) -> None:
        """The fate of the number this session reserved for ``service``: issued or void."""
        if state not in ("issued", "void"):
            raise JournalError(f"a reserved number ends issued or void, not {state!r}")
        with self._tx() as db:
            db.execute(
                "UPDATE queue_numbers SET state = ?, updated = ?"
                " WHERE txn_id = ? AND service = ? AND state = 'reserved'",
                (state, self._clock(), txn_id, service),
            )

    def release_numbers(self, txn_id: str) -> int:
        """The session left without its tickets: its reserved numbers may be given again."""
        with self._tx() as db:
            cur = db.execute(
                "UPDATE queue_numbers SET state = 'released', updated = ?"
                " WHERE txn_id = ? AND state = 'reserved'",
                (self._clock(), txn_id),
            )
            return cur.rowcount

    def settle_numbers(self) -> list[str]:
        """At start-up: settle the numbers a crash left reserved, by their session's slips."""
        lines = []
        with self._tx() as db:
            rows = db.execute(
                "SELECT day, prefix, number, txn_id, service FROM queue_numbers"
                " WHERE state = 'reserved'"
            ).fetchall()
            for day, prefix, number, txn_id, service in rows:
                states = {
                    r[0]
                    for r in db.execute(
                        "SELECT state FROM print_jobs WHERE key = ?",
                        (ticket_job_key(txn_id, service),),
                    )
                }
                if "completed" in states:
                    state = "issued"
                elif states - {"failed"}:
                    state = "void"  # submitted or unknown: it may have printed
                else:
                    state = "released"
                db.execute(
                    "UPDATE queue_numbers SET state = ?, updated = ?"
                    " WHERE day = ? AND prefix = ? AND number = ?",
                    (state, self._clock(), day, prefix, number),
                )
                lines.append(f"queue number {prefix}{number:03d} of {day}: {state}")
        return lines

    def queue_numbers(self, day: str | None = None) -> list[tuple[str, int, str, str]]:
        """(prefix, number, service, state) of a day's numbers (all days: None), in order."""
        with self._read() as db:
            rows = db.execute(
                "SELECT prefix, number, service, state FROM queue_numbers"
                " WHERE ? IS NULL OR day = ? ORDER BY day, prefix, number",
                (day, day),
            ).fetchall()
        return [(str(p), int(n), str(s), str(st)) for p, n, s, st in rows]
