"""Hours as stations keep them: windows with several periods a day, weekdays, the station's own
holiday calendar, all in the station's time zone.

A staffed window is open on its days (Monday to Friday unless the catalog says otherwise), in
each of its periods (``08:30-12:00`` and ``13:30-17:30``: a lunch break), except on the
calendar's holidays (unless it opens on holidays); a make-up working day (调休) counts as a
weekday. A service handled at a window issues queue tickets only while the window is open; when
it is closed the resident is told when it opens (:func:`next_opening`).

Pure: the caller passes the time. An aware time is turned into the station's zone; a naive one
is taken to be the station's time already (tests, and clocks that were set to it).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from flows.catalog import (
    WEEKDAYS,
    Calendar,
    Catalog,
    Output,
    Service,
    ServiceKind,
    Window,
    minutes,
    within,
)

SEARCH_DAYS = 40  # the longest closure looked through for the next opening (holidays run ~8)


def station_time(now: dt.datetime, catalog: Catalog) -> dt.datetime:
    """``now`` on the station's clock (its catalog's time zone), naive."""
    if now.tzinfo is None:
        return now
    return now.astimezone(catalog.station.zone).replace(tzinfo=None)


def working_day(window: Window, calendar: Calendar, day: dt.date) -> bool:
    if day in calendar.holidays:
        return window.holidays
    if day in calendar.workdays:
        return True
    return WEEKDAYS[day.weekday()] in window.days


def _periods(window: Window) -> list[tuple[int, int]]:
    return [(minutes(a), minutes(b)) for a, b in (h.split("-") for h in window.hours)]


def window_open(window: Window, calendar: Calendar, now: dt.datetime) -> bool:
    if not working_day(window, calendar, now.date()):
        return False
    minute = now.hour * 60 + now.minute
    return any(start <= minute < end for start, end in _periods(window))


def next_opening(window: Window, calendar: Calendar, now: dt.datetime) -> dt.datetime | None:
    """When the window next opens after ``now`` (station time); None if not within
    :data:`SEARCH_DAYS` (a window closed for good)."""
    minute = now.hour * 60 + now.minute
    for offset in range(SEARCH_DAYS + 1):
        day = now.date() + dt.timedelta(days=offset)
        if not working_day(window, calendar, day):
            continue
        for start, _ in _periods(window):
            if offset or start > minute:
                return dt.datetime.combine(day, dt.time(start // 60, start % 60))
    return None


def _daily_opening(hours: str, now: dt.datetime) -> dt.datetime:
    """The next start of a daily interval such as ``06:00-23:00`` after ``now``."""
    start = minutes(hours.split("-")[0])
    at = dt.datetime.combine(now.date(), dt.time(start // 60 % 24, start % 60))
    return at if at > now else at + dt.timedelta(days=1)


def is_ticket(service: Service) -> bool:
    """A queue ticket: printed on the thermal printer, neither a certificate nor a notice nor a
    掌上办 guide."""
    return (
        Output.A4 not in service.outputs
        and service.notice is None
        and service.kind is ServiceKind.STANDARD
    )


@dataclass(frozen=True, slots=True)
class Closure:
    """A service that cannot be had now because of the hours, and when it can."""

    reason: str  # translation key: unavailable.hours, unavailable.window_closed
    opens: dt.datetime | None  # station time; None: not within the search
    window: Window | None = None


def closure(service: Service, catalog: Catalog, now: dt.datetime) -> Closure | None:
    """Why ``service`` cannot be had at ``now`` because of hours, or None if it can.

    A notice can always be printed (it says the window's hours); a ticket only while its
    window is open; a service with ``hours`` (its provider's) only inside them."""
    now = station_time(now, catalog)
    if service.hours and not within(service.hours, now.hour * 60 + now.minute):
        return Closure("unavailable.hours", _daily_opening(service.hours, now))
    window = catalog.window(service.window)
    if window is not None and is_ticket(service) and not window_open(window, catalog.calendar, now):
        return Closure(
            "unavailable.window_closed", next_opening(window, catalog.calendar, now), window
        )
    return None


def closures(catalog: Catalog, now: dt.datetime) -> dict[str, Closure]:
    """Service code → its closure, for every enabled service closed at ``now``."""
    out = {}
    for service in catalog.enabled_services():
        found = closure(service, catalog, now)
        if found is not None:
            out[service.code] = found
    return out


@dataclass(frozen=True, slots=True)
class When:
    """A moment as a resident is told it: ``day`` is today, tomorrow or a date (``date``)."""

    day: str  # today | tomorrow | date
    date: dt.date
    time: str  # 08:30


def when(opens: dt.datetime, now: dt.datetime) -> When:
    """How to say ``opens`` (station time) to a resident at ``now`` (station time)."""
    days = (opens.date() - now.date()).days
    day = "today" if days == 0 else "tomorrow" if days == 1 else "date"
    return When(day, opens.date(), f"{opens:%H:%M}")
