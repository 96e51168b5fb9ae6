"""Print jobs: every job has an idempotency key, so nothing prints twice, even across a crash.

A job is recorded before it is submitted (:meth:`PrintJobStore.begin_print`); a key seen before
means "do not print again". Failures and unknown fates are reported to the centre as alerts.
"""

from __future__ import annotations

from typing import Any

from statedir.db import JournalError
from statedir.outbox import OutboxStore


class PrintJobStore(OutboxStore):
    """Print jobs by idempotency key."""

    def begin_print(self, key: str, *, txn_id: str, printer: str) -> bool:
        """Record a job before it is submitted. False: this key was seen before (do not print)."""
        now = self._clock()
        with self._tx() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO print_jobs(key, txn_id, printer, state, created, updated)"
                " VALUES (?, ?, ?, 'submitted', ?, ?)",
                (key, txn_id, printer, now, now),
            )
            return cur.rowcount == 1

    def end_print(self, key: str, *, state: str, job_id: str = "", reason: str = "") -> None:
        """A job's fate; failures and unknown fates are also reported to the centre."""
        if state not in ("completed", "failed", "unknown"):
            raise JournalError(f"print state must be completed, failed or unknown, not {state!r}")
        with self._tx() as db:
            row = db.execute(
                "SELECT txn_id, printer FROM print_jobs WHERE key = ?", (key,)
            ).fetchone()
            if row is None:
                raise JournalError(f"unknown print job {key}")
            db.execute(
                "UPDATE print_jobs SET state = ?, job_id = ?, reason = ?, updated = ?"
                " WHERE key = ?",
                (state, job_id, reason, self._clock(), key),
            )
            if state != "completed":
                self._add_event(
                    db,
                    "alert",
                    {
                        "kind": f"print_{state}",
                        "detail": {"printer": row[1], "txn_id": row[0], "reason": reason},
                        "ts": self._clock(),
                    },
                )

    def print_jobs(self, state: str | None = None) -> list[dict[str, Any]]:
        with self._read() as db:
            rows = db.execute(
                "SELECT key, txn_id, printer, state, job_id, reason FROM print_jobs"
                " WHERE ? IS NULL OR state = ? ORDER BY created",
                (state, state),
            ).fetchall()
        names = ("key", "txn_id", "printer", "state", "job_id", "reason")
        return [dict(zip(names, r, strict=True)) for r in rows]
