"""Transactions and ratings: one row per resident session, its outcome and its rating.

No personal data is stored: a resident appears only as a keyed hash of the ID number
(:func:`flows.identity.identity_hash`), and events carry no names or numbers. The identity
hashes are still treated as personal (:data:`PERSONAL_COLUMNS`,
:meth:`TransactionStore.personal_values`): anything that leaves the station as free text
(collected logs) is redacted of them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from flows.identity import identity_hash
from statedir.db import JournalError
from statedir.outbox import OutboxStore

OUTCOMES = frozenset({"completed", "abandoned", "failed"})

__all__ = ["OUTCOMES", "PERSONAL_COLUMNS", "TransactionRecord", "TransactionStore", "identity_hash"]

PERSONAL_COLUMNS: dict[str, tuple[str, ...]] = {"transactions": ("identity_hash",)}
"""Columns whose values must never leave the station, even though they are only keyed hashes."""


@dataclass(frozen=True, slots=True)
class TransactionRecord:
    id: str
    started: float
    ended: float | None
    service: str
    lang: str
    elder: bool
    identity_hash: str | None
    outcome: str | None
    abandoned_state: str | None
    reason: str | None
    outputs: list[str]
    rating: int | None
    rating_tags: list[str]


class TransactionStore(OutboxStore):
    """Sessions from begin to outcome, ratings and help requests (each queues its event)."""

    def begin_transaction(
        self,
        service: str,
        *,
        lang: str,
        elder: bool,
        identity_hash: str | None = None,
        txn_id: str | None = None,
    ) -> str:
        txn_id = txn_id or str(uuid.uuid4())
        with self._tx() as db:
            db.execute(
                "INSERT INTO transactions(id, started, service, lang, elder, identity_hash)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (txn_id, self._clock(), service, lang, int(elder), identity_hash),
            )
        return txn_id

    def update_transaction(
        self,
        txn_id: str,
        *,
        service: str | None = None,
        identity_hash: str | None = None,
        lang: str | None = None,
        elder: bool | None = None,
    ) -> None:
        """Fill in what a session learns as it goes: the service picked, who is served, the
        language and elder mode the resident switched to (the event says the last ones)."""
        with self._tx() as db:
            cur = db.execute(
                "UPDATE transactions SET service = COALESCE(?, service),"
                " identity_hash = COALESCE(?, identity_hash), lang = COALESCE(?, lang),"
                " elder = COALESCE(?, elder) WHERE id = ? AND outcome IS NULL",
                (service, identity_hash, lang, None if elder is None else int(elder), txn_id),
            )
            if cur.rowcount != 1:
                raise JournalError(f"no open transaction {txn_id}")

    def finish_transaction(
        self,
        txn_id: str,
        *,
        outcome: str,
        outputs: Sequence[str] = (),
        abandoned_state: str | None = None,
        reason: str | None = None,
    ) -> None:
        """Close a transaction and queue its event for the centre, in one SQLite transaction."""
        if outcome not in OUTCOMES:
            raise JournalError(f"outcome must be one of {sorted(OUTCOMES)}, not {outcome!r}")
        now = self._clock()
        with self._tx() as db:
            row = db.execute(
                "SELECT service, started, lang, elder, outcome FROM transactions WHERE id = ?",
                (txn_id,),
            ).fetchone()
            if row is None:
                raise JournalError(f"unknown transaction {txn_id}")
            if row[4] is not None:
                raise JournalError(f"transaction {txn_id} is already {row[4]}")
            db.execute(
                "UPDATE transactions SET ended = ?, outcome = ?, outputs = ?, abandoned_state = ?,"
                " reason = ? WHERE id = ?",
                (now, outcome, json.dumps(list(outputs)), abandoned_state, reason, txn_id),
            )
            self._add_event(
                db,
                "transaction",
                {
                    "txn_id": txn_id,
                    "service": row[0],
                    "outcome": outcome,
                    "outputs": list(outputs),
                    "abandoned_state": abandoned_state,
                    "reason": reason,
                    "lang": row[2],
                    "elder": bool(row[3]),
                    "duration_s": round(now - row[1], 3),
                    "ts": now,
                },
            )

    def rate(self, txn_id: str, rating: int, tags: Sequence[str] = ()) -> None:
        """Record a resident's rating (1 very dissatisfied … 5 very satisfied) of a transaction."""
        if not 1 <= rating <= 5:
            raise JournalError(f"rating must be 1..5, not {rating}")
        with self._tx() as db:
            row = db.execute("SELECT service FROM transactions WHERE id = ?", (txn_id,)).fetchone()
            if row is None:
                raise JournalError(f"unknown transaction {txn_id}")
            db.execute(
                "UPDATE transactions SET rating = ?, rating_tags = ? WHERE id = ?",
                (rating, json.dumps(list(tags)), txn_id),
            )
            self._add_event(
                db,
                "rating",
                {
                    "txn_id": txn_id,
                    "service": row[0],
                    "rating": rating,
                    "tags": list(tags),
                    "ts": self._clock(),
                },
            )

    def help_request(self, *, screen: str, txn_id: str | None = None) -> str:
        with self._tx() as db:
            return self._add_event(
                db, "help", {"screen": screen, "txn_id": txn_id, "ts": self._clock()}
            )

    def transactions(self) -> list[TransactionRecord]:
        with self._read() as db:
            rows = db.execute(
                "SELECT id, started, ended, service, lang, elder, identity_hash, outcome,"
                " abandoned_state, reason, outputs, rating, rating_tags FROM transactions"
                " ORDER BY started"
            ).fetchall()
        return [
            TransactionRecord(
                id=r[0],
                started=r[1],
                ended=r[2],
                service=r[3],
                lang=r[4],
                elder=bool(r[5]),
                identity_hash=r[6],
                outcome=r[7],
                abandoned_state=r[8],
                reason=r[9],
                outputs=json.loads(r[10]),
                rating=r[11],
                rating_tags=json.loads(r[12]),
            )
            for r in rows
        ]

    def last_transaction_ts(self) -> float | None:
        with self._read() as db:
            row = db.execute("SELECT MAX(ended) FROM transactions").fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def usage(self, *, days: float = 90.0) -> dict[str, int]:
        """How often each matter was done here lately: completed sessions by service (or bundle)
        code over the last ``days``, for the choose screen's "most used" tile."""
        since = self._clock() - days * 86400.0
        with self._read() as db:
            rows = db.execute(
                "SELECT service, COUNT(*) FROM transactions WHERE outcome = 'completed'"
                " AND service != '' AND started >= ? GROUP BY service",
                (since,),
            ).fetchall()
        return {str(service): int(n) for service, n in rows}

    def open_transactions(self) -> list[str]:
        """Transactions begun and never finished (the UI was killed in the middle of one)."""
        with self._read() as db:
            rows = db.execute(
                "SELECT id FROM transactions WHERE outcome IS NULL ORDER BY started"
            ).fetchall()
        return [str(r[0]) for r in rows]

    def personal_values(self, limit: int = 10000) -> list[str]:
        """Values of :data:`PERSONAL_COLUMNS` (the latest first): what redaction must mask."""
        with self._read() as db:
            rows = db.execute(
                "SELECT DISTINCT identity_hash FROM transactions WHERE identity_hash IS NOT NULL"
                " ORDER BY started DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [str(r[0]) for r in rows]
