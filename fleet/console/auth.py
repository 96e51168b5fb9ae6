"""Who may use the console: argon2 passwords, server-side sessions, roles, CSRF, headers.

- Passwords are argon2id hashes (argon2-cffi's defaults), re-hashed on login when the
  parameters change. An unknown user name costs the same hash as a wrong password.
- A session is a random cookie value; the database keeps only its SHA-256, the user, an expiry
  and the session's CSRF token. The cookie is HttpOnly, SameSite=Strict and Secure (unless the
  console is told it serves plain HTTP on loopback for development). A new session is made at
  every login (no fixation) and deleted at logout.
- CSRF: every state-changing request (anything but GET/HEAD) carries the session's token, in the
  form field ``csrf_token`` or the header ``X-CSRF-Token``, compared in constant time; the login
  form, made before there is a session, uses a double-submit cookie. A cross-origin ``Origin``
  header is refused as well.
- Roles and what they may do are the table :data:`PERMISSIONS`; routes name the permission.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fleet.console.store import ROLES, User, WebSession

SESSION_COOKIE = "console_session"
LOGIN_CSRF_COOKIE = "console_login_csrf"
SESSION_TTL_S = 8 * 3600.0

PERMISSIONS: dict[str, frozenset[str]] = {
    "view": frozenset(ROLES),  # the fleet, stations, alerts, token verification
    "command": frozenset({"technician", "admin"}),  # commands to a station
    "acknowledge": frozenset({"technician", "admin"}),  # alerts
    "rollout": frozenset({"operator", "admin"}),  # catalogs, station offers, rollouts
    "admin": frozenset({"admin"}),  # users, keys, the audit log
    "enroll": frozenset({"admin"}),  # terminals' certificates: enrol, revoke (all may look)
    "followup": frozenset({"technician", "operator", "admin"}),  # bad reviews: move them on
    "withdraw": frozenset({"operator", "admin"}),  # printed documents: withdraw one (audited)
    "call": frozenset({"technician", "admin"}),  # talk with a resident who asked (calls.py)
    # listen to recorded calls (call_record_pages.py): residents' voices, so only admins, each
    # fetch audited; technicians record their own calls but do not browse anyone's
    "recordings": frozenset({"admin"}),
}

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """What an unknown user's password is checked against, so that a login for a name that does
    not exist takes as long as one that does. Made at the first login, not at import: it is a
    full argon2 hash (~0.1 s), and every ``fleet`` command that reads the database imports this
    module."""
    return _hasher.hash(secrets.token_urlsafe(16))


class AuthError(ValueError):
    pass


@dataclass(frozen=True)
class Principal:
    user_id: int
    name: str
    role: str
    csrf: str

    def may(self, permission: str) -> bool:
        return self.role in PERMISSIONS[permission]


def acting_as(db: Session, name: str) -> tuple[Principal | None, str]:
    """The console user ``name`` as a command-line tool acts for them (``--as NAME``): their
    principal, or None and why not (no such user, disabled)."""
    user = db.scalar(select(User).where(User.name == name))
    if user is None:
        return None, f"no console user {name!r}"
    if user.disabled:
        return None, f"user {name} is disabled"
    return Principal(user.id, user.name, user.role, csrf=""), ""


def hash_password(password: str) -> str:
    if len(password) < 10:
        raise AuthError("a password needs at least 10 characters")
    return _hasher.hash(password)


def create_user(db: Session, name: str, password: str, role: str) -> User:
    if role not in ROLES:
        raise AuthError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    if not name or len(name) > 64 or not name.replace("-", "").replace(".", "").isalnum():
        raise AuthError("a user name is 1-64 letters, digits, '-' or '.'")
    if db.scalar(select(User).where(User.name == name)) is not None:
        raise AuthError(f"user {name!r} exists")
    user = User(
        name=name,
        password_hash=hash_password(password),
        role=role,
        disabled=False,
        created_at=time.time(),
    )
    db.add(user)
    db.flush()
    return user


def check_password(db: Session, name: str, password: str) -> User | None:
    """The user if ``password`` is theirs and they are not disabled, else None."""
    user = db.scalar(select(User).where(User.name == name))
    try:
        _hasher.verify(user.password_hash if user else _dummy_hash(), password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if user is None or user.disabled:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(db: Session, user: User, ttl_s: float = SESSION_TTL_S) -> str:
    """A new session for ``user``; returns the cookie value (kept only as a hash)."""
    token = secrets.token_urlsafe(32)
    now = time.time()
    db.execute(delete(WebSession).where(WebSession.expires_at < now))
    db.add(
        WebSession(
            id=_digest(token),
            user_id=user.id,
            csrf=secrets.token_urlsafe(32),
            created_at=now,
            expires_at=now + ttl_s,
        )
    )
    return token


def close_session(db: Session, token: str) -> None:
    db.execute(delete(WebSession).where(WebSession.id == _digest(token)))


def principal(db: Session, token: str | None) -> Principal | None:
    if not token:
        return None
    row = db.get(WebSession, _digest(token))
    if row is None or row.expires_at < time.time():
        return None
    user = db.get(User, row.user_id)
    if user is None or user.disabled:
        return None
    return Principal(user.id, user.name, user.role, row.csrf)


def same_token(given: str | None, expected: str) -> bool:
    return bool(given) and hmac.compare_digest(str(given).encode(), expected.encode())


# --- security headers ----------------------------------------------------------------------------

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "media-src 'self'; "  # call recordings played on /calls (call_record_pages.py)
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


class SecurityHeaders:
    """Adds the console's security headers to every response (pure ASGI: SSE streams too)."""

    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Content-Security-Policy"] = CSP
                headers["X-Content-Type-Options"] = "nosniff"
                headers["X-Frame-Options"] = "DENY"
                headers["Referrer-Policy"] = "same-origin"  # no-referrer would make Origin "null"
                headers["Cross-Origin-Opener-Policy"] = "same-origin"
                headers["Cross-Origin-Resource-Policy"] = "same-origin"
                headers["Permissions-Policy"] = (
                    "camera=(self), microphone=(self), geolocation=()"  # a call (calls.py)
                    if str(scope.get("path", "")).endswith("/call")
                    else "camera=(), microphone=(), geolocation=()"
                )
                if "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"
                if self.hsts:
                    headers["Strict-Transport-Security"] = "max-age=31536000"
            await send(message)

        await self.app(scope, receive, with_headers)


def secret_token() -> str:
    return secrets.token_urlsafe(32)
