"""The left-behind guard's shell part: how long a card has been left, and the console told.

The session (:mod:`flows.session`) asks for a card left on the reader at the end of a session
(the ``take_card`` screen, spoken and shown, until the card is taken). This watch measures how
long that lasts: after ``alert_after_s`` (``[station] card_left_alert_s`` of the kiosk's
configuration) the reader's health carries the reason ``card_left_behind``, which the agent
sends with the next health (it sends on change) and the console raises as an alert that
resolves itself when the card is taken. Nothing about the card or its holder is recorded: the
reason, the reader's name and the seconds waited, never a name or a number.

:meth:`seen` runs on the UI thread after every change; :meth:`decorate` on the health thread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("kiosk.shell.leftcard")

REASON = "card_left_behind"


class LeftCardWatch:
    def __init__(
        self, alert_after_s: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.alert_after_s = alert_after_s
        self.clock = clock
        self.device = "id_reader"  # the reader that last reported a card
        self._since: float | None = None  # set and cleared on the UI thread only

    def seen(self, screen: str) -> None:
        """The screen now shown: ``take_card`` starts the wait, anything else ends it."""
        if screen == "take_card":
            if self._since is None:
                self._since = self.clock()
                log.warning("a card was left on the reader %s", self.device)
        elif self._since is not None:
            log.warning("the card left on the reader was taken after %.0f s", self.left_s())
            self._since = None

    def left_s(self) -> float:
        since = self._since
        return 0.0 if since is None else self.clock() - since

    @property
    def alerting(self) -> bool:
        return self._since is not None and self.left_s() >= self.alert_after_s

    def decorate(self, reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The health records as written for the agent: the reader names the left card."""
        if not self.alerting:
            return reports
        out = []
        for record in reports:
            if record.get("device") == self.device:
                record = {**record, "reasons": [*record.get("reasons", []), REASON]}
                record["detail"] = {**record.get("detail", {}), "card_left_s": round(self.left_s())}
            out.append(record)
        return out
