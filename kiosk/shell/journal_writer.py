"""The journal as the kiosk writes it: the session's journal effects, in order. A write that
fails (a full disk) waits in memory, in order, with the identity already reduced to its keyed
hash, until the journal can be written again; meanwhile nothing is served that would not be
recorded (:attr:`JournalWriter.ok`)."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable

from flows.session import (
    Effect,
    JournalBegin,
    JournalFinish,
    JournalHelp,
    JournalRate,
    JournalUpdate,
    Session,
)
from statedir.journal import Journal

log = logging.getLogger("kiosk.shell.runtime")

OPEN_TRANSACTION = ("identify", "choose", "notice", "preview", "printing")
"""States whose transaction is still open (it is finished when printing ends or on leaving)."""


def mode_update(session: Session) -> list[Effect]:
    """The language and elder mode as the resident uses them (issue 20 point 9): a switch during
    a session updates its open transaction, so the journal and the transaction event say what
    was used, not what the session began with. A switch after the transaction is finished
    (on the rating page, or after) changes nothing recorded."""
    if session.txn_id is None or session.state not in OPEN_TRANSACTION:
        return []
    return [JournalUpdate(session.txn_id, lang=session.lang, elder=session.elder)]


class JournalWriter:
    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.ok = True
        self.backlog: list[Callable[[], object]] = []

    def op(self, effect: Effect) -> Callable[[], object]:
        """The write an effect asks for, with the identity already reduced to its keyed hash
        (so a write that must wait never keeps a name or ID number in memory)."""
        j = self.journal
        if isinstance(effect, JournalBegin):
            txn, lang, elder = effect.txn_id, effect.lang, effect.elder
            return lambda: j.begin_transaction("", lang=lang, elder=elder, txn_id=txn)
        if isinstance(effect, JournalUpdate):
            u = effect
            return lambda: j.update_transaction(
                u.txn_id,
                service=u.service,
                identity_hash=u.identity_hash,
                lang=u.lang,
                elder=u.elder,
            )
        if isinstance(effect, JournalFinish):
            e = effect
            return lambda: j.finish_transaction(
                e.txn_id,
                outcome=e.outcome,
                outputs=e.outputs,
                abandoned_state=e.abandoned_state,
                reason=e.reason,
            )
        if isinstance(effect, JournalRate):
            r = effect
            return lambda: j.rate(r.txn_id, r.rating, r.tags)
        if isinstance(effect, JournalHelp):
            h = effect
            return lambda: j.help_request(screen=h.screen, txn_id=h.txn_id)
        raise TypeError(type(effect).__name__)

    def write(self, op: Callable[[], object]) -> bool:
        """Make the write, or keep it, in order, for later. False when the journal has just
        failed (the caller reacts once); a write queued behind others already waiting is True."""
        if self.backlog:  # keep the order: behind what already waits
            self.backlog.append(op)
            self.replay()
            return True
        try:
            op()
        except sqlite3.Error:
            log.exception("the journal cannot be written; the write waits in memory")
            self.backlog.append(op)
            self.ok = False  # nothing more is served until it can be recorded
            return False
        return True

    def replay(self) -> None:
        """Make the waiting writes, oldest first, as far as the journal lets."""
        while self.backlog:
            try:
                self.backlog[0]()
            except sqlite3.Error:
                return  # still cannot: the next health round tries again
            except Exception:
                log.exception("a waiting journal write is impossible; dropped")
            self.backlog.pop(0)
        log.warning("every waiting journal write is recorded")

    def probe(self) -> bool:
        """After a failure: can the journal be written again? (the health loop asks)"""
        try:
            self.journal.set_meta("write_probe", str(time.time()))
        except Exception as err:
            log.error("the journal still cannot be written: %s", err)
            return False
        self.ok = True
        log.warning("the journal can be written again")
        return True
