"""Login throttling that slows password guessing down without letting anyone lock a user out.

A hard lock on a user name ("five wrong passwords and ``admin`` is shut for five minutes") is a
weapon: anyone who can reach the login page can keep ``admin`` out for ever, and it does nothing
against one client trying a few passwords on each of many names. So failures are counted per
*key* and answered with growing delays instead:

- ``client:<address>``: the address the request came from (Starlette's ``request.client.host``,
  which is what uvicorn saw: the console runs it with ``proxy_headers=False``). Behind a reverse
  proxy every login would come from the proxy and all users would share one key; put one in front
  only together with a trusted forwarded address (uvicorn's ``forwarded_allow_ips``).
  Up to :data:`CLIENT` (a quarter of an hour at most).
- ``name:<user name>``: guesses at one name from many addresses. Its delay is capped small
  (:data:`NAME`, half a minute), so that a name can never be held shut for long.
- ``device:<id>``: a *trusted device* (OWASP's "device cookies"). A successful login leaves a
  long-lived cookie (:data:`DEVICE_COOKIE`, HttpOnly, SameSite=Strict, path ``/login``) naming the
  user, signed. A login that shows a valid one for the name it tries is counted only against that
  device's own key, never against the client or the name: whoever guesses at ``admin`` from
  elsewhere slows down only themselves and strangers, not the admin on the browser they used
  before. That is what makes the throttle useless against users.

A key may fail :attr:`Limit.free` times in a row without waiting; then it is blocked for
:attr:`Limit.first_s`, and each further failure doubles the delay, up to :attr:`Limit.cap_s`.
While any key of a login is blocked, the login is refused (429, with the wait) before the
password is looked at, and the refusal does not count: counting it would let anyone keep a name
blocked by asking again. A success forgets the failures of its client, or of its device when
it showed one; a trusted-device login leaves the client's alone (it was not counted against them,
and forgiving them would give a guesser behind the same address, a NAT, fresh free attempts
whenever the real user logs in). A name's failures stay (a success from one place says nothing
about guesses from another) and fade with the rest: a key whose last failure is older than
:data:`FORGET_S` counts from zero, and such rows are deleted now and then.

The device cookie is signed with HMAC-SHA256 keyed by the user's password hash. The console has
no secret of its own to sign with (its only state is the database, shared by every console
process), and the hash is a per-user secret that all of them already share: nothing new to
store or distribute, and a new password revokes every device of its user, as it should after a
leak (an argon2 re-hash at login, after the parameters change, does the same, once). Whoever
can read the database could forge a device cookie, but such a reader has the hashes already, and
a device cookie only lifts throttling, never the password. A browser keeps one device cookie, the
last user's to log in on it; a shared workstation trusts only that user.

The same table also paces the public verification page (:meth:`Throttle.spend`, keys
``verify:<address>``): there each request is counted in a fixed window, and a client over
:data:`VERIFY_PER_MINUTE` waits for the next window. Forging a token is not the worry (an Ed25519
signature is not guessed); the page is open to the whole internet and costs a database read.

The database (table ``login_throttle``) is the truth, so limits hold across restarts and across
console processes sharing it. A failure updates its rows under a row lock (PostgreSQL; SQLite
writes one at a time), so no failure is lost; but the check before the password and the count
after it are two units of work, and logins racing through that gap may get one or two more
attempts than the limit. That is accepted: the delays still grow.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from fleet.console import i18n
from fleet.console.store import LoginThrottle, User

DEVICE_COOKIE = "console_device"
DEVICE_TTL_S = 90 * 86400.0
FORGET_S = 24 * 3600.0  # a key whose last failure is older counts from zero
PRUNE_EVERY_S = 3600.0
_DEVICE_CONTEXT = b"fleet console trusted device v1\0"


@dataclass(frozen=True)
class Limit:
    """How a key slows down: ``free`` failures without a wait, the last of them blocking the key
    for ``first_s``; each further failure doubles the delay, up to ``cap_s``."""

    free: int
    first_s: float
    cap_s: float

    def delay(self, failures: int) -> float:
        """The wait after the ``failures``-th failure in a row."""
        if failures < self.free:
            return 0.0
        return min(self.cap_s, self.first_s * 2.0 ** min(failures - self.free, 60))


CLIENT = Limit(free=5, first_s=1.0, cap_s=900.0)
NAME = Limit(free=5, first_s=1.0, cap_s=30.0)
DEVICE = Limit(free=5, first_s=1.0, cap_s=900.0)
VERIFY_PER_MINUTE = 30  # verification pages one client address may open a minute


@dataclass(frozen=True)
class Key:
    key: str
    limit: Limit


def client_key(address: str) -> Key:
    return Key(f"client:{address}"[:200], CLIENT)


def name_key(name: str) -> Key:
    return Key(f"name:{name}"[:200], NAME)


def device_key(device_id: str) -> Key:
    return Key(f"device:{device_id}"[:200], DEVICE)


@dataclass(frozen=True)
class Attempt:
    """The keys one login is checked and counted against, and those a success forgets."""

    counted: tuple[Key, ...]
    cleared: tuple[Key, ...]
    device: str | None  # the trusted device's id, if the login showed a valid cookie


class Throttle:
    """Failed logins per key, kept in the database; ``clock`` is injectable for tests."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._pruned_at = -math.inf  # when this process last deleted forgotten rows

    def attempt(self, db: Session, name: str, address: str, device_cookie: str) -> Attempt:
        """The keys for a login of ``name`` from ``address`` showing ``device_cookie``."""
        device = trusted_device(db, device_cookie, name, self.clock())
        if device is not None:
            return Attempt((device_key(device),), (device_key(device),), device)
        client = client_key(address)
        return Attempt((client, name_key(name)), (client,), None)

    def wait(self, db: Session, keys: Iterable[Key]) -> float:
        """Seconds until none of ``keys`` is blocked (0 if none is)."""
        now = self.clock()
        if now - self._pruned_at >= PRUNE_EVERY_S:
            self._pruned_at = now
            self.prune(db)
        limits = {k.key: k.limit for k in keys}
        rows = db.scalars(select(LoginThrottle).where(LoginThrottle.key.in_(list(limits))))
        longest = 0.0
        for row in rows:
            if now - row.last_failure_at < FORGET_S:
                longest = max(longest, min(row.blocked_until - now, limits[row.key].cap_s))
        return longest

    def failed(self, db: Session, keys: Iterable[Key]) -> float:
        """Count a failure against each key; the longest delay that now applies."""
        now = self.clock()
        longest = 0.0
        for key in sorted(keys, key=lambda k: k.key):  # one lock order: no deadlock
            row = _locked_row(db, key.key, now)
            if now - row.last_failure_at >= FORGET_S:
                row.failures, row.blocked_until = 0, 0.0
            row.failures += 1
            row.last_failure_at = now
            delay = key.limit.delay(row.failures)
            row.blocked_until = max(row.blocked_until, now + delay)
            longest = max(longest, delay)
        return longest

    def spend(self, db: Session, key: str, allowed: int, window_s: float = 60.0) -> float:
        """Count one request against ``key`` in its fixed window (the row's ``failures`` is the
        count, ``last_failure_at`` the window's start): 0 if it may go on, else the seconds
        until the next window."""
        now = self.clock()
        row = _locked_row(db, key[:200], now)
        if now - row.last_failure_at >= window_s or row.failures == 0:
            row.failures, row.last_failure_at = 0, now
        row.failures += 1
        if row.failures <= allowed:
            return 0.0
        row.blocked_until = row.last_failure_at + window_s
        return max(0.0, row.blocked_until - now)

    def clear(self, db: Session, keys: Iterable[Key]) -> None:
        db.execute(delete(LoginThrottle).where(LoginThrottle.key.in_([k.key for k in keys])))

    def prune(self, db: Session) -> None:
        """Delete keys whose last failure is forgotten already."""
        cutoff = self.clock() - FORGET_S
        db.execute(delete(LoginThrottle).where(LoginThrottle.last_failure_at < cutoff))


