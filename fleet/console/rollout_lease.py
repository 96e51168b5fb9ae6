"""One console process drives rollouts: its lease in the database, and the requests left for it.

Several console processes share the ingest (MQTT v5 shared subscriptions), but a rollout must be
driven by exactly one: two drivers would both publish waves, tick deadlines and save records.

- :class:`RolloutLease`: the row ``rollout_lease`` (id 1) names the holder and when its lease
  ends. A process takes the lease when it is free or expired, and its holder renews it every
  ``lease_s / 5``; one conditional ``UPDATE`` does either, so two processes never both succeed.
  The holder believes it holds the lease for ``lease_s * 0.8`` after the start of its last
  successful renewal (its own monotonic clock) and stops driving after that. ``expires_at`` is
  wall-clock time: console hosts need synchronised clocks (NTP).
- requests (``rollout_requests``): the CLI, and console processes that do not drive, write a
  start, pause, resume or abort there (:func:`submit`); the holder applies them in order
  (:func:`pending`, :func:`claim`, :func:`finish`); the asker waits for the outcome
  (:func:`wait_done`) and withdraws a request nobody took up in time. A request older than
  :data:`REQUEST_TTL_S` when the holder reaches it is refused as expired.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from typing import Any

from sqlalchemy import case, or_, select, update
from sqlalchemy.orm import Session

from fleet.console.store import RolloutLeaseRow, RolloutRequest, Store

LEASE_S = 10.0  # a holder that stopped renewing is replaced this long after its last renewal
REQUEST_TTL_S = 120.0
LEASE_ID = 1


def default_holder() -> str:
    """``host:pid:random``, unique per process (and per start of one)."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{secrets.token_hex(3)}"


def current_holder(db: Session, now: float | None = None) -> tuple[str, float] | None:
    """The process holding the lease and when it ends, or None if nobody holds it."""
    row = db.get(RolloutLeaseRow, LEASE_ID)
    now = time.time() if now is None else now
    if row is None or not row.holder or row.expires_at <= now:
        return None
    return row.holder, row.expires_at


class RolloutLease:
    """This process's claim on driving rollouts; thread-safe."""

    def __init__(self, store: Store, holder: str | None = None, lease_s: float = LEASE_S) -> None:
        self.store = store
        self.holder = holder or default_holder()
        self.lease_s = lease_s
        self.renew_s = lease_s / 5
        self._believed_until = 0.0  # monotonic

    def try_acquire(self) -> bool:
        """Take the lease if free or expired, or renew it if held: True if this process holds
        it now. Raises the database's errors."""
        started = time.monotonic()
        now = time.time()
        row = RolloutLeaseRow
        stmt = (
            update(row)
            .where(row.id == LEASE_ID, or_(row.holder == self.holder, row.expires_at < now))
            .values(
                holder=self.holder,
                expires_at=now + self.lease_s,
                acquired_at=case((row.holder == self.holder, row.acquired_at), else_=now),
            )
        )
        with self.store.session() as db:
            taken = db.connection().execute(stmt).rowcount == 1
        self._believed_until = started + self.lease_s * 0.8 if taken else 0.0
        return taken

    def holds(self) -> bool:
        """True while this process may act as the holder (by its own clock)."""
        return time.monotonic() < self._believed_until

    def check(self, db: Session) -> bool:
        """True if the database, read in ``db``, says this process holds an unexpired lease."""
        if not self.holds():
            return False
        current = current_holder(db)
        return current is not None and current[0] == self.holder

    def release(self) -> None:
        """Give the lease up at once (a clean stop), so another process takes over now."""
        self._believed_until = 0.0
        row = RolloutLeaseRow
        with self.store.session() as db:
            db.execute(update(row).where(row.holder == self.holder).values(expires_at=0.0))


# --- requests ------------------------------------------------------------------------------------


def submit(
    db: Session, action: str, rollout_id: str, actor: str, via: str, detail: dict[str, Any]
) -> int:
    """Leave a request for the driving console; its id."""
    request = RolloutRequest(
        rollout_id=rollout_id,
        action=action,
        actor=actor,
        via=via,
        created=time.time(),
        detail=detail,
        error="",
    )
    db.add(request)
    db.flush()
    return request.id


def pending(store: Store, limit: int = 50) -> list[RolloutRequest]:
    """Requests nobody has taken up, oldest first."""
    query = select(RolloutRequest).where(RolloutRequest.done_at.is_(None))
    with store.session() as db:
        return list(db.scalars(query.order_by(RolloutRequest.id).limit(limit)))


def claim(store: Store, request_id: int) -> bool:
    """Mark a request taken up; False if someone else did (or it was withdrawn)."""
    req = RolloutRequest
    stmt = (
        update(req).where(req.id == request_id, req.done_at.is_(None)).values(done_at=time.time())
    )
    with store.session() as db:
        return db.connection().execute(stmt).rowcount == 1


def finish(store: Store, request_id: int, ok: bool, error: str = "") -> None:
    with store.session() as db:
        db.execute(
            update(RolloutRequest)
            .where(RolloutRequest.id == request_id)
            .values(ok=ok, error=error[:1000])
        )


def wait_done(
    store: Store, request_id: int, timeout_s: float, poll_s: float = 0.2
) -> RolloutRequest | None:
    """Wait for the outcome of a request (``ok`` set); None if nobody took it up in time, in
    which case it is withdrawn, so it will not be carried out later."""
    deadline = time.monotonic() + timeout_s
    grace = deadline + 10.0  # taken up just before the deadline: its outcome is near
    while True:
        with store.session() as db:
            request = db.get(RolloutRequest, request_id)
            if request is None:
                return None
            if request.ok is not None:
                return request
            taken = request.done_at is not None
        now = time.monotonic()
        if now >= grace or (now >= deadline and not taken):
            break
        time.sleep(poll_s)
    req = RolloutRequest
    withdraw = (
        update(req)
        .where(req.id == request_id, req.done_at.is_(None))
        .values(done_at=time.time(), ok=False, error="withdrawn: no console took it up in time")
    )
    with store.session() as db:
        db.connection().execute(withdraw)
    return None
