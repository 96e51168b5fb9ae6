"""The journal: what happened at this station, kept in SQLite (WAL) in the state directory.

The UI process writes transactions, ratings, help requests, print jobs and device health; the
agent process reads the outbox and removes events only once the broker has acknowledged them,
and records the commands that arrive. The two meet only here (see DESIGN.md, "Processes").

One :class:`Journal` is one pair of connections to the file; its stores are split by table
family, one module each: :mod:`statedir.transactions` (sessions, ratings, help),
:mod:`statedir.print_jobs`, :mod:`statedir.outbox`, :mod:`statedir.health`,
:mod:`statedir.commands` and :mod:`statedir.queue_numbers`, on :mod:`statedir.db` (schema,
connections, ``meta``).
"""

from __future__ import annotations

from statedir.commands import (
    COMMAND_ID,
    COMMAND_STATES,
    FINAL_COMMAND_STATES,
    CommandRecord,
    CommandStore,
)
from statedir.db import SCHEMA_VERSION, JournalError
from statedir.health import HealthStore
from statedir.outbox import NEVER_DROPPED, OUTBOX_CAPS, OutboxEvent
from statedir.print_jobs import PrintJobStore
from statedir.queue_numbers import QueueNumberStore
from statedir.transactions import (
    OUTCOMES,
    PERSONAL_COLUMNS,
    TransactionRecord,
    TransactionStore,
    identity_hash,
)

__all__ = [
    "COMMAND_ID",
    "COMMAND_STATES",
    "FINAL_COMMAND_STATES",
    "NEVER_DROPPED",
    "OUTBOX_CAPS",
    "OUTCOMES",
    "PERSONAL_COLUMNS",
    "SCHEMA_VERSION",
    "CommandRecord",
    "Journal",
    "JournalError",
    "OutboxEvent",
    "TransactionRecord",
    "identity_hash",
]


class Journal(TransactionStore, PrintJobStore, HealthStore, CommandStore, QueueNumberStore):
    """One connection to the station's journal; safe to share between threads of one process."""
