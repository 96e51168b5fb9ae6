"""Many stations of one site offline within a minute are one incident, not a thousand alerts.

A power cut or a broken uplink at a service hall takes every terminal there offline at once. The
sweep (:meth:`fleet.console.ingest.Ingest.sweep`) hands :func:`group` the stations offline long
enough to alert, with their site and since when; at a site where at least ``min_stations`` went
offline within ``window_s`` of each other, all of its offline stations become one alert,
``site_outage``, with the count, the earliest time and the first station names in its detail
(its active key is the site's, so it stays one whichever station stands for it). While it is
open, every station of that site that is offline is counted in it rather than alerted alone,
and offline alerts raised before it formed are folded into it. It is resolved when none of the
site's stations is offline any more; a station still offline then is alerted on its own at the
next sweep, as usual.
"""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from fleet.console.alerting import AlertDesk
from fleet.console.store import Alert, Store

KIND = "site_outage"
NAMES_KEPT = 20  # station names kept in the incident's detail; the count says how many in all


def key_of(site: str) -> str:
    return f"site:{site}:{KIND}"


@dataclass
class Outages:
    incidents: dict[str, list[tuple[int, str, float]]] = field(default_factory=dict)
    singles: list[tuple[int, float]] = field(default_factory=list)


def group(
    offline: list[tuple[int, str, str, float]],
    open_sites: set[str],
    *,
    min_stations: int,
    window_s: float,
) -> Outages:
    """``offline``: (station id, site, station, since). Sites with an open incident, or with
    ``min_stations`` gone within ``window_s`` of each other, become incidents (all of their
    offline stations); the other stations stay single."""
    by_site: dict[str, list[tuple[int, str, float]]] = collections.defaultdict(list)
    for station_id, site, station, since in offline:
        by_site[site].append((station_id, station, since))
    out = Outages()
    for site, members in by_site.items():
        members.sort(key=lambda m: m[2])
        if site in open_sites or _largest_burst(members, window_s) >= min_stations:
            out.incidents[site] = members
        else:
            out.singles += [(station_id, since) for station_id, _, since in members]
    return out


def _largest_burst(members: list[tuple[int, str, float]], window_s: float) -> int:
    """The most stations gone within ``window_s`` of each other (``members`` by time)."""
    best, start = 0, 0
    for end in range(len(members)):
        while members[end][2] - members[start][2] > window_s:
            start += 1
        best = max(best, end - start + 1)
    return best


def open_sites(store: Store) -> dict[str, Alert]:
    with store.session() as db:
        rows = db.scalars(select(Alert).where(Alert.kind == KIND, Alert.active_key.is_not(None)))
        found = {str(a.detail.get("site")): a for a in rows}
        db.expunge_all()
    return found


def upkeep(store: Store, alerts: AlertDesk, outages: Outages, known: dict[str, Alert]) -> None:
    """Raise new incidents, keep the open ones' counts, resolve those whose site is back, and
    fold the stations' own offline alerts into their incident."""
    now = time.time()
    for site, members in outages.incidents.items():
        detail: dict[str, Any] = {
            "site": site,
            "count": len(members),
            "since": members[0][2],
            "stations": [station for _, station, _ in members[:NAMES_KEPT]],
        }
        if site not in known:
            alerts.raise_alert(
                members[0][0], KIND, detail | {"peak": len(members)}, key=key_of(site)
            )
        else:
            with store.session() as db:
                row = db.get(Alert, known[site].id)
                if row is not None and row.detail.get("count") != len(members):
                    peak = max(int(row.detail.get("peak") or 0), len(members))
                    row.detail = detail | {"peak": peak}
                    row.last_at = now
        alerts.resolve_all({station_id for station_id, _, _ in members}, "offline")
    for site in known.keys() - outages.incidents.keys():
        alerts.resolve(0, KIND, key=key_of(site))
