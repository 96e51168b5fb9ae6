"""The console's database: SQLAlchemy models, the engine, Alembic migrations, station status.

The console is stateless apart from this database (DESIGN.md), so that several console processes
can share the ingest (MQTT v5 shared subscriptions) and still show one picture. SQLite by
default (WAL, a busy timeout), PostgreSQL when one machine is outgrown; the schema is made only
by the Alembic migrations in ``fleet/console/migrations`` (:meth:`Store.migrate`), never by
``create_all``, and a test checks that the migrations and these models agree.

Times are unix seconds (floats). JSON columns hold what stations sent, as they sent it.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from alembic import command as alembic_command
from alembic.config import Config as AlembicConfig
from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    text,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.pool import StaticPool

from fleet.console.zone import DEFAULT_TIMEZONE

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
ROLES = ("technician", "operator", "admin")
MISSED_HEARTBEATS = 3  # stale after three missed heartbeats (DESIGN.md)
ALWAYS = "00:00-24:00"


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[float] = mapped_column(Float)


class WebSession(Base):
    __tablename__ = "web_sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of the cookie value
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)


class AuditEntry(Base):
    __tablename__ = "audit"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ts: Mapped[float] = mapped_column(Float, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(200), default="")
    ok: Mapped[bool] = mapped_column(Boolean, default=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Station(Base):
    __tablename__ = "stations"
    __table_args__ = (UniqueConstraint("site", "station", name="uq_station"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site: Mapped[str] = mapped_column(String(64))
    station: Mapped[str] = mapped_column(String(64))
    online: Mapped[bool] = mapped_column(Boolean, default=False)
    session: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str] = mapped_column(String(64), default="")
    state_ts: Mapped[float] = mapped_column(Float, default=0.0)
    offline_since: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_seen: Mapped[float] = mapped_column(Float, default=0.0)
    interval_s: Mapped[float] = mapped_column(Float, default=60.0)
    birth: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    health: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    reported: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    duty_hours: Mapped[str] = mapped_column(String(32), default=ALWAYS)
    first_seen: Mapped[float] = mapped_column(Float, default=0.0)


class HealthSample(Base):
    __tablename__ = "health_samples"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    station_id: Mapped[int] = mapped_column(
        ForeignKey("stations.id", ondelete="CASCADE"), index=True
    )
    ts: Mapped[float] = mapped_column(Float)
    ui_alive: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)


class StationEvent(Base):
    __tablename__ = "events"
    # uq_event serves lookups by station too (its first column): no index on station_id alone
    __table_args__ = (UniqueConstraint("station_id", "event_id", name="uq_event"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    ts: Mapped[float] = mapped_column(Float)
    backfill: Mapped[bool] = mapped_column(Boolean, default=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)


class Alert(Base):
    """One alert; ``active_key`` (``{station_id}:{kind}``) is unique while it is not resolved,
    which is what de-duplicates it, also between several console processes."""

    __tablename__ = "alerts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    station_id: Mapped[int] = mapped_column(
        ForeignKey("stations.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    active_key: Mapped[str | None] = mapped_column(String(100), unique=True, nullable=True)
    raised_at: Mapped[float] = mapped_column(Float)
    last_at: Mapped[float] = mapped_column(Float)
    count: Mapped[int] = mapped_column(Integer, default=1)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    acknowledged_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    acknowledged_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    resolved_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    notified: Mapped[str] = mapped_column(String(16), default="")  # "", sent, failed, off


class DeadLetter(Base):
    """A station message set aside at the edge: who, where, how big, why; never the payload
    beyond a short excerpt. Bounded: the sweep keeps the newest :data:`DEAD_LETTERS_KEPT`."""

    __tablename__ = "dead_letters"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    station_id: Mapped[int | None] = mapped_column(
        ForeignKey("stations.id", ondelete="CASCADE"), index=True, nullable=True
    )
    site: Mapped[str] = mapped_column(String(64))
    station: Mapped[str] = mapped_column(String(64))
    topic: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(255))
    excerpt: Mapped[str] = mapped_column(String(255))
    received_at: Mapped[float] = mapped_column(Float, index=True)


class LoginThrottle(Base):
    """Failed logins by key (a client address, a user name, a trusted device): growing delays."""

    __tablename__ = "login_throttle"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    last_failure_at: Mapped[float] = mapped_column(Float)
    blocked_until: Mapped[float] = mapped_column(Float)


class CommandRow(Base):
    __tablename__ = "commands"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    station_id: Mapped[int] = mapped_column(
        ForeignKey("stations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(32))
    args: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    timeout_s: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16))  # sent, accepted, succeeded, failed, ...
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    actor: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    note: Mapped[str] = mapped_column(Text, default="")


def new_command(
    station_id: int,
    name: str,
    args: dict[str, Any],
    timeout_s: float,
    actor: str,
    *,
    status: str = "sent",
    note: str = "",
) -> CommandRow:
    """A command as the console records it before (or instead of) publishing it."""
    now = time.time()
    return CommandRow(
        id=uuid.uuid4().hex,
        station_id=station_id,
        name=name,
        args=args,
        timeout_s=timeout_s,
        status=status,
        detail={},
        actor=actor,
        created_at=now,
        updated_at=now,
        note=note,
    )


class RolloutRow(Base):
    """One catalog rollout (:class:`fleet.console.rollout.RolloutRecord` as JSON in ``record``)."""

    __tablename__ = "rollouts"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    created: Mapped[float] = mapped_column(Float)
    updated: Mapped[float] = mapped_column(Float)
    started_by: Mapped[str] = mapped_column(String(64), default="")
    record: Mapped[dict[str, Any]] = mapped_column(JSON)


class RolloutRev(Base):
    """The last ``desired`` rev issued: one row (id 1), only ever raised."""

    __tablename__ = "rollout_revs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_rev: Mapped[int] = mapped_column(Integer, default=0)


class RolloutLeaseRow(Base):
    """Which console process drives rollouts (one row, id 1), until ``expires_at``."""

    __tablename__ = "rollout_lease"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    holder: Mapped[str] = mapped_column(String(100), default="")
    expires_at: Mapped[float] = mapped_column(Float, default=0.0)
    acquired_at: Mapped[float] = mapped_column(Float, default=0.0)


class RolloutRequest(Base):
    """A start, pause, resume or abort asked for by the CLI or a console not driving rollouts;
    the driving console applies it (``done_at``, ``ok``, ``error``)."""

    __tablename__ = "rollout_requests"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rollout_id: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(64))
    via: Mapped[str] = mapped_column(String(16))
    created: Mapped[float] = mapped_column(Float)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    done_at: Mapped[float | None] = mapped_column(Float, nullable=True, index=True)
    ok: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    error: Mapped[str] = mapped_column(Text, default="")


# --- the engine ----------------------------------------------------------------------------------


def _json_text(value: Any) -> str:
    """JSON columns are written by orjson: the stdlib encoder was a tenth of the ingest's time."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def _json_value(text: str | bytes) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:  # written by an older console with the stdlib (NaN)
        return json.loads(text)


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and foreign keys."""
    codec = {"json_serializer": _json_text, "json_deserializer": _json_value}
    if url.startswith("sqlite"):
        memory = url in ("sqlite://", "sqlite:///:memory:")
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            poolclass=StaticPool if memory else None,
            **codec,
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            if not memory:
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, **codec)


class Store:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision."""
        config = AlembicConfig()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            alembic_command.upgrade(config, "head")

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed at the end, rolled back on an exception."""
        with self._sessions() as db, db.begin():
            yield db

    def reachable(self) -> bool:
        """Does the database answer now? (Tells one bad message from an outage.)"""
        try:
            with self.session() as db:
                db.execute(text("SELECT 1"))
        except Exception:  # any failure to answer is "not reachable"
            return False
        return True

    def close(self) -> None:
        self.engine.dispose()


def audit(
    db: Session,
    actor: str,
    action: str,
    target: str = "",
    *,
    ok: bool = True,
    **detail: Any,
) -> None:
    db.add(
        AuditEntry(ts=time.time(), actor=actor, action=action, target=target, ok=ok, detail=detail)
    )


# --- station status ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timers:
    """The console's own clocks for a station (never broker presence alone)."""

    missed_for_stale: int = MISSED_HEARTBEATS
    missed_for_offline: int = 10


