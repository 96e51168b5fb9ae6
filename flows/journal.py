"""The journal: what happened at this station, kept in SQLite (WAL) in the state directory.

The UI process writes transactions, ratings, help requests and device health; the agent process
reads the outbox and removes events only once the broker has acknowledged them. The two meet only
here (see DESIGN.md, "Processes"). Every write is one SQLite transaction, so a kill -9 at any point
leaves either the whole change or none of it.

No personal data is stored: a resident appears only as a keyed hash of the ID number
(:func:`identity_hash`), and events carry no names or numbers. The identity hashes are still
treated as personal (:data:`PERSONAL_COLUMNS`, :meth:`Journal.personal_values`): anything that
leaves the station as free text (collected logs) is redacted of them.

Outbox policy (the outbox is bounded by kind, never by age):

- ``transaction``, ``rating`` and ``help`` events are never dropped, however long the broker is
  away; they leave the outbox only when the broker acknowledged them.
- ``alert`` events keep at most :data:`OUTBOX_CAPS` ``["alert"]`` per alert kind: a device that
  fails over and over during a long outage thins its own history (oldest first) and cannot push
  out the rare kinds (maintenance entries, a print failure).
- ``health`` history may be thinned: the device health is kept as one latest snapshot per device
  (table ``health``), not as events; should health events ever be queued, at most
  :data:`OUTBOX_CAPS` ``["health"]`` are kept, oldest dropped first.

Every dropped event is counted in ``meta`` (``outbox_dropped.{type}``).

Remote commands (``commands`` table) are written by the agent when a command arrives and, for
commands the UI carries out, picked up by the UI; the first final result written wins, so a late
result cannot overwrite ``timed_out``, and a command id seen before is never run twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS transactions (
    id TEXT PRIMARY KEY,
    started REAL NOT NULL,
    ended REAL,
    service TEXT NOT NULL,
    lang TEXT NOT NULL,
    elder INTEGER NOT NULL,
    identity_hash TEXT,
    outcome TEXT,            -- completed | abandoned | failed; NULL while open
    abandoned_state TEXT,    -- the state the resident left in, for abandoned sessions
    reason TEXT,             -- timeout | cancel | card_removed | a translation key
    outputs TEXT NOT NULL DEFAULT '[]',
    rating INTEGER,
    rating_tags TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS outbox (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    payload TEXT NOT NULL,
    created REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS print_jobs (
    key TEXT PRIMARY KEY,    -- the idempotency key: document id and printer
    txn_id TEXT NOT NULL,
    printer TEXT NOT NULL,   -- a4 | thermal
    state TEXT NOT NULL,     -- submitted | completed | failed | unknown
    job_id TEXT NOT NULL DEFAULT '',
    reason TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS health (
    device TEXT PRIMARY KEY,
    payload TEXT NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS commands (
    id TEXT PRIMARY KEY,     -- the command id of cmd/{id}: a command id is carried out once
    name TEXT NOT NULL,
    args TEXT NOT NULL DEFAULT '{}',
    target TEXT NOT NULL,    -- agent | ui: who carries it out
    state TEXT NOT NULL,     -- pending | running | succeeded | failed | timed_out
    detail TEXT NOT NULL DEFAULT '{}',
    received REAL NOT NULL,
    deadline REAL NOT NULL,
    updated REAL NOT NULL,
    published INTEGER NOT NULL DEFAULT 0  -- the final result was acknowledged by the broker
);
CREATE INDEX IF NOT EXISTS commands_open ON commands(state, target);
"""

OUTCOMES = frozenset({"completed", "abandoned", "failed"})

OUTBOX_CAPS: dict[str, int] = {"alert": 1000, "health": 500}
"""Kinds of event the outbox may thin, and how many of each (per alert kind) it keeps."""

NEVER_DROPPED = frozenset({"transaction", "rating", "help"})

PERSONAL_COLUMNS: dict[str, tuple[str, ...]] = {"transactions": ("identity_hash",)}
"""Columns whose values must never leave the station, even though they are only keyed hashes."""

COMMAND_STATES = ("pending", "running", "succeeded", "failed", "timed_out")
FINAL_COMMAND_STATES = frozenset({"succeeded", "failed", "timed_out"})
COMMAND_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


