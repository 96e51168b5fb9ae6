"""Statistics for operators: what the stations served, how residents rated it, where they gave up.

Computed from the de-duplicated events the console stored (``transaction``, ``rating``,
``help``), over a window of days (default 30): transactions by day, station and service
with their outcomes; the rating distribution and the reasons residents ticked; failures by
reason; help requests by screen; and abandonment — timeouts, cancels and card removals by the
screen where they happened, in elder mode or not — so operators see which step loses people.
Also each station's uptime (:mod:`fleet.console.uptime`). Shown as charts drawn in SVG by the
server (:mod:`fleet.console.stats_charts`, no script) with tables beside them, as JSON
(``/api/stats``) and as CSV (``/stats.csv``). Nothing personal is in any of it: events carry no
names or ID numbers.

The window is whole days in the console's time zone (:mod:`fleet.console.zone`): ``days=1`` is
today since midnight there, ``days=30`` today and the 29 days before; a transaction is counted
on the day its station's clock says it happened, in that zone, whatever the host's zone is.
"""

from __future__ import annotations

import csv
import io
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fleet.console import followups, uptime
from fleet.console.stat_words import failure, reason, say, screen
from fleet.console.stats_charts import charts, named_tags, service_label
from fleet.console.store import Station, StationEvent
from fleet.console.zone import LocalTime

if TYPE_CHECKING:
    from fleet.console.app import WebApp

DEFAULT_DAYS = 30
MAX_DAYS = 366


@dataclass
class Stats:
    days: int
    since: float
    local: LocalTime = field(default_factory=LocalTime)
    day_list: list[str] = field(default_factory=list)  # every day of the window, in order
    service_names: dict[str, tuple[str, str]] = field(default_factory=dict)
    uptime: list[uptime.Uptime] = field(default_factory=list)  # lowest first
    # (day, "site/station", service) → Counter of outcomes
    volume: dict[tuple[str, str, str], Counter[str]] = field(default_factory=dict)
    ratings: Counter[int] = field(default_factory=Counter)
    rating_tags: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    help_requests: Counter[str] = field(default_factory=Counter)
    # (screen, reason, "elder" | "standard") → count
    abandoned: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    transactions: int = 0

    @property
    def rating_mean(self) -> float | None:
        total = sum(self.ratings.values())
        return round(sum(k * v for k, v in self.ratings.items()) / total, 2) if total else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "days": self.days,
            "since": self.since,
            "timezone": self.local.name,
            "day_list": self.day_list,
            "transactions": self.transactions,
            "volume": [
                {"day": d, "station": s, "service": svc, **dict(c)}
                for (d, s, svc), c in sorted(self.volume.items())
            ],
            "ratings": {str(k): self.ratings.get(k, 0) for k in range(1, 6)},
            "rating_mean": self.rating_mean,
            "rating_tags": dict(self.rating_tags.most_common()),
            "failures": dict(self.failures.most_common()),
            "help_requests": dict(self.help_requests.most_common()),
            "abandoned": [
                {"screen": screen, "reason": reason, "mode": mode, "count": n}
                for (screen, reason, mode), n in self.abandoned.most_common()
            ],
            "uptime": [
                {"station": u.station, "percent": round(u.percent, 2), "slots": u.expected_slots}
                for u in self.uptime
            ],
        }


def compute(
    db: Session,
    *,
    days: int = DEFAULT_DAYS,
    site: str = "",
    local: LocalTime | None = None,
    now: float | None = None,
) -> Stats:
    local = local or LocalTime()
    now = time.time() if now is None else now
    since, day_list = local.days_back(days, now)
    query = (
        select(Station.site, Station.station, StationEvent.kind, StationEvent.payload)
        .join(Station, StationEvent.station_id == Station.id)
        .where(StationEvent.ts >= since)
        .where(StationEvent.kind.in_(("transaction", "rating", "help")))
    )
    if site:
        query = query.where(Station.site == site)
    stats = Stats(days=days, since=since, local=local, day_list=day_list)
    for row_site, row_station, kind, payload in db.execute(query):
        add(stats, f"{row_site}/{row_station}", kind, payload or {})
    stats.service_names = followups.service_names(db)
    stats.uptime = uptime.compute(db, since, now, site=site)
    return stats


