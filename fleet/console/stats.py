"""Statistics for operators: what the stations served, how residents rated it, where they gave up.

Computed from the de-duplicated events the console stored (``transaction``, ``rating``,
``help``), over a window of days (default 30): transactions by day, station and service
with their outcomes; the rating distribution and the reasons residents ticked; failures by
reason; help requests by screen; and abandonment — timeouts, cancels and card removals by the
screen where they happened, in elder mode or not — so operators see which step loses people.
Shown as tables with bar charts drawn in SVG by the server (no script), as JSON
(``/api/stats``) and as CSV (``/stats.csv``). Nothing personal is in any of it: events carry no
names or ID numbers.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
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

from fleet.console.store import Station, StationEvent

if TYPE_CHECKING:
    from fleet.console.app import WebApp

DEFAULT_DAYS = 30
MAX_DAYS = 366


@dataclass
class Stats:
    days: int
    since: float
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
        }


def day_of(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d")


def compute(db: Session, *, days: int = DEFAULT_DAYS, site: str = "") -> Stats:
    since = time.time() - days * 86400
    query = (
        select(Station.site, Station.station, StationEvent.kind, StationEvent.payload)
        .join(Station, StationEvent.station_id == Station.id)
        .where(StationEvent.ts >= since)
        .where(StationEvent.kind.in_(("transaction", "rating", "help")))
    )
    if site:
        query = query.where(Station.site == site)
    stats = Stats(days=days, since=since)
    for row_site, row_station, kind, payload in db.execute(query):
        add(stats, f"{row_site}/{row_station}", kind, payload or {})
    return stats


def add(stats: Stats, station: str, kind: str, payload: dict[str, Any]) -> None:
    """Count one event (the unit the tests check with hand-made events)."""
    if kind == "transaction":
        stats.transactions += 1
        outcome = str(payload.get("outcome") or "unknown")
        key = (day_of(float(payload.get("ts") or 0)), station, str(payload.get("service") or "-"))
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


def bars(items: list[tuple[str, int]], *, width: int = 360, row: int = 22) -> str:
    """A horizontal bar chart as inline SVG (labels in the table beside it)."""
    top = max((n for _, n in items), default=0) or 1
    parts = [
        f'<svg class="bars" width="{width}" height="{row * max(1, len(items))}" role="img" '
        f'aria-label="bar chart">'
    ]
    for i, (label, n) in enumerate(items):
        w = max(1, round((width - 60) * n / top)) if n else 0
        y = i * row
        parts.append(
            f'<rect x="0" y="{y + 3}" width="{w}" height="{row - 6}"><title>{_esc(label)}: '
            f"{n}</title></rect>"
            f'<text x="{w + 6}" y="{y + row - 7}">{n}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


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
        stats: Stats = await self.web.db(lambda db: compute(db, days=days, site=site))
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
        data = stats.as_dict()
        by_service: Counter[str] = Counter()
        for (_, _, service), counts in stats.volume.items():
            by_service[service] += sum(counts.values())
        charts = {
            "services": bars(by_service.most_common()),
            "ratings": bars([(f"{k}★", stats.ratings.get(k, 0)) for k in range(5, 0, -1)]),
            "abandoned": bars(
                [(f"{s} {r} {m}", n) for (s, r, m), n in stats.abandoned.most_common()]
            ),
        }
        return self.web.page(
            request,
            "stats.html",
            who,
            stats=data,
            by_service=by_service.most_common(),
            charts=charts,
            site=self._window(request)[1],
        )
