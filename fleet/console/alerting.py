"""Alerts: raised once while active (``active_key`` is unique), counted when repeated, resolved,
and told to the webhook when new.

An alert is one row per station and kind while it is not resolved; ``{station_id}:{kind}`` is
its ``active_key``, unique in the database, which de-duplicates it also between several console
processes (a unique violation means another console raised it a moment ago). Health alerts
(:data:`HEALTH_KINDS`) follow each station's newest heartbeat: raised when it says so, resolved
when it no longer does.

A repeated alert keeps its first detail, except a help request's: a resident who presses help
again and again in one session (on the choose screen, then on the preview) is one alert whose
count rises, and whose ``detail["screens"]`` lists every screen the presses came from, oldest
first, the last :data:`MAX_SCREENS` while the alert is open (:func:`merge_detail`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fleet.console.conditions import health_conditions
from fleet.console.outputs import Metrics, Webhook
from fleet.console.store import Alert, Station, Store

HEALTH_KINDS = (
    "ui_frozen",
    "paper_out",
    "paper_low",
    "toner_out",
    "toner_low",
    "reader_fault",
    "printer_fault",
    "speech_fault",
    "card_left_behind",  # a resident's card left on a reader (kiosk.shell.leftcard)
    "disk_low",
    "clock_skew",
)


MAX_SCREENS = 10
"""A help request remembers this many screens (the newest)."""


def _screens(detail: dict[str, Any]) -> list[Any]:
    screens = detail.get("screens")
    return list(screens) if isinstance(screens, list) else [detail.get("screen")]


def first_detail(kind: str, detail: dict[str, Any]) -> dict[str, Any]:
    """A new alert's detail: a help request starts its list of screens."""
    if kind != "help_request":
        return detail
    return {**detail, "screens": _screens(detail)[-MAX_SCREENS:]}


def merge_detail(kind: str, detail: dict[str, Any], more: dict[str, Any]) -> dict[str, Any]:
    """An open alert's detail after a repeat (``more``: the repeat's detail, or several merged)."""
    if kind != "help_request":
        return detail
    return {**detail, "screens": (_screens(detail) + _screens(more))[-MAX_SCREENS:]}