def add(stats: Stats, station: str, kind: str, payload: dict[str, Any]) -> None:
    """Count one event (the unit the tests check with hand-made events)."""
    if kind == "transaction":
        stats.transactions += 1
        outcome = str(payload.get("outcome") or "unknown")
        day = stats.local.day(float(payload.get("ts") or 0))
        key = (day, station, str(payload.get("service") or "-"))
        stats.volume.setdefault(key, Counter())[outcome] += 1
        if outcome == "failed":
            stats.failures[str(payload.get("reason") or "unknown")] += 1
        if outcome == "abandoned":
            mode = "elder" if payload.get("elder") else "standard"
            screen = str(payload.get("abandoned_state") or "unknown")
            stats.abandoned[(screen, str(payload.get("reason") or "unknown"), mode)] += 1
    elif kind == "rating":
        rating = int(payload.get("rating") or 0)
        if 1 <= rating <= 5:
            stats.ratings[rating] += 1
        stats.rating_tags.update(str(t) for t in payload.get("tags") or ())
    elif kind == "help":
        stats.help_requests[str(payload.get("screen") or "unknown")] += 1


def to_csv(stats: Stats) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["day", "station", "service", "completed", "failed", "abandoned"])
    for (day, station, service), counts in sorted(stats.volume.items()):
        writer.writerow(
            [
                day,
                station,
                service,
                counts.get("completed", 0),
                counts.get("failed", 0),
                counts.get("abandoned", 0),
            ]
        )
    return out.getvalue()


class StatsRoutes:
    def __init__(self, web: WebApp) -> None:
        self.web = web

    def routes(self) -> list[Route]:
        return [
            Route("/stats", self.page),
            Route("/stats.csv", self.csv),
            Route("/api/stats", self.api),
        ]

    @staticmethod
    def _window(request: Request) -> tuple[int, str]:
        try:
            days = int(request.query_params.get("days", DEFAULT_DAYS))
        except ValueError:
            days = DEFAULT_DAYS
        return max(1, min(days, MAX_DAYS)), request.query_params.get("site", "")

    async def _stats(self, request: Request) -> Stats:
        days, site = self._window(request)
        local = self.web.local_time
        stats: Stats = await self.web.db(lambda db: compute(db, days=days, site=site, local=local))
        return stats

    async def api(self, request: Request) -> Response:
        await self.web.require(request)
        return JSONResponse((await self._stats(request)).as_dict())

    async def csv(self, request: Request) -> Response:
        await self.web.require(request)
        stats = await self._stats(request)
        return Response(
            to_csv(stats),
            media_type="text/csv; charset=utf-8",
            headers={
                "content-disposition": f'attachment; filename="transactions-{stats.days}d.csv"'
            },
        )

    async def page(self, request: Request) -> Response:
        who = await self.web.require(request)
        stats = await self._stats(request)
        names = stats.service_names
        by_service: Counter[str] = Counter()
        for (_, _, service), counts in stats.volume.items():
            by_service[service] += sum(counts.values())
        return self.web.page(
            request,
            "stats.html",
            who,
            stats=stats.as_dict(),
            zone=stats.local.label,
            by_service=[(service_label(c, names), n) for c, n in by_service.most_common()],
            services={c: service_label(c, names) for c in by_service},
            tags=named_tags(stats.rating_tags),
            screen=screen,
            reason=reason,
            failure=failure,
            mode=lambda code: say("mode.elder" if code == "elder" else "mode.standard"),
            charts=charts(stats),
            site=self._window(request)[1],
        )
