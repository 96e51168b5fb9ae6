"""Uptime per station: the share of a period in which the console heard from the station.

Definition. The period is cut into slots of :data:`SLOT_S` seconds (longer for a station whose
heartbeat interval is longer: one interval). A slot counts as **up** when the console stored at
least one health sample of the station in it (``health_samples``: one row per heartbeat, stamped
with the console's clock when it arrived, so station clocks do not matter). A station's uptime
is its up slots divided by the slots it was *expected* in: from the later of the period's start
and the station's first contact with the console (``first_seen``) to now. A station enrolled in
the middle of the period is not counted down for the days before it existed.

What this means in practice: with the 60 s heartbeat there are five beats in a slot, so a
station is down for a slot only when it missed all five (a connection lost for under ~5 minutes
may not show); a station online but out of order (its reader broken) is *up* here: uptime
measures presence, faults are on the alert and fleet pages. The slot is the same for the whole
period at the station's current heartbeat interval.

Computed in one grouped query (count of distinct slots per station), the same on SQLite and
PostgreSQL: ``CAST(ts / slot AS INTEGER)`` truncates on one and rounds on the other, which moves
every slot boundary by half a slot and changes no count by more than one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import Integer, case, cast, func, select
from sqlalchemy.orm import Session

from fleet.console.store import HealthSample, Station

SLOT_S = 300.0


@dataclass(frozen=True)
class Uptime:
    station: str  # "site/station"
    up_slots: int
    expected_slots: int

    @property
    def percent(self) -> float:
        if self.expected_slots <= 0:
            return 0.0
        return min(100.0, 100.0 * self.up_slots / self.expected_slots)


def slot_of(interval_s: float) -> float:
    return max(SLOT_S, float(interval_s or 0.0))


def expected(since: float, now: float, first_seen: float, slot: float) -> int:
    start = max(since, first_seen or since)
    return max(0, math.ceil((now - start) / slot)) if now > start else 0


def compute(db: Session, since: float, now: float, *, site: str = "") -> list[Uptime]:
    """Every station's uptime over ``since``..``now``, lowest first (stations never expected in
    the period, first heard after ``now``, are left out)."""
    slot = case((Station.interval_s > SLOT_S, Station.interval_s), else_=SLOT_S)
    counted = (
        select(
            HealthSample.station_id,
            func.count(func.distinct(cast(HealthSample.ts / slot, Integer))),
        )
        .join(Station, Station.id == HealthSample.station_id)
        .where(HealthSample.ts >= since, HealthSample.ts <= now)
        .group_by(HealthSample.station_id)
    )
    if site:
        counted = counted.where(Station.site == site)
    up: dict[int, int] = {int(sid): int(n) for sid, n in db.execute(counted).all()}
    stations = select(
        Station.id, Station.site, Station.station, Station.interval_s, Station.first_seen
    )
    if site:
        stations = stations.where(Station.site == site)
    out = []
    for sid, row_site, name, interval, first_seen in db.execute(stations).all():
        want = expected(since, now, first_seen, slot_of(interval))
        if want:
            out.append(Uptime(f"{row_site}/{name}", min(int(up.get(sid, 0)), want), want))
    return sorted(out, key=lambda u: (u.percent, u.station))