def _locked_row(db: Session, key: str, now: float) -> LoginThrottle:
    """The row of ``key``, made if missing (another console may make it at the same moment) and
    locked until the unit of work ends (PostgreSQL; SQLite has one writer at a time anyway)."""
    values = {"key": key, "failures": 0, "last_failure_at": now, "blocked_until": 0.0}
    if db.get_bind().dialect.name == "postgresql":
        db.execute(postgresql.insert(LoginThrottle).values(values).on_conflict_do_nothing())
    else:  # the console's other database
        db.execute(sqlite.insert(LoginThrottle).values(values).on_conflict_do_nothing())
    row = db.get(LoginThrottle, key, with_for_update=True, populate_existing=True)
    if row is None:  # a success elsewhere deleted it between the two statements
        row = LoginThrottle(**values)
        db.add(row)
    return row


def wait_message(wait_s: float) -> str:
    """What a refused login says: how long to wait, in the request's language."""
    seconds = max(1, math.ceil(wait_s))
    if seconds < 120:
        return i18n.gettext("login.wait_seconds", n=seconds)
    return i18n.gettext("login.wait_minutes", n=math.ceil(seconds / 60))


# --- trusted devices ------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(password_hash: str, payload: bytes) -> bytes:
    return hmac.new(password_hash.encode(), _DEVICE_CONTEXT + payload, hashlib.sha256).digest()


def device_cookie(user: User, now: float) -> str:
    """A new trusted-device cookie value for ``user``: ``name|expiry|id``, signed."""
    device_id = secrets.token_urlsafe(12)
    payload = f"{user.name}|{int(now + DEVICE_TTL_S)}|{device_id}".encode()
    return f"{_b64(payload)}.{_b64(_mac(user.password_hash, payload))}"


def trusted_device(db: Session, cookie: str, name: str, now: float) -> str | None:
    """The device id in ``cookie`` if it is a valid, unexpired device cookie of the enabled user
    ``name``; None otherwise (missing, forged, expired, another user's)."""
    body, _, mac = cookie.partition(".")
    try:
        payload, given = _unb64(body), _unb64(mac)
        owner, expires, device_id = payload.decode().split("|")
        expires_at = int(expires)
    except (ValueError, binascii.Error):  # UnicodeDecodeError is a ValueError
        return None
    if owner != name or expires_at < now or not device_id:
        return None
    user = db.scalar(select(User).where(User.name == name))
    if user is None or user.disabled:
        return None
    return device_id if hmac.compare_digest(given, _mac(user.password_hash, payload)) else None
