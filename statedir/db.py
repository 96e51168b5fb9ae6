"""The journal's file: one SQLite database (WAL) in the state directory, its schema, and the
two connections every store of :mod:`statedir.journal` shares.

Writes go through one connection, one SQLite transaction each (``BEGIN IMMEDIATE``), so a kill
-9 at any point leaves the whole change or none of it. Reads go through a second, read-only
connection of their own: in WAL mode a reader never waits for a writer, so a write that waits
out the busy timeout (another process holds the write lock: a backup, a stuck transaction) does
not hold up the reads of the other threads (the agent's MQTT callbacks read the journal).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
# how long a write waits for another connection's write lock before "database is locked"
BUSY_TIMEOUT_S = 10.0

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
CREATE TABLE IF NOT EXISTS queue_numbers (
    day TEXT NOT NULL,       -- the station's date (its time zone): sequences start again daily
    prefix TEXT NOT NULL,    -- the window's letter
    number INTEGER NOT NULL,
    txn_id TEXT NOT NULL,
    service TEXT NOT NULL,
    state TEXT NOT NULL,     -- reserved | issued | released | void
    updated REAL NOT NULL,
    PRIMARY KEY (day, prefix, number)
);
CREATE INDEX IF NOT EXISTS queue_numbers_txn ON queue_numbers(txn_id, service);
"""


class JournalError(Exception):
    """A journal operation was used wrongly (unknown transaction, bad outcome)."""


class JournalBase:
    """The connections, the schema and the ``meta`` table; the stores build on it."""

    def __init__(
        self, path: Path, *, clock: Any = time.time, busy_timeout_s: float = BUSY_TIMEOUT_S
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._clock = clock
        self._lock = threading.RLock()
        self._db = sqlite3.connect(
            self.path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)  # idempotent; executescript commits on its own
        self._read_lock = threading.Lock()
        self._reader = sqlite3.connect(
            self.path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
        )
        self._reader.execute("PRAGMA query_only=ON")
        with self._tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )

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

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """The read-only connection, for one or a few statements (each sees the last commit)."""
        with self._read_lock:
            yield self._reader

    def close(self) -> None:
        with self._lock:
            self._db.close()
        with self._read_lock:
            self._reader.close()

    def set_meta(self, key: str, value: str) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO meta(key, value) VALUES (?, ?)"
                " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def get_meta(self, key: str) -> str | None:
        with self._read() as db:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])