def station_status(row: Station, now: float, timers: Timers = Timers()) -> str:
    """online, stale, offline or out_of_order, from the console's own timers."""
    if not row.online:
        return "offline"
    silent = now - row.last_seen if row.last_seen else 0.0
    if silent > timers.missed_for_offline * row.interval_s:
        return "offline"
    if silent > timers.missed_for_stale * row.interval_s:
        return "stale"
    if out_of_order(row.health):
        return "out_of_order"
    return "online"


def offline_since(row: Station, now: float, timers: Timers = Timers()) -> float | None:
    """When the station went offline (Will, clean stop, or its heartbeats stopping), or None.

    A station heard from (its birth, say) whose state has not arrived yet is not offline since
    1970: it gets the heartbeats' grace from when it was first heard (a thousand stations
    connecting at once are registered a moment before their states are written)."""
    if not row.online:
        if row.offline_since is not None:
            return row.offline_since
        if row.state_ts:
            return row.state_ts
        grace_ends = row.first_seen + timers.missed_for_offline * row.interval_s
        return grace_ends if now >= grace_ends else None
    if row.last_seen and now - row.last_seen > timers.missed_for_offline * row.interval_s:
        return row.last_seen + timers.missed_for_offline * row.interval_s
    return None


def out_of_order(health: dict[str, Any]) -> bool:
    """A station serves no one without its ID reader, or when it says so itself. A frozen UI is
    shown (and alerted) on its own: the agent cannot tell a frozen UI from one not started."""
    if health.get("out_of_order"):
        return True
    return any(
        "reader" in name and d.get("state") in ("fault", "offline")
        for name, d in device_items(health)
    )


def device_items(health: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    devices = health.get("devices")
    if not isinstance(devices, dict):
        return []
    return [(str(k), v) for k, v in sorted(devices.items()) if isinstance(v, dict)]


def in_duty_hours(spec: str, when: float, tz: str = DEFAULT_TIMEZONE) -> bool:
    """``spec`` is ``HH:MM-HH:MM`` (local time of ``tz``, the stations' zone; overnight spans
    allowed), ``,``-separated."""
    moment = dt.datetime.fromtimestamp(when, ZoneInfo(tz))
    minute = moment.hour * 60 + moment.minute
    for part in spec.split(","):
        start_s, _, end_s = part.strip().partition("-")
        try:
            start, end = _minutes(start_s), _minutes(end_s)
        except ValueError:
            return True  # a spec the console cannot read never silences an alert
        if start <= end and start <= minute < end:
            return True
        if start > end and (minute >= start or minute < end):
            return True
    return False


def _minutes(text: str) -> int:
    hours, _, minutes = text.strip().partition(":")
    value = int(hours) * 60 + int(minutes or 0)
    if not 0 <= value <= 24 * 60:
        raise ValueError(text)
    return value


def valid_duty_hours(spec: str) -> bool:
    try:
        for part in spec.split(","):
            start, sep, end = part.strip().partition("-")
            if not sep:
                return False
            _minutes(start)
            _minutes(end)
    except ValueError:
        return False
    return True
