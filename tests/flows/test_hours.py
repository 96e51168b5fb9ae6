"""Hours as stations keep them (flows.hours): periods, weekdays, holidays, the station's zone."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest

from flows.catalog import CatalogError, parse_catalog
from flows.hours import closure, next_opening, station_time, when, window_open
from tests.flows.bundle_catalog import demo_table

TABLE = demo_table()
CATALOG = parse_catalog(TABLE)
TICKET = CATALOG.service("queue_ticket")  # window_1: A, 08:30-12:00 and 13:30-17:30, Mon-Fri
WINDOW = CATALOG.windows[0]


def test_a_catalog_without_windows_or_calendar_still_loads() -> None:
    old = copy.deepcopy(TABLE)
    del old["windows"], old["calendar"], old["station"]["timezone"]
    for service in old["services"]:
        service.pop("window", None)
    catalog = parse_catalog(old)
    assert catalog.windows == [] and catalog.station.timezone == "Asia/Shanghai"
    assert closure(catalog.service("queue_ticket"), catalog, dt.datetime(2026, 12, 5, 3)) is None


@pytest.mark.parametrize(
    ("at", "is_open", "opens"),
    [
        (dt.datetime(2026, 12, 7, 6, 13), False, dt.datetime(2026, 12, 7, 8, 30)),  # Monday dawn
        (dt.datetime(2026, 12, 7, 9, 0), True, None),
        (dt.datetime(2026, 12, 7, 12, 30), False, dt.datetime(2026, 12, 7, 13, 30)),  # lunch
        (dt.datetime(2026, 12, 7, 17, 30), False, dt.datetime(2026, 12, 8, 8, 30)),
        (dt.datetime(2026, 12, 5, 10, 0), False, dt.datetime(2026, 12, 7, 8, 30)),  # Saturday
        (dt.datetime(2026, 10, 1, 10, 0), False, dt.datetime(2026, 10, 8, 8, 30)),  # holidays
        (dt.datetime(2026, 10, 10, 10, 0), True, None),  # a Saturday worked instead (调休)
    ],
)
def test_a_window_opens_by_its_periods_days_and_the_calendar(
    at: dt.datetime, is_open: bool, opens: dt.datetime | None
) -> None:
    assert window_open(WINDOW, CATALOG.calendar, at) is is_open
    found = closure(TICKET, CATALOG, at)
    if is_open:
        assert found is None
    else:
        assert found is not None and found.reason == "unavailable.window_closed"
        assert found.opens == opens == next_opening(WINDOW, CATALOG.calendar, at)


def test_notices_are_printed_at_any_hour_and_a_providers_hours_say_when_they_return() -> None:
    night = dt.datetime(2026, 12, 5, 2, 0)
    assert closure(CATALOG.service("disability_certificate_checklist"), CATALOG, night) is None
    tax = closure(CATALOG.service("personal_tax_record"), CATALOG, night)
    assert tax is not None and tax.opens == dt.datetime(2026, 12, 5, 6, 0)


def test_times_are_the_stations_not_the_machines() -> None:
    utc = dt.datetime(2026, 12, 7, 0, 30, tzinfo=dt.UTC)  # 08:30 in Shanghai
    assert station_time(utc, CATALOG) == dt.datetime(2026, 12, 7, 8, 30)
    assert closure(TICKET, CATALOG, utc) is None
    # 01:00 on the machine's UTC clock would be closed; it is 09:00 at the station
    assert closure(TICKET, CATALOG, dt.datetime(2026, 12, 7, 1, 0, tzinfo=dt.UTC)) is None
    sunday_night = dt.datetime(2026, 12, 6, 23, 59, tzinfo=dt.UTC)  # Monday 07:59 there
    assert closure(TICKET, CATALOG, sunday_night).opens == dt.datetime(2026, 12, 7, 8, 30)  # type: ignore[union-attr]
    assert when(dt.datetime(2026, 12, 8, 8, 30), dt.datetime(2026, 12, 7, 18)).day == "tomorrow"


def _broken(change: dict[str, Any]) -> str:
    data = copy.deepcopy(TABLE)
    for key, value in change.items():
        if key == "window":
            data["windows"][0].update(value)
        elif key == "timezone":
            data["station"]["timezone"] = value
        else:
            data[key] = value
    with pytest.raises(CatalogError) as err:
        parse_catalog(data)
    return str(err.value)


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"window": {"hours": ["13:30-17:30", "08:30-12:00"]}}, "in order"),
        ({"window": {"hours": ["12:00-08:30"]}}, "starts before it ends"),
        ({"window": {"prefix": "AB"}}, "pattern"),
        ({"window": {"prefix": "C"}}, "window prefixes must be unique"),
        ({"window": {"days": ["someday"]}}, "days"),
        ({"window": {"hours": ["08:00-09:00"] * 5}}, "at most 4"),
        ({"calendar": {"holidays": ["2026-10-10"], "workdays": ["2026-10-10"]}}, "holiday"),
        ({"timezone": "Mars/Olympus"}, "not a known time zone"),
    ],
)
def test_hours_are_validated_strictly(change: dict[str, Any], said: str) -> None:
    assert said in _broken(change)


def test_a_service_naming_an_unknown_window_is_refused() -> None:
    data = copy.deepcopy(TABLE)
    data["services"][-1]["window"] = "window_9"
    with pytest.raises(CatalogError, match="window_9"):
        parse_catalog(data)
