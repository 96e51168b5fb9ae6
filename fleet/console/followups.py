"""Bad reviews followed up (差评回访): every rating of one or two stars becomes a follow-up that a
person moves from open to resolved, each step with who, when and a note, in the audit log too.

The 好差评 practice the station reports describe asks that every bad review be followed up
(回访) and settled (整改) by a named person within a time limit. A resident's rating carries no
name, ID number or telephone (the kiosk never sends them, DESIGN.md), so "contacting" means
whatever the station can do from the transaction id at its own desk, and "unreachable"
(无法联系) is a normal outcome, not a failure; it still has to be settled with a note.

States and the steps between them (:data:`STEPS`)::

    open ──> contacted ──> resolved
      └───> unreachable ──┘   (unreachable ──> contacted too, when a later try reaches them)

``resolved`` is final, and no state can be entered twice, so a follow-up has at most three
changes and its history (kept on the row, bounded) stays small.

A follow-up is made in the same transaction that first stores the rating
(:meth:`fleet.console.ingest_batch.BatchWriter.events`), so a rating is never stored without its
follow-up, and a redelivered rating (stored already) makes none. The table's unique
(station, event id) is the last guard, also between several console processes. The clock starts
when the console learns of the rating (``created_at``, due after :data:`DUE_S` by default): a
backfilled rating from a station that was offline for a day is not overdue on arrival, and
station clocks are not trusted for deadlines.

The table is made by migration ``0008`` (``fleet/console/migrations/versions/v0008_followups.py``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    JSON,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    case,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from fleet.console import i18n
from fleet.console.catalog_drafts import CatalogDraft
from fleet.console.store import Base, Station, audit
from flows.catalog import CatalogError, catalog_table

BAD = 2  # ratings of this many stars or fewer are followed up
DUE_S = 24 * 3600.0  # the default time to settle one (fleet console --followup-due-hours)
NOTE_MAX = 500  # characters of a note
LIST_LIMIT = 200

STATES = ("open", "contacted", "unreachable", "resolved")
PENDING = ("open", "contacted", "unreachable")
STEPS: dict[str, frozenset[str]] = {
    "open": frozenset({"contacted", "unreachable"}),
    "unreachable": frozenset({"contacted", "resolved"}),
    "contacted": frozenset({"resolved"}),
    "resolved": frozenset(),
}
TAGS = ("slow", "complicated", "print", "voice")
"""The kiosk's rating tags (kiosk/ui/screens/rate.kv). States and tags are worded by the console's
catalogs (``followup.*``, ``tag.*`` in console.po; the tags as the kiosk's kiosk.po words them,
a test checks they agree)."""


class FollowUp(Base):
    __tablename__ = "followups"
    __table_args__ = (
        UniqueConstraint("station_id", "event_id", name="uq_followup_event"),
        Index("ix_followups_state_created", "state", "created_at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(64))
    txn_id: Mapped[str] = mapped_column(String(64), default="")
    service: Mapped[str] = mapped_column(String(64), default="")
    rating: Mapped[int] = mapped_column(Integer)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    rated_at: Mapped[float] = mapped_column(Float)  # the station's clock
    created_at: Mapped[float] = mapped_column(Float)  # the console's: the deadline counts from here
    due_at: Mapped[float] = mapped_column(Float)
    state: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[float] = mapped_column(Float)
    updated_by: Mapped[str] = mapped_column(String(64), default="")
    note: Mapped[str] = mapped_column(Text, default="")  # the latest change's
    history: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


class FollowUpError(ValueError):
    """A change refused; ``status`` is the HTTP status that says why (400, 404, 409)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


# --- made by the ingest -------------------------------------------------------------------------


def _bounded(value: Any, limit: int = 64) -> str:
    return str(value if value is not None else "")[:limit]


