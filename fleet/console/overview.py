"""The fleet page for 10,000 stations: counts first, the stations that need someone next, a page
at a time.

A technician at 3 a.m. wants to know how many stations serve residents and which ones do not.
The page says how many are online, stale, offline or out of order, and how many *need
attention* (not online, a frozen UI, or a device not well); the list puts those first, filters
by site, state, a device in fault and a station's name, and shows :data:`PER_PAGE` rows at a
time, so the page stays small (about 40 KB at 10,000 stations) however large the fleet.
"""

from __future__ import annotations

import collections
import math
from typing import Any

from sqlalchemy.orm import Session

from fleet.console import views
from fleet.console.store import Timers

PER_PAGE = 50
ALERTS_SHOWN = 20  # on the fleet page; the alerts page has the rest ("N of M" says so)


def attention(view: dict[str, Any]) -> list[str]:
    """Why a station needs someone (empty: it serves residents and every device is well)."""
    why = [] if view["status"] == "online" else [view["status"]]
    if view["ui_alive"] is False:
        why.append("ui_frozen")
    why += [
        f"{name}: {d.get('state')}"
        for name, d in view["devices"].items()
        if d.get("state") not in ("ok", None)
    ]
    return why


def faults(view: dict[str, Any]) -> set[str]:
    """The devices of a station that are not well."""
    return {name for name, d in view["devices"].items() if d.get("state") not in ("ok", None)}


def fleet_page(
    db: Session,
    timers: Timers,
    *,
    site: str = "",
    status: str = "",
    q: str = "",
    fault: str = "",
    only_attention: bool = False,
    page: int = 1,
) -> dict[str, Any]:
    every = views.stations(db, timers)
    for view in every:
        view["attention"] = attention(view)
    by_fault: collections.Counter[str] = collections.Counter()
    sites: dict[str, list[int]] = {}
    for view in every:
        by_fault.update(faults(view))
        counts = sites.setdefault(view["site"], [0, 0])
        counts[0] += 1
        counts[1] += bool(view["attention"])
    needle = q.lower()
    matches = [
        v
        for v in every
        if (not site or v["site"] == site)
        and (not status or v["status"] == status)
        and (not needle or needle in v["station"].lower())
        and (not fault or fault in faults(v))
        and (not only_attention or v["attention"])
    ]
    matches.sort(key=lambda v: (not v["attention"], v["site"], v["station"]))
    pages = max(1, math.ceil(len(matches) / PER_PAGE))
    page = min(max(1, page), pages)
    return {
        "stations": matches[(page - 1) * PER_PAGE : page * PER_PAGE],
        "matched": len(matches),
        "total": len(every),
        "counts": {st: sum(1 for v in every if v["status"] == st) for st in views.STATUSES},
        "attention_count": sum(1 for v in every if v["attention"]),
        "sites": dict(sorted(sites.items())),
        "faults": dict(sorted(by_fault.items())),
        "page": page,
        "pages": pages,
    }
