"""What the console's pages and API show, read from the database (no web framework here)."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from fleet.console import followups
from fleet.console.store import (
    Alert,
    CommandRow,
    DeadLetter,
    HealthSample,
    RolloutRow,
    Station,
    StationEvent,
    Store,
    Timers,
    device_items,
    station_status,
)
from fleet.console.zone import DEFAULT_TIMEZONE, LocalTime

SHANGHAI = LocalTime(DEFAULT_TIMEZONE)
STATUSES = ("online", "stale", "offline", "out_of_order")
EVENT_FIELDS = ("service", "outcome", "rating", "screen", "kind", "reason", "backfill")


def station_view(row: Station, now: float, timers: Timers) -> dict[str, Any]:
    health = row.health or {}
    birth = row.birth or {}
    reported = row.reported or {}
    return {
        "id": row.id,
        "site": row.site,
        "station": row.station,
        "status": station_status(row, now, timers),
        "online": row.online,
        "session": row.session,
        "reason": row.reason,
        "ui_alive": health.get("ui_alive"),
        "devices": {name: d for name, d in device_items(health)},
        "last_txn_ts": health.get("last_txn_ts"),
        "outbox": health.get("outbox"),
        "disk_free_mib": health.get("disk_free_mib"),
        "app_version": birth.get("app_version"),
        "catalog_version": reported.get("catalog_version") or birth.get("catalog_version"),
        "cert_expiry": birth.get("cert_expiry"),
        "calls": "call" in (birth.get("capabilities") or ()),  # call audio at the station
        "last_seen": row.last_seen,
        "interval_s": row.interval_s,
        "duty_hours": row.duty_hours,
    }


def stations(
    db: Session,
    timers: Timers,
    *,
    site: str = "",
    status: str = "",
    q: str = "",
) -> list[dict[str, Any]]:
    now = time.time()
    rows = db.scalars(select(Station).order_by(Station.site, Station.station))
    views = [station_view(r, now, timers) for r in rows]
    return [
        v
        for v in views
        if (not site or v["site"] == site)
        and (not status or v["status"] == status)
        and (not q or q.lower() in v["station"].lower())
    ]


def find_station(db: Session, site: str, station: str) -> Station | None:
    return db.scalar(select(Station).where(Station.site == site, Station.station == station))


def alert_view(alert: Alert, station: Station) -> dict[str, Any]:
    return {
        "id": alert.id,
        "kind": alert.kind,
        "site": station.site,
        "station": station.station,
        "raised_at": alert.raised_at,
        "last_at": alert.last_at,
        "count": alert.count,
        "detail": alert.detail,
        "acknowledged_at": alert.acknowledged_at,
        "acknowledged_by": alert.acknowledged_by,
        "resolved_at": alert.resolved_at,
        "active": alert.resolved_at is None,
        "notified": alert.notified,
    }


# Which alerts come first in every list, so that a flood of one kind (a thousand stations
# offline) never pushes a resident asking for help off the page: people, then what stops a
# service, then warnings, then presence.
PRIORITY: dict[str, int] = {
    "help_request": 0,
    "ui_frozen": 1,
    "reader_fault": 1,
    "paper_out": 1,
    "toner_out": 1,
    "printer_fault": 1,
    "speech_fault": 1,
    "card_left_behind": 1,  # someone's ID card lies on the reader, and the station waits for it
    "site_mismatch": 1,
    "site_outage": 1,  # a whole hall dark: one line, above the stations offline one by one
    "offline": 3,
}
OTHER = 2  # paper or toner low, malformed messages, certificates, a station's own alerts


def _alert_query(active_only: bool, station_id: int | None) -> Any:
    query = select(Alert, Station).join(Station, Alert.station_id == Station.id)
    if active_only:
        query = query.where(Alert.resolved_at.is_(None))
    if station_id is not None:
        query = query.where(Alert.station_id == station_id)
    return query


def alerts(
    db: Session, *, active_only: bool = True, station_id: int | None = None, limit: int = 200
) -> list[dict[str, Any]]:
    """The first ``limit`` alerts by :data:`PRIORITY`, newest first within one; say how many
    there are in all with :func:`alert_total` ("200 of 1,038")."""
    rank = case(PRIORITY, value=Alert.kind, else_=OTHER)
    query = _alert_query(active_only, station_id).order_by(rank, Alert.raised_at.desc())
    return [alert_view(a, s) for a, s in db.execute(query.limit(limit)).all()]


def alert_total(db: Session, *, active_only: bool = True, station_id: int | None = None) -> int:
    query = _alert_query(active_only, station_id).with_only_columns(func.count(Alert.id))
    return int(db.scalar(query) or 0)


def command_view(row: CommandRow) -> dict[str, Any]:
    detail = dict(row.detail or {})
    has_png = bool(detail.pop("png_base64", None))
    return {
        "id": row.id,
        "name": row.name,
        "args": row.args,
        "status": row.status,
        "detail": detail,
        "has_png": has_png,
        "actor": row.actor,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "note": row.note,
    }


def station_page(db: Session, row: Station, timers: Timers) -> dict[str, Any]:
    history = db.scalars(
        select(HealthSample)
        .where(HealthSample.station_id == row.id)
        .order_by(HealthSample.id.desc())
        .limit(30)
    )
    events = db.scalars(
        select(StationEvent)
        .where(StationEvent.station_id == row.id)
        .order_by(StationEvent.ts.desc(), StationEvent.id.desc())  # its own time: a backfilled
        .limit(50)  # event shows when it happened; the ingest stores a batch in key order
    )
    commands = db.scalars(
        select(CommandRow)
        .where(CommandRow.station_id == row.id)
        .order_by(CommandRow.created_at.desc())
        .limit(30)
    )
    command_views = [command_view(c) for c in commands]
    shots = [c for c in command_views if c["name"] == "screenshot" and c["has_png"]]
    return {
        "station": station_view(row, time.time(), timers),
        "history": [
            {
                "ts": h.ts,
                "ui_alive": h.ui_alive,
                "devices": {n: d for n, d in device_items(h.payload)},
                "outbox": h.payload.get("outbox"),
            }
            for h in history
        ],
        "events": [
            {
                "kind": e.kind,
                "ts": e.ts,
                "backfill": e.backfill,
                "fields": {k: e.payload[k] for k in EVENT_FIELDS if e.payload.get(k) is not None},
            }
            for e in events
        ],
        "commands": command_views,
        "followups": followups.listing(db, followups.Filters(), station_id=row.id, limit=30)[0],
        "screenshot": shots[0] if shots else None,
        "alerts": alerts(db, active_only=False, station_id=row.id, limit=30),
        "dead_letters": [
            {
                "received_at": d.received_at,
                "kind": d.kind,
                "reason": d.reason,
                "size": d.size,
                "excerpt": d.excerpt,
            }
            for d in db.scalars(
                select(DeadLetter)
                .where(DeadLetter.station_id == row.id)
                .order_by(DeadLetter.id.desc())
                .limit(20)
            )
        ],
    }


def digest(store: Store, timers: Timers) -> str:
    """Changes whenever something a page shows has changed (the live updates' trigger)."""
    with store.session() as db:
        parts = [
            db.execute(
                select(func.max(Alert.id), func.max(Alert.last_at), func.count(Alert.id))
            ).one(),
            db.execute(select(func.max(Alert.acknowledged_at), func.max(Alert.resolved_at))).one(),
            db.execute(select(func.max(StationEvent.id))).one(),
            db.execute(select(func.max(CommandRow.updated_at), func.count(CommandRow.id))).one(),
            db.execute(select(func.max(Station.last_seen), func.max(Station.state_ts))).one(),
            db.execute(select(func.max(RolloutRow.updated), func.count(RolloutRow.id))).one(),
        ]
        now = time.time()
        statuses = [station_status(s, now, timers) for s in db.scalars(select(Station))]
    text = json.dumps([list(p) for p in parts] + statuses, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def when(ts: float | None, local: LocalTime = SHANGHAI) -> str:
    """An absolute time in the console's zone with its offset (``2026-12-05 21:03:07 +08:00``);
    the web app registers ``local.when`` of its own setting as the ``when`` filter."""
    return local.when(ts)


def ago(ts: float | None) -> str:
    """How long ago (a duration: the same in every zone)."""
    if not ts:
        return "—"
    seconds = max(0.0, time.time() - float(ts))
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class FleetCollector(Collector):
    """Prometheus gauges read from the database at scrape time (right for every process)."""

    def __init__(self, store: Store, timers: Timers) -> None:
        self.store = store
        self.timers = timers

    def collect(self) -> Any:
        by_status = GaugeMetricFamily("console_stations", "stations by state", labels=["status"])
        open_alerts = GaugeMetricFamily("console_alerts_open", "open alerts", labels=["kind"])
        with self.store.session() as db:
            views = stations(db, self.timers)
            counts = db.execute(
                select(Alert.kind, func.count(Alert.id))
                .where(Alert.resolved_at.is_(None))
                .group_by(Alert.kind)
            ).all()
        for status in STATUSES:
            by_status.add_metric([status], sum(1 for v in views if v["status"] == status))
        for kind, count in counts:
            open_alerts.add_metric([kind], count)
        yield by_status
        yield open_alerts