def record(db: Session, events: Iterable[tuple[int, str, dict[str, Any]]], due_s: float) -> int:
    """Follow-ups for the bad ratings among ``events`` (station id, kind, payload), which the
    console has just stored for the first time; how many were made. Nothing is asked of the
    database when there is no bad rating: this runs for every batch of the ingest."""
    now = time.time()
    rows = []
    for station_id, kind, payload in events:
        if kind != "rating":
            continue
        rating = payload.get("rating")
        if not isinstance(rating, int) or rating > BAD:
            continue
        tags = payload.get("tags")
        rows.append(
            {
                "station_id": station_id,
                "event_id": _bounded(payload.get("event_id")),
                "txn_id": _bounded(payload.get("txn_id")),
                "service": _bounded(payload.get("service")),
                "rating": rating,
                "tags": [_bounded(t) for t in tags[:16]] if isinstance(tags, list) else [],
                "rated_at": float(payload.get("ts") or now),
                "created_at": now,
                "due_at": now + due_s,
                "state": "open",
                "updated_at": now,
                "updated_by": "",
                "note": "",
                "history": [],
            }
        )
    if not rows:
        return 0
    dialect = db.get_bind().dialect.name
    if dialect == "postgresql":
        statement: Any = pg_insert(FollowUp).on_conflict_do_nothing()
    elif dialect == "sqlite":
        statement = sqlite_insert(FollowUp).on_conflict_do_nothing()
    else:  # pragma: no cover - the console runs on SQLite or PostgreSQL
        statement = insert(FollowUp)
    db.execute(statement, rows)
    return len(rows)


# --- changed by people --------------------------------------------------------------------------


def change(
    db: Session, followup_id: int, state: str, note: str, actor: str, via: str
) -> FollowUp | FollowUpError:
    """Move a follow-up on, audited; a refusal is audited too and returned, not raised, so that
    its audit entry is committed with the unit of work. The update is conditional on the state
    it was read in, so two people moving the same one at once cannot both succeed."""
    target = f"followup/{followup_id}"
    note = note.strip()
    row = db.get(FollowUp, followup_id)
    problem: FollowUpError | None = None
    if row is None:
        problem = FollowUpError(404, f"没有这条回访 · no follow-up {followup_id}")
    elif state not in STATES:
        problem = FollowUpError(400, f"未知状态 · unknown state {state[:32]!r}")
    elif state not in STEPS[row.state]:
        allowed = ", ".join(sorted(STEPS[row.state])) or "none, it is settled"
        problem = FollowUpError(409, f"不能改为 {state} · {row.state} → {state}: allowed {allowed}")
    elif not note:
        problem = FollowUpError(400, "请填写说明 · a note is required (what was done or said)")
    elif len(note) > NOTE_MAX:
        problem = FollowUpError(400, f"说明过长 · a note has at most {NOTE_MAX} characters")
    if problem is not None or row is None:
        problem = problem or FollowUpError(404, target)
        audit(
            db, actor, "followup", target, ok=False, state=state[:32], reason=str(problem), via=via
        )
        return problem
    was, now = row.state, time.time()
    entry = {"from": was, "state": state, "by": actor, "at": now, "note": note}
    done = db.execute(
        update(FollowUp)
        .where(FollowUp.id == followup_id, FollowUp.state == was)
        .values(
            state=state,
            updated_at=now,
            updated_by=actor,
            note=note,
            history=[*(row.history or []), entry],
        )
        .execution_options(synchronize_session=False)
    )
    if getattr(done, "rowcount", 1) == 0:
        audit(db, actor, "followup", target, ok=False, state=state, reason="changed meanwhile")
        return FollowUpError(
            409, "已被他人更改，请刷新 · changed by someone else meanwhile; reload"
        )
    audit(db, actor, "followup", target, state=state, was=was, note=note, via=via)
    db.expire(row)
    return db.get_one(FollowUp, followup_id)


