"""Remote commands: written by the agent when a command arrives, carried out by the agent or,
for commands the UI carries out, picked up by the UI. The first final result written wins, so a
late result cannot overwrite ``timed_out``, and a command id seen before is never run twice.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from statedir.db import JournalBase, JournalError

COMMAND_STATES = ("pending", "running", "succeeded", "failed", "timed_out")
FINAL_COMMAND_STATES = frozenset({"succeeded", "failed", "timed_out"})
COMMAND_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


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


class CommandStore(JournalBase):
    """Commands by id, from arrival to a published final result."""

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
        with self._read() as db:
            row = db.execute(
                f"SELECT {_COMMAND_COLUMNS} FROM commands WHERE id = ?",  # noqa: S608
                (command_id,),
            ).fetchone()
        return None if row is None else _command(row)

    def commands(
        self, *, state: str | None = None, target: str | None = None, unpublished: bool = False
    ) -> list[CommandRecord]:
        with self._read() as db:
            rows = db.execute(
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
