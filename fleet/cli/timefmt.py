"""The zone the ``fleet`` commands print times in: the console's (:mod:`fleet.console.zone`).

The console's ``--timezone`` lives in its process, not in the database the commands read, so
they take the same setting from ``$FLEET_TIMEZONE`` (default ``Asia/Shanghai``, as the console's).
A zone the system does not know is a command-line mistake (exit status 2).
"""

from __future__ import annotations

import os
import sys

from fleet.console.zone import DEFAULT_TIMEZONE, LocalTime, ZoneError

ENV = "FLEET_TIMEZONE"


def zone_name() -> str:
    return os.environ.get(ENV) or DEFAULT_TIMEZONE


def local_time() -> LocalTime:
    try:
        return LocalTime(zone_name())
    except ZoneError as err:
        print(f"fleet: ${ENV}: {err}", file=sys.stderr)
        raise SystemExit(2) from err