# --- shown ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    site: str = ""
    station: str = ""
    state: str = "pending"  # "pending" (not resolved), "all", or one of STATES

    @classmethod
    def of(cls, source: Any) -> Filters:
        state = str(source.get("state") or "pending")[:16]
        if state not in (*STATES, "pending", "all"):
            state = "pending"
        return cls(str(source.get("site") or "")[:64], str(source.get("station") or "")[:64], state)


def _query(filters: Filters, station_id: int | None = None) -> Any:
    query = select(FollowUp, Station).join(Station, FollowUp.station_id == Station.id)
    if filters.site:
        query = query.where(Station.site == filters.site)
    if filters.station:
        query = query.where(Station.station == filters.station)
    if station_id is not None:
        query = query.where(FollowUp.station_id == station_id)
    if filters.state == "pending":
        query = query.where(FollowUp.state.in_(PENDING))
    elif filters.state in STATES:
        query = query.where(FollowUp.state == filters.state)
    return query


def listing(
    db: Session, filters: Filters, *, station_id: int | None = None, limit: int = LIST_LIMIT
) -> tuple[list[dict[str, Any]], int]:
    """The first ``limit`` follow-ups (open first, then unreachable, then contacted, each oldest
    first; resolved last, newest first) and how many there are in all."""
    rank = case({"open": 0, "unreachable": 1, "contacted": 2}, value=FollowUp.state, else_=3)
    age = case((FollowUp.state == "resolved", -FollowUp.created_at), else_=FollowUp.created_at)
    query = _query(filters, station_id)
    rows = db.execute(query.order_by(rank, age, FollowUp.id).limit(limit)).all()
    total = db.scalar(query.with_only_columns(func.count(FollowUp.id))) or 0
    names = service_names(db)
    now = time.time()
    return [view(f, s, names, now) for f, s in rows], int(total)


def view(
    row: FollowUp, station: Station, names: dict[str, tuple[str, str]], now: float
) -> dict[str, Any]:
    zh, en = names.get(row.service, (row.service, row.service))
    return {
        "id": row.id,
        "site": station.site,
        "station": station.station,
        "event_id": row.event_id,
        "txn_id": row.txn_id,
        "service": row.service,
        "service_name": {"zh": zh, "en": en},
        "rating": row.rating,
        "tags": [{"code": t, **i18n.both("tag", t)} for t in row.tags or []],
        "rated_at": row.rated_at,
        "created_at": row.created_at,
        "due_at": row.due_at,
        "overdue": row.state != "resolved" and now > row.due_at,
        "state": row.state,
        "next": sorted(STEPS.get(row.state, ())),
        "updated_at": row.updated_at,
        "updated_by": row.updated_by,
        "note": row.note,
        "history": row.history or [],
    }


_names_cache: dict[int, dict[str, tuple[str, str]]] = {}


def service_names(db: Session) -> dict[str, tuple[str, str]]:
    """Service code → (Chinese, English) name, from the catalogs signed through the console (the
    newest wins); a code no catalog names is shown as the code. Read again only when a newer
    draft is signed."""
    newest = db.scalar(select(func.max(CatalogDraft.id)).where(CatalogDraft.signed_at.is_not(None)))
    if newest is None:
        return {}
    if newest not in _names_cache:
        names: dict[str, tuple[str, str]] = {}
        drafts = db.scalars(
            select(CatalogDraft)
            .where(CatalogDraft.signed_at.is_not(None))
            .order_by(CatalogDraft.catalog_version.desc())
            .limit(5)
        )
        for draft in drafts:
            try:
                table = catalog_table(draft.content, source=draft.filename or draft.target)
            except CatalogError:
                continue
            for service in table.get("services") or []:
                if not isinstance(service, dict) or not isinstance(service.get("name"), dict):
                    continue
                code, name = str(service.get("code")), service["name"]
                names.setdefault(code, (str(name.get("zh", code)), str(name.get("en", code))))
        _names_cache.clear()
        _names_cache[newest] = names
    return _names_cache[newest]
