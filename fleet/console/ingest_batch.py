"""The console's bulk writes: a batch of station messages in a few statements, in one transaction.

:class:`fleet.console.ingest.Ingest` receives messages in batches (:mod:`fleet.mqtt.stream`) and
acknowledges them only after this commit. Heartbeats and events are most of the stream: a batch's
events are de-duplicated by (station, event id) against the batch itself and the database, then
inserted with ``ON CONFLICT DO NOTHING`` (another console may hold a redelivered copy); its
heartbeats update each station once (the newest wins) and add one health sample each. The rare
kinds (``state``, ``birth``, ``reported``, command results) stay one by one, in arrival order,
in :class:`~fleet.console.ingest.Ingest`.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, cast

from sqlalchemy import Table, insert, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fleet.console.edge import EventIn
from fleet.console.enroll import Enrolment
from fleet.console.store import HealthSample, Station, StationEvent, Store

log = logging.getLogger("fleet.console.ingest")


ROWS_PER_INSERT = 1000  # 6,000 parameters: within SQLite's 32,766 and PostgreSQL's 65,535
EventRow = tuple[int, str, str, float, bool, str]  # station id, event id, kind, ts, backfill, JSON
NewEvents = Callable[[Session, list[tuple[int, str, dict[str, Any]]]], object]


def insert_chunks(rows: list[EventRow]) -> list[tuple[int, tuple[Any, ...]]]:
    """The parameters of the inserts of these rows: (rows, their values one after the other)."""
    return [
        (len(chunk), tuple(itertools.chain.from_iterable(chunk)))
        for chunk in (rows[i : i + ROWS_PER_INSERT] for i in range(0, len(rows), ROWS_PER_INSERT))
    ]


def _insert_events(
    db: Session, chunks: list[tuple[int, tuple[Any, ...]]], *, returning: bool = False
) -> tuple[int, set[tuple[int, str]]]:
    """Insert events (:func:`insert_chunks`), skipping any stored already: the number inserted
    (-1 if the driver does not say) and, if ``returning``, which (station id, event id) they were.

    The one statement of the console written for the driver directly: the payload goes in as the
    JSON text the station sent (parsed and checked already), and SQLAlchemy's per-row parameter
    processing was half the ingest's time. Rows go in a thousand per statement, their parameters
    made while the previous batch was written: row by row (``executemany``) the sqlite3 module
    gives up and takes back the GIL around every row (docs/performance.md)."""
    if db.get_bind().dialect.name == "postgresql":
        values = "(%s, %s, %s, %s, %s, CAST(%s AS json))"
    else:
        values = "(?, ?, ?, ?, ?, ?)"
    connection = db.connection()
    inserted, keys = 0, set()
    for count, params in chunks:
        sql = (
            f"INSERT INTO {StationEvent.__tablename__} "  # noqa: S608 - names, no input
            "(station_id, event_id, kind, ts, backfill, payload) VALUES "
            + ", ".join([values] * count)
            + " ON CONFLICT (station_id, event_id) DO NOTHING"
            + (" RETURNING station_id, event_id" if returning else "")
        )
        result = connection.exec_driver_sql(sql, params)
        if returning:
            new = {(row[0], row[1]) for row in result}
            keys |= new
            inserted += len(new)
        else:
            rowcount = result.rowcount
            inserted = -1 if rowcount < 0 or inserted < 0 else inserted + rowcount
    return inserted, keys


@dataclass(slots=True)
class StateFields:
    """The columns of a station that its ``state`` messages set."""

    NAMES: ClassVar[tuple[str, ...]] = (
        "session",
        "state_ts",
        "online",
        "reason",
        "last_seen",
        "offline_since",
    )
    session: int
    state_ts: float
    online: bool
    reason: str
    last_seen: float
    offline_since: float | None

    def values(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.NAMES}


def apply_state(row: Station | StateFields, payload: dict[str, Any], now: float) -> bool:
    """Take a ``state`` message unless it is a late Will of an older session, or stale within
    its own; True if taken.

    Ordered by the session counter, not by time: a station's Will is made (and stamped) before
    it connects, so it carries an older ``ts`` than the ``connect`` state it follows. Within one
    session a station is online once (``connect``) and then offline for good (its Will, or a
    clean ``shutdown``): an offline state ends the session whatever its ``ts``, and a ``connect``
    coming after the end is a late copy. Two states of the same kind go by ``ts``.
    """
    session = int(payload.get("session", 0))
    ts = float(payload.get("ts", 0.0))
    online = bool(payload.get("online"))
    if session < row.session:
        return False
    same = session == row.session
    if same and session:
        if online and not row.online:
            return False  # the session has ended; a connect of it is a late copy
        if online == row.online and ts < row.state_ts:
            return False
    row.session = session
    row.state_ts = max(ts, row.state_ts) if same else ts
    row.online = online
    row.reason = str(payload.get("reason", ""))[:64]
    if row.online:
        row.last_seen = now
        row.offline_since = None
    elif row.offline_since is None:
        row.offline_since = now
    return True


REFUSAL_TTL_S = 60.0  # a refused (site, station) is looked up again after this (a re-enrolment)


class BatchWriter:
    """Station ids by (site, station), kept in memory; bulk writes of heartbeats and events."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._ids: dict[tuple[str, str], int] = {}
        self._names: dict[int, tuple[str, str]] = {}
        # (site, station) keys refused (the station is bound to another site), until when
        self._refused: dict[tuple[str, str], float] = {}
        self._loaded = False

    def _load_all(self) -> None:
        """Every registered station's id, in one query (a restarted console knows them all)."""
        with self.store.session() as db:
            rows = db.execute(select(Station.site, Station.station, Station.id)).all()
        self._remember({(site, station): sid for site, station, sid in rows})
        self._loaded = True

    def _remember(self, known: dict[tuple[str, str], int]) -> None:
        self._ids.update(known)
        self._names.update((sid, key) for key, sid in known.items())

    def station_ids(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
        """The ids of these stations, registering the new ones a station may use (see
        :meth:`refused`): a key refused is absent from the answer."""
        if not self._loaded:
            self._load_all()
        now = time.monotonic()
        missing = {k for k in keys if k not in self._ids and self._refused.get(k, 0.0) < now}
        for _ in range(3):
            if not missing:
                return self._ids
            try:
                with self.store.session() as db:
                    known = self._known(db, missing)
                    new = missing - set(known)
                    bound = self._bound(db, {station for _, station in new})
                    allowed = {
                        (site, station) for site, station in new if bound.get(station, site) == site
                    }
                    if allowed:
                        db.execute(
                            insert(cast(Table, Station.__table__)),
                            [
                                {"site": s, "station": t, "first_seen": time.time()}
                                for s, t in allowed
                            ],
                        )
                        known.update(self._known(db, allowed))
                    refused = new - allowed
                self._remember(known)
                self._refused.update((key, now + REFUSAL_TTL_S) for key in refused)
                missing -= set(known) | refused
            except IntegrityError:  # another console registered one a moment ago
                continue
        if missing:
            raise RuntimeError(f"stations {sorted(missing)[:3]} could not be stored")
        return self._ids

    def owner(self, station: str) -> int | None:
        """The id of the row of ``station`` under the site it is bound to (None: not enrolled
        and never seen under a valid site). Asked only for messages set aside: not cached."""
        with self.store.session() as db:
            site = self._bound(db, {station}).get(station)
            if site is None:
                return None
            return self._known(db, {(site, station)}).get((site, station))

    @staticmethod
    def _bound(db: Session, stations: set[str]) -> dict[str, str]:
        """The site each of these stations is bound to: its enrolment's, else the site it was
        first seen under; absent for a station never seen and not enrolled."""
        if not stations:
            return {}
        first = (
            select(Station.station, Station.site)
            .where(Station.station.in_(list(stations)))
            .order_by(Station.id.desc())  # the oldest row last: it wins below
        )
        bound = {station: site for station, site in db.execute(first)}
        enrolled = select(Enrolment.station, Enrolment.site).where(
            Enrolment.station.in_(list(stations))
        )
        bound.update({station: site for station, site in db.execute(enrolled)})
        return bound

    @staticmethod
    def _known(db: Session, keys: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
        query = select(Station.site, Station.station, Station.id).where(
            tuple_(Station.site, Station.station).in_(list(keys))
        )
        return {(site, station): sid for site, station, sid in db.execute(query)}

    def name_of(self, station_id: int) -> tuple[str, str]:
        """(site, station) of a station this console has seen (KeyError if it has not)."""
        return self._names[station_id]

    def station_id(self, site: str, station: str) -> int:
        return self.station_ids([(site, station)])[(site, station)]

    def records(self, items: list[tuple[int, str, dict[str, Any]]], now: float) -> set[int]:
        """``state``, ``birth`` and ``reported`` (retained, so a console gets every station's at
        each connect), in arrival order; the stations whose newest state says online."""
        births: dict[int, dict[str, Any]] = {}
        reports: dict[int, dict[str, Any]] = {}
        states: list[tuple[int, dict[str, Any]]] = []
        for station_id, kind, payload in items:
            if kind == "birth":
                births[station_id] = payload
            elif kind == "reported":
                reports[station_id] = payload
            else:
                states.append((station_id, payload))
        online: set[int] = set()
        with self.store.session() as db:
            for column, newest in (("birth", births), ("reported", reports)):
                if newest:
                    rows = [{"id": i, column: p} for i, p in newest.items()]
                    db.execute(update(Station), rows)
            if not states:
                return online
            columns = (Station.id, *(getattr(Station, f) for f in StateFields.NAMES))
            query = select(*columns).where(Station.id.in_({i for i, _ in states}))
            current = {row[0]: StateFields(*row[1:]) for row in db.execute(query)}
            changed: set[int] = set()
            for station_id, payload in states:
                fields = current[station_id]
                if apply_state(fields, payload, now):
                    changed.add(station_id)
                    (online.add if fields.online else online.discard)(station_id)
            if changed:
                rows = [{"id": i, **current[i].values()} for i in changed]
                db.execute(update(Station), rows)
        return online

    def heartbeats(
        self, items: list[tuple[int, dict[str, Any]]], now: float
    ) -> dict[int, dict[str, Any]]:
        """Store each station's newest heartbeat and a sample of each; the newest by station."""
        newest: dict[int, dict[str, Any]] = {}
        for station_id, payload in items:
            newest[station_id] = payload
        if not items:
            return newest
        with_interval: list[dict[str, Any]] = []
        without: list[dict[str, Any]] = []
        for station_id, payload in newest.items():
            interval = payload.get("interval_s")
            row = {"id": station_id, "health": payload, "last_seen": now}
            if (
                isinstance(interval, int | float)
                and not isinstance(interval, bool)
                and interval > 0
            ):
                with_interval.append({**row, "interval_s": float(interval)})
            else:
                without.append(row)
        samples = []
        for station_id, payload in items:
            ui = payload.get("ui_alive")
            samples.append(
                {
                    "station_id": station_id,
                    "ts": now,
                    "ui_alive": ui if isinstance(ui, bool) else None,
                    "payload": payload,
                }
            )
        with self.store.session() as db:
            for rows in (with_interval, without):
                if rows:
                    db.execute(update(Station), rows)
            # a station whose state the console never saw: a heartbeat says it is there
            db.execute(
                update(Station)
                .where(Station.id.in_(list(newest)), Station.session == 0)
                .values(online=True)
            )
            db.execute(insert(cast(Table, HealthSample.__table__)), samples)
        return newest

    def event_rows(self, items: list[EventIn], followed: frozenset[str]) -> EventRows:
        """A batch's events as rows, de-duplicated within the batch, with the parameters of their
        inserts (no database: it runs while the previous batch is written). The stations must be
        known (:meth:`station_ids`)."""
        ids = self._ids
        now = time.time()
        keys: set[tuple[int, str]] = set()
        plain: list[EventRow] = []
        followed_rows: list[EventRow] = []
        watched: dict[tuple[int, str], tuple[int, str, dict[str, Any]]] = {}
        duplicates = 0
        for site, station, kind, event_id, ts, backfill, text, payload in items:
            station_id = ids[(site, station)]
            key = (station_id, event_id)
            if key in keys:
                duplicates += 1
                continue
            keys.add(key)
            row = (station_id, event_id, kind, ts or now, backfill, text)
            if payload is not None and kind in followed:
                followed_rows.append(row)
                watched[key] = (station_id, kind, payload)
            else:
                plain.append(row)
        # in key order: each insert lands next to the previous one in the unique index, so a
        # batch goes through the index once instead of jumping about (bench console: 0.44 in
        # arrival order, 0.46-0.51 sorted)
        plain.sort()
        return EventRows(
            len(keys), watched, duplicates, insert_chunks(plain), insert_chunks(followed_rows)
        )

    def events(
        self, rows: EventRows, with_new: NewEvents | None = None
    ) -> tuple[list[tuple[int, str, dict[str, Any]]], int]:
        """Store the events not stored yet. Returns the new ones the console acts on (help,
        alerts, CSRs, ratings: ``followed`` of :meth:`event_rows`) as (station id, kind,
        payload), and the number of duplicates. Everything is inserted with ``ON CONFLICT DO
        NOTHING``; the inserts of the followed kinds return what they stored, so an event stored
        already (a redelivery, or another console's) raises nothing twice. ``with_new`` writes
        what must be stored with those new events or not at all (follow-ups of bad ratings), in
        the same transaction."""
        if not rows.count:
            return [], rows.duplicates
        with self.store.session() as db:
            inserted, _ = _insert_events(db, rows.chunks)
            inserted_followed, new = _insert_events(db, rows.followed, returning=True)
            fresh = [item for key, item in rows.watched.items() if key in new]
            if with_new is not None and fresh:
                with_new(db, fresh)
        duplicates = rows.duplicates + len(rows.watched) - inserted_followed
        if inserted >= 0:  # the rest were stored already (another console, a redelivery)
            duplicates += rows.count - len(rows.watched) - inserted
        return fresh, duplicates


@dataclass(slots=True)
class EventRows:
    """A batch's events, ready to insert: how many; those the console acts on by (station id,
    event id), as (station id, kind, payload); the parameters of the inserts of the others and
    of those."""

    count: int
    watched: dict[tuple[int, str], tuple[int, str, dict[str, Any]]]
    duplicates: int
    chunks: list[tuple[int, tuple[Any, ...]]]
    followed: list[tuple[int, tuple[Any, ...]]]