class AlertDesk:
    """Raises and resolves alerts. ``name_of`` gives a station's (site, station) from its id when
    the ingest knows it (KeyError if not: then the database is asked)."""

    def __init__(
        self,
        store: Store,
        metrics: Metrics,
        webhook: Webhook,
        name_of: Callable[[int], tuple[str, str]],
        console_url: str = "",
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.webhook = webhook
        self.name_of = name_of
        self.console_url = console_url

    def resolve_all(self, station_ids: set[int], kind: str) -> None:
        """Resolve ``kind`` for these stations, where it is raised (one query to find them)."""
        if not station_ids:
            return
        with self.store.session() as db:
            raised = set(
                db.scalars(
                    select(Alert.station_id).where(
                        Alert.station_id.in_(list(station_ids)),
                        Alert.kind == kind,
                        Alert.active_key.is_not(None),
                    )
                )
            )
        for station_id in raised:
            self.resolve(station_id, kind)

    def health_alerts(self, newest: dict[int, dict[str, Any]], received: float) -> None:
        """Raise what the newest heartbeats say, unless raised; resolve what they no longer say.
        ``received``: when they arrived, by the console's clock."""
        if not newest:
            return
        with self.store.session() as db:
            active: set[tuple[int, str]] = set(
                (row[0], row[1])
                for row in db.execute(
                    select(Alert.station_id, Alert.kind).where(
                        Alert.station_id.in_(list(newest)),
                        Alert.active_key.is_not(None),
                        Alert.kind.in_(HEALTH_KINDS),
                    )
                )
            )
        raise_: list[tuple[int, str, dict[str, Any], bool]] = []
        for station_id, payload in newest.items():
            conditions = health_conditions(payload, received)
            for kind in HEALTH_KINDS:
                if kind in conditions and (station_id, kind) not in active:
                    raise_.append((station_id, kind, conditions[kind], False))
                elif kind not in conditions and (station_id, kind) in active:
                    self.resolve(station_id, kind)
        self.raise_alerts(raise_)

    def raise_alert(
        self,
        station_id: int,
        kind: str,
        detail: dict[str, Any],
        *,
        repeat: bool = False,
        key: str | None = None,
    ) -> bool:
        """Raise ``kind`` for the station unless it is raised already; True if it is new.
        ``key``: what makes it one while active, if not the station and kind (an incident of a
        site is one whichever of its stations stands for it)."""
        key = key or f"{station_id}:{kind}"
        now = time.time()
        for _ in range(3):
            try:
                with self.store.session() as db:
                    existing = db.scalar(select(Alert).where(Alert.active_key == key))
                    if existing is not None:
                        existing.last_at = now
                        if repeat:
                            existing.count += 1
                            existing.detail = merge_detail(kind, existing.detail or {}, detail)
                        return False
                    row = {
                        "station_id": station_id,
                        "kind": kind,
                        "active_key": key,
                        "raised_at": now,
                        "last_at": now,
                        "count": 1,
                        "detail": first_detail(kind, detail),
                        "notified": "" if self.webhook.url else "off",
                    }
                    alert = Alert(**row)
                    db.add(alert)
                    db.flush()
                    message = self._alert_message(db, alert.id, row)
            except IntegrityError:  # raised by another console just now: de-duplicated
                continue
            self.metrics.alerts.labels(kind=kind.split(":")[0]).inc()
            self.webhook.notify(message)
            return True
        return False

    def raise_alerts(self, requests: list[tuple[int, str, dict[str, Any], bool]]) -> int:
        """Many :meth:`raise_alert` (station id, kind, detail, repeat) in one transaction: the
        same counts as one by one; the number of new alerts."""
        merged: dict[str, tuple[int, str, dict[str, Any], int]] = {}
        for station_id, kind, detail, repeat in requests:
            key = f"{station_id}:{kind}"
            seen = merged.get(key)
            repeats = (seen[3] if seen else 0) + (1 if repeat else 0)
            detail = merge_detail(kind, seen[2], detail) if seen else first_detail(kind, detail)
            merged[key] = (station_id, kind, detail, repeats)
        if len(requests) <= 1:
            return sum(self.raise_alert(s, k, d, repeat=r) for s, k, d, r in requests)
        now = time.time()
        notified = "" if self.webhook.url else "off"
        try:
            with self.store.session() as db:
                alerts = select(Alert).where(Alert.active_key.in_(list(merged)))
                existing = {a.active_key: a for a in db.scalars(alerts)}
                rows: list[dict[str, Any]] = []
                for key, (station_id, kind, detail, repeats) in merged.items():
                    alert = existing.get(key)
                    if alert is not None:
                        alert.last_at = now
                        alert.count += repeats
                        if repeats:
                            alert.detail = merge_detail(kind, alert.detail or {}, detail)
                        continue
                    rows.append(
                        {
                            "station_id": station_id,
                            "kind": kind,
                            "active_key": key,
                            "raised_at": now,
                            "last_at": now,
                            "count": max(1, repeats),
                            "detail": detail,
                            "notified": notified,
                        }
                    )
                ids: dict[str | None, int] = {}
                if rows:  # one statement, then their ids by key (unique while active)
                    db.execute(insert(Alert), rows)
                    keys = [row["active_key"] for row in rows]
                    query = select(Alert.active_key, Alert.id).where(Alert.active_key.in_(keys))
                    ids = {key: alert_id for key, alert_id in db.execute(query)}
                messages = [self._alert_message(db, ids[row["active_key"]], row) for row in rows]
        except IntegrityError:  # another console raised one of them just now: one by one
            return sum(self.raise_alert(s, k, d, repeat=r) for s, k, d, r in requests)
        for message in messages:
            self.metrics.alerts.labels(kind=str(message["kind"]).split(":")[0]).inc()
            self.webhook.notify(message)
        return len(messages)

    def _alert_message(self, db: Session, alert_id: int, alert: dict[str, Any]) -> dict[str, Any]:
        """What the webhook is sent about a new alert (``alert``: its columns by name)."""
        try:
            site, station = self.name_of(alert["station_id"])
        except KeyError:  # a station this process has not heard from (the sweep's offline)
            row = db.get_one(Station, alert["station_id"])
            site, station = row.site, row.station
        return {
            "id": alert_id,
            "kind": alert["kind"],
            "site": site,
            "station": station,
            "raised_at": alert["raised_at"],
            "detail": alert["detail"],
            "url": f"{self.console_url}/stations/{site}/{station}",
        }

    def resolve(self, station_id: int, kind: str, *, key: str | None = None) -> None:
        with self.store.session() as db:
            key = key or f"{station_id}:{kind}"
            alert = db.scalar(select(Alert).where(Alert.active_key == key))
            if alert is not None:
                alert.active_key = None
                alert.resolved_at = time.time()
