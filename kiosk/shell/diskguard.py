"""What the terminal does when its disk is nearly full: quieter logs, the journal kept, an alert.

:meth:`DiskGuard.check` is meant for a health loop (every minute or so). It measures the free
space of the filesystem holding the state directory and moves between three levels:

- ``ok``: nothing to do;
- ``low`` (below ``low_mib``): non-essential logging stops: the chatty loggers (wire logs, drivers,
  Kivy) are raised to WARNING, so only problems are written; the SQLite journal (transactions,
  ratings, the outbox) is untouched, it is what must survive; an alert ``disk_low`` goes to the
  outbox, so the centre hears of it;
- ``critical`` (below ``critical_mib``): the chatty loggers go to ERROR, and a second
  ``disk_low`` alert with ``level: critical`` is queued.

Back above ``resume_mib`` (higher than ``low_mib``, so a disk hovering at the limit does not flap)
the levels are restored and ``disk_ok`` is queued. An alert is queued on each change of level,
never on every check. If an alert cannot be written (the disk is that full), it is logged and
tried again at the next check; a later alert never replaces it, so the centre hears both that
the disk filled up and that it recovered.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

log = logging.getLogger("kiosk.shell.diskguard")

Level = Literal["ok", "low", "critical"]
MIB = 1024 * 1024

CHATTY_LOGGERS: tuple[str, ...] = (
    "kiosk.wire",  # byte-level device logs
    "kiosk.drivers",
    "kiosk.agent",
    "kiosk.shell.printing",
    "kiosk.i18n",
    "kivy",
)


class AlertSink(Protocol):
    """What :class:`statedir.journal.Journal` offers for this: ``alert(kind, detail)``."""

    def alert(self, kind: str, detail: dict[str, Any]) -> str: ...


@dataclass(frozen=True)
class DiskPolicy:
    low_mib: int = 500
    critical_mib: int = 150
    resume_mib: int = 700
    chatty_loggers: Sequence[str] = CHATTY_LOGGERS

    def __post_init__(self) -> None:
        if not 0 <= self.critical_mib <= self.low_mib <= self.resume_mib:
            raise ValueError("need critical_mib <= low_mib <= resume_mib")


@dataclass(frozen=True)
class DiskStatus:
    level: Level
    free_mib: int
    total_mib: int
    changed: bool
    alert_pending: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"level": self.level, "free_mib": self.free_mib, "total_mib": self.total_mib}


def _usage(path: Path) -> tuple[int, int]:
    usage = shutil.disk_usage(path)
    return usage.free, usage.total


@dataclass
class DiskGuard:
    path: Path
    alerts: AlertSink
    policy: DiskPolicy = DiskPolicy()
    usage: Callable[[Path], tuple[int, int]] = _usage
    level: Level = "ok"
    _saved_levels: dict[str, int] = field(default_factory=dict)
    _unsent: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def check(self) -> DiskStatus:
        """Measure, act on a change of level, return what was found. Never raises on a full disk."""
        try:
            free, total = self.usage(self.path)
        except OSError as err:
            log.error("cannot measure free space of %s: %s", self.path, err)
            return DiskStatus(self.level, -1, -1, False, bool(self._unsent))
        free_mib, total_mib = free // MIB, total // MIB
        new = self._level(free_mib)
        changed = new != self.level
        if changed:
            old, self.level = self.level, new
            self._apply(new)
            detail = {
                "level": new,
                "previous": old,
                "free_mib": free_mib,
                "total_mib": total_mib,
                "path": str(self.path),
                "low_mib": self.policy.low_mib,
                "critical_mib": self.policy.critical_mib,
            }
            if new == "ok":
                log.warning("disk space back: %d MiB free; logging restored", free_mib)
                self._unsent.append(("disk_ok", detail))
            else:
                log.error(
                    "disk nearly full: %d MiB free of %d (%s); non-essential logging stopped",
                    free_mib,
                    total_mib,
                    new,
                )
                self._unsent.append(("disk_low", detail))
        self._send()
        return DiskStatus(new, free_mib, total_mib, changed, bool(self._unsent))

    def _level(self, free_mib: int) -> Level:
        p = self.policy
        if free_mib < p.critical_mib:
            return "critical"
        if free_mib < p.low_mib:
            return "low"
        if self.level != "ok" and free_mib < p.resume_mib:
            return "low"  # hysteresis: stay quiet until well clear of the limit
        return "ok"

    def _apply(self, level: Level) -> None:
        if level == "ok":
            for name, saved in self._saved_levels.items():
                logging.getLogger(name).setLevel(saved)
            self._saved_levels.clear()
            return
        quiet = logging.ERROR if level == "critical" else logging.WARNING
        for name in self.policy.chatty_loggers:
            logger = logging.getLogger(name)
            self._saved_levels.setdefault(name, logger.level)
            logger.setLevel(quiet)

    def _send(self) -> None:
        """Queue the alerts not yet queued, oldest first (an unsent one is never replaced)."""
        while self._unsent:
            kind, detail = self._unsent[0]
            try:
                self.alerts.alert(kind, detail)
            except Exception as err:  # sqlite3.OperationalError "database or disk is full", ...
                log.error("alert %s could not be queued (%s); trying again later", kind, err)
                return
            self._unsent.pop(0)
