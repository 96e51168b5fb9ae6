"""The outbox: events waiting for the agent to deliver them to the centre.

The UI's stores queue events in the same SQLite transaction as the change they report; the
agent reads them and removes them only once the broker has acknowledged them.

Outbox policy (the outbox is bounded by kind, never by age):

- ``transaction``, ``rating`` and ``help`` events are never dropped, however long the broker is
  away; they leave the outbox only when the broker acknowledged them.
- ``alert`` events keep at most :data:`OUTBOX_CAPS` ``["alert"]`` per alert kind: a device that
  fails over and over during a long outage thins its own history (oldest first) and cannot push
  out the rare kinds (maintenance entries, a print failure).
- ``health`` history may be thinned: the device health is kept as one latest snapshot per device
  (:mod:`statedir.health`), not as events; should health events ever be queued, at most
  :data:`OUTBOX_CAPS` ``["health"]`` are kept, oldest dropped first.

Every dropped event is counted in ``meta`` (``outbox_dropped.{type}``).
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from statedir.db import JournalBase

OUTBOX_CAPS: dict[str, int] = {"alert": 1000, "health": 500}
"""Kinds of event the outbox may thin, and how many of each (per alert kind) it keeps."""

NEVER_DROPPED = frozenset({"transaction", "rating", "help"})


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    id: str
    type: str
    payload: dict[str, Any]
    created: float
    attempts: int


class OutboxStore(JournalBase):
    """Queue, read and acknowledge events."""

    def _add_event(self, db: sqlite3.Connection, type_: str, payload: dict[str, Any]) -> str:
        event_id = str(uuid.uuid4())
        body = dict(payload, event_id=event_id)
        db.execute(
            "INSERT INTO outbox(id, type, payload, created) VALUES (?, ?, ?, ?)",
            (event_id, type_, json.dumps(body, ensure_ascii=False, sort_keys=True), self._clock()),
        )
        cap = OUTBOX_CAPS.get(type_)
        if cap is not None and type_ not in NEVER_DROPPED:
            self._thin(db, type_, payload.get("kind") if type_ == "alert" else None, cap)
        return event_id

    def _thin(self, db: sqlite3.Connection, type_: str, kind: Any, cap: int) -> None:
        """Drop the oldest events of one thinnable type (and alert kind) beyond its cap."""
        same, params = "type = ?", [type_]
        if type_ == "alert":
            same, params = same + " AND json_extract(payload, '$.kind') IS ?", [type_, kind]
        cur = db.execute(
            f"DELETE FROM outbox WHERE rowid IN (SELECT rowid FROM outbox WHERE {same}"  # noqa: S608
            " ORDER BY created DESC, rowid DESC LIMIT -1 OFFSET ?)",
            (*params, cap),
        )
        if cur.rowcount > 0:
            db.execute(
                "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key)"
                " DO UPDATE SET value = CAST(value AS INTEGER) + excluded.value",
                (f"outbox_dropped.{type_}", cur.rowcount),
            )

    def queue_event(self, type_: str, payload: dict[str, Any]) -> str:
        """Queue an event of the agent's own (e.g. ``csr``) in the outbox; returns its id."""
        with self._tx() as db:
            return self._add_event(db, type_, payload)

    def alert(self, kind: str, detail: dict[str, Any]) -> str:
        with self._tx() as db:
            return self._add_event(
                db, "alert", {"kind": kind, "detail": detail, "ts": self._clock()}
            )

    def pending_events(self, limit: int = 100) -> list[OutboxEvent]:
        with self._read() as db:
            rows = db.execute(
                "SELECT id, type, payload, created, attempts FROM outbox"
                " ORDER BY created, rowid LIMIT ?",
                (limit,),
            ).fetchall()
        return [OutboxEvent(r[0], r[1], json.loads(r[2]), r[3], r[4]) for r in rows]

    def mark_attempt(self, event_ids: Sequence[str]) -> None:
        with self._tx() as db:
            db.executemany(
                "UPDATE outbox SET attempts = attempts + 1 WHERE id = ?", [(i,) for i in event_ids]
            )

    def ack_events(self, event_ids: Sequence[str]) -> None:
        """Remove events the broker has acknowledged. Unknown ids are ignored (idempotent)."""
        with self._tx() as db:
            db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in event_ids])

    def outbox_size(self) -> int:
        with self._read() as db:
            row = db.execute("SELECT COUNT(*) FROM outbox").fetchone()
        return int(row[0])