def identity_hash(key: bytes, id_number: str) -> str:
    """A keyed hash of an ID number: lets the centre count repeat visits, never reveals who."""
    return hmac.new(key, id_number.encode("utf-8"), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    id: str
    type: str
    payload: dict[str, Any]
    created: float
    attempts: int


@dataclass(frozen=True, slots=True)
class CommandRecord:
    id: str
    name: str
    args: dict[str, Any]
    target: str
    state: str
    detail: dict[str, Any]
    received: float
    deadline: float
    published: bool

    @property
    def final(self) -> bool:
        return self.state in FINAL_COMMAND_STATES


_COMMAND_COLUMNS = "id, name, args, target, state, detail, received, deadline, published"


def _command(row: Sequence[Any]) -> CommandRecord:
    return CommandRecord(
        id=row[0],
        name=row[1],
        args=json.loads(row[2]),
        target=row[3],
        state=row[4],
        detail=json.loads(row[5]),
        received=row[6],
        deadline=row[7],
        published=bool(row[8]),
    )


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


class JournalError(Exception):
    """A journal operation was used wrongly (unknown transaction, bad outcome)."""


class Journal:
    """One connection to the station's journal; safe to share between threads of one process."""

    def __init__(self, path: Path, *, clock: Any = time.time) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._clock = clock
        self._lock = threading.RLock()
        self._db = sqlite3.connect(
            self.path, timeout=10.0, isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)  # idempotent; executescript commits on its own
        with self._tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )

    # --- plumbing ------------------------------------------------------------------------------

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                # also when COMMIT itself failed (a full disk): never leave the connection inside
                # a transaction, or every later BEGIN fails and the journal is stuck for good
                if self._db.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        self._db.execute("ROLLBACK")
                raise

    def close(self) -> None:
        with self._lock:
            self._db.close()

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

    # --- transactions --------------------------------------------------------------------------

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
        self, txn_id: str, *, service: str | None = None, identity_hash: str | None = None
    ) -> None:
        """Fill in what a session learns as it goes: the service picked, who is served."""
        with self._tx() as db:
            cur = db.execute(
                "UPDATE transactions SET service = COALESCE(?, service),"
                " identity_hash = COALESCE(?, identity_hash) WHERE id = ? AND outcome IS NULL",
                (service, identity_hash, txn_id),
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

    def queue_event(self, type_: str, payload: dict[str, Any]) -> str:
        """Queue an event of the agent's own (e.g. ``csr``) in the outbox; returns its id."""
        with self._tx() as db:
            return self._add_event(db, type_, payload)

    def alert(self, kind: str, detail: dict[str, Any]) -> str:
        with self._tx() as db:
            return self._add_event(
                db, "alert", {"kind": kind, "detail": detail, "ts": self._clock()}
            )

    def transactions(self) -> list[TransactionRecord]:
        with self._lock:
            rows = self._db.execute(
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
        with self._lock:
            row = self._db.execute("SELECT MAX(ended) FROM transactions").fetchone()
        return None if row is None or row[0] is None else float(row[0])

    # --- print jobs: every job has an idempotency key, so nothing prints twice -------------------

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

    def open_transactions(self) -> list[str]:
        """Transactions begun and never finished (the UI was killed in the middle of one)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id FROM transactions WHERE outcome IS NULL ORDER BY started"
            ).fetchall()
        return [str(r[0]) for r in rows]

    def print_jobs(self, state: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT key, txn_id, printer, state, job_id, reason FROM print_jobs"
                " WHERE ? IS NULL OR state = ? ORDER BY created",
                (state, state),
            ).fetchall()
        names = ("key", "txn_id", "printer", "state", "job_id", "reason")
        return [dict(zip(names, r, strict=True)) for r in rows]

    # --- outbox (read and acknowledged by the agent) -------------------------------------------

    def pending_events(self, limit: int = 100) -> list[OutboxEvent]:
        with self._lock:
            rows = self._db.execute(
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
        with self._lock:
            row = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()
        return int(row[0])

    # --- health and liveness (written by the UI, read by the agent) ----------------------------

    def put_health(self, devices: Sequence[dict[str, Any]]) -> None:
        now = self._clock()
        with self._tx() as db:
            db.executemany(
                "INSERT INTO health(device, payload, updated) VALUES (?, ?, ?)"
                " ON CONFLICT(device) DO UPDATE SET payload = excluded.payload,"
                " updated = excluded.updated",
                [(d["device"], json.dumps(d, sort_keys=True), now) for d in devices],
            )

    def health_snapshot(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT device, payload FROM health").fetchall()
        return {r[0]: json.loads(r[1]) for r in rows}

    def set_meta(self, key: str, value: str) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO meta(key, value) VALUES (?, ?)"
                " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def get_meta(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def personal_values(self, limit: int = 10000) -> list[str]:
        """Values of :data:`PERSONAL_COLUMNS` (the latest first): what redaction must mask."""
        with self._lock:
            rows = self._db.execute(
                "SELECT DISTINCT identity_hash FROM transactions WHERE identity_hash IS NOT NULL"
                " ORDER BY started DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [str(r[0]) for r in rows]

    # --- remote commands (written by the agent, carried out by the agent or the UI) ------------

    def add_command(
        self,
        command_id: str,
        name: str,
        args: dict[str, Any],
        *,
        target: str,
        deadline: float,
        state: str = "pending",
        detail: dict[str, Any] | None = None,
    ) -> tuple[CommandRecord, bool]:
        """Record a command as it arrives; (the record, True) if new, (the stored one, False)."""
        if not COMMAND_ID.match(command_id):
            raise JournalError(f"bad command id {command_id!r}")
        if target not in ("agent", "ui") or state not in COMMAND_STATES:
            raise JournalError(f"bad command target {target!r} or state {state!r}")
        now = self._clock()
        with self._tx() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO commands(id, name, args, target, state, detail, received,"
                " deadline, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    command_id,
                    name,
                    json.dumps(args, sort_keys=True),
                    target,
                    state,
                    json.dumps(detail or {}, sort_keys=True),
                    now,
                    deadline,
                    now,
                ),
            )
            row = db.execute(
                f"SELECT {_COMMAND_COLUMNS} FROM commands WHERE id = ?",  # noqa: S608
                (command_id,),
            ).fetchone()
        return _command(row), cur.rowcount == 1

    def command(self, command_id: str) -> CommandRecord | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COMMAND_COLUMNS} FROM commands WHERE id = ?",  # noqa: S608
                (command_id,),
            ).fetchone()
        return None if row is None else _command(row)

    def commands(
        self, *, state: str | None = None, target: str | None = None, unpublished: bool = False
    ) -> list[CommandRecord]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COMMAND_COLUMNS} FROM commands"  # noqa: S608
                " WHERE (? IS NULL OR state = ?) AND (? IS NULL OR target = ?)"
                " AND (? = 0 OR published = 0) ORDER BY received, rowid",
                (state, state, target, target, int(unpublished)),
            ).fetchall()
        return [_command(r) for r in rows]

    def claim_command(self, command_id: str) -> bool:
        """pending → running, if still pending and before its deadline (one claimant wins)."""
        now = self._clock()
        with self._tx() as db:
            cur = db.execute(
                "UPDATE commands SET state = 'running', updated = ?"
                " WHERE id = ? AND state = 'pending' AND deadline > ?",
                (now, command_id, now),
            )
            return cur.rowcount == 1

    def finish_command(self, command_id: str, state: str, detail: dict[str, Any]) -> bool:
        """Write a final result; False if the command already has one (the first one wins)."""
        if state not in FINAL_COMMAND_STATES:
            raise JournalError(f"a final command state is one of {sorted(FINAL_COMMAND_STATES)}")
        with self._tx() as db:
            cur = db.execute(
                "UPDATE commands SET state = ?, detail = ?, updated = ?, published = 0"
                " WHERE id = ? AND state IN ('pending', 'running')",
                (state, json.dumps(detail, sort_keys=True), self._clock(), command_id),
            )
            return cur.rowcount == 1

    def expire_commands(self) -> list[str]:
        """Open commands past their deadline become ``timed_out``; returns their ids."""
        now = self._clock()
        with self._tx() as db:
            rows = db.execute(
                "SELECT id FROM commands WHERE state IN ('pending', 'running') AND deadline <= ?",
                (now,),
            ).fetchall()
            ids = [str(r[0]) for r in rows]
            db.executemany(
                "UPDATE commands SET state = 'timed_out', detail = ?, updated = ?, published = 0"
                " WHERE id = ?",
                [(json.dumps({"reason": "deadline"}), now, i) for i in ids],
            )
        return ids

    def mark_command_published(self, command_id: str, state: str) -> None:
        """The broker acknowledged the final result ``state`` of a command."""
        with self._tx() as db:
            db.execute(
                "UPDATE commands SET published = 1 WHERE id = ? AND state = ?",
                (command_id, state),
            )

    def prune_commands(self, older_than_s: float) -> int:
        """Forget published results older than this (a redelivery that late has expired)."""
        with self._tx() as db:
            cur = db.execute(
                "DELETE FROM commands WHERE published = 1 AND updated < ?",
                (self._clock() - older_than_s,),
            )
            return cur.rowcount

    def touch_ui_heartbeat(self) -> None:
        """The UI calls this from its clock; a stale value tells the agent the UI is frozen."""
        self.set_meta("ui_heartbeat", repr(self._clock()))

    def ui_heartbeat(self) -> float | None:
        value = self.get_meta("ui_heartbeat")
        return None if value is None else float(value)
