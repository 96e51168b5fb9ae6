"""Times as the people at the stations read them: one console time zone, named on every time.

The stations are in China, their duty hours are local hours, and a technician reads "21:03" as
the stations' clock says it; a console host running in UTC must not move every time by 8 h. So
the console has **one** time zone setting (``Settings.timezone``, ``fleet console --timezone``,
default :data:`DEFAULT_TIMEZONE`; ``--duty-timezone`` is the same setting under its old name),
used for duty hours, for every time rendered on pages (the ``when`` filter), for the days that
statistics count in, and by the ``fleet`` commands that print times (``$FLEET_TIMEZONE``, same
default). The host's own zone (``TZ``, ``/etc/localtime``) is never used.

Every absolute time shown carries its UTC offset: ``2026-12-05 21:03:07 +08:00``. An offset and
not an abbreviation, because "CST" is China Standard Time and US Central Time alike; pages that
show many times name the zone itself once (``Asia/Shanghai``, :attr:`LocalTime.label`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_TIMEZONE = "Asia/Shanghai"
NO_TIME = "—"


class ZoneError(ValueError):
    """A time zone name the system's tz database does not know."""


def load(name: str) -> ZoneInfo:
    """The zone called ``name`` (an IANA name such as ``Asia/Shanghai`` or ``UTC``)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ZoneError(
            f"unknown time zone {name!r} (an IANA name such as Asia/Shanghai or UTC)"
        ) from err


@dataclass(frozen=True)
class LocalTime:
    """Unix times rendered in one named zone (the console's)."""

    name: str = DEFAULT_TIMEZONE
    zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "zone", load(self.name))

    def at(self, ts: float) -> dt.datetime:
        return dt.datetime.fromtimestamp(float(ts), self.zone)

    def offset(self, ts: float | None = None) -> str:
        """``+08:00`` (at ``ts``, or now: a zone with summer time has two)."""
        moment = self.at(ts) if ts is not None else dt.datetime.now(self.zone)
        text = moment.isoformat()
        return text[-6:] if text[-6] in "+-" else "+00:00"

    @property
    def label(self) -> str:
        """``Asia/Shanghai (UTC+08:00)``: the zone named once on a page."""
        return f"{self.name} (UTC{self.offset()})"

    def when(self, ts: float | None) -> str:
        """``2026-12-05 21:03:07 +08:00``; ``—`` for no time (None or 0)."""
        if not ts:
            return NO_TIME
        moment = self.at(ts)
        return f"{moment:%Y-%m-%d %H:%M:%S} {self.offset(ts)}"

    def minute(self, ts: float | None) -> str:
        """``2026-12-05 21:03 +08:00`` (tables in a terminal)."""
        if not ts:
            return NO_TIME
        moment = self.at(ts)
        return f"{moment:%Y-%m-%d %H:%M} {self.offset(ts)}"

    def day(self, ts: float) -> str:
        """The calendar day of ``ts`` in this zone, ``2026-12-05``."""
        return self.at(ts).strftime("%Y-%m-%d")

    def day_start(self, day: dt.date) -> float:
        """The unix time at which ``day`` begins in this zone."""
        return dt.datetime(day.year, day.month, day.day, tzinfo=self.zone).timestamp()

    def days_back(self, days: int, now: float) -> tuple[float, list[str]]:
        """The start of a window of ``days`` whole days ending with today (in this zone), and
        those days in order: ``days=1`` is today since midnight."""
        today = self.at(now).date()
        first = today - dt.timedelta(days=days - 1)
        listed = [(first + dt.timedelta(days=i)).isoformat() for i in range(days)]
        return self.day_start(first), listed
