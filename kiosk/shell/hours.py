"""Hours on the choose screen: services closed by their hours, with when they open.

The availability rules (:mod:`flows.availability`) say what cannot be served now; this adds the
windows' hours (:mod:`flows.hours`: periods, weekdays, the station's holidays, its time zone)
and, for every service closed by hours, when it opens, as parameters in no language (the day
as ``today``/``tomorrow``/``date``, the date, the time) that the screen words in the resident's
language (:func:`kiosk.present.reason_text`).
"""

from __future__ import annotations

import datetime as dt

from flows.catalog import Catalog
from flows.hours import closures, station_time, when

OPENS = {"unavailable.hours": "unavailable.hours_opens"}
OPENS["unavailable.window_closed"] = "unavailable.window_opens"


def opening_hours(
    unavailable: dict[str, str], catalog: Catalog, now: dt.datetime
) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """``unavailable`` with the services closed by hours added (a device or provider problem
    named already stays the reason), and the parameters of when each opens."""
    now = station_time(now, catalog)
    reasons = dict(unavailable)
    params: dict[str, dict[str, str]] = {}
    for code, closed in closures(catalog, now).items():
        if reasons.get(code, "unavailable.hours") != "unavailable.hours":
            continue  # a fault is the reason to give: it does not open at a known time
        reasons[code] = closed.reason
        if closed.opens is not None:
            moment = when(closed.opens, now)
            reasons[code] = OPENS[closed.reason]
            params[code] = {
                "day": moment.day,
                "date": moment.date.isoformat(),
                "time": moment.time,
            }
    return reasons, params
