"""Driving the running app with a script, one step per clock tick: the resident journeys and
the screen tour of the tests, and the UI benchmark's sessions. The script is a generator; each
``yield`` gives the app a tick to draw and to handle what the step did."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any


class ScriptedRun:
    """Runs :meth:`script` inside ``app`` from :meth:`begin` on; stops the app when the script
    ends or fails (``error`` then says how)."""

    interval_s = 0.0  # between steps; 0: every frame

    def __init__(self, app: Any) -> None:
        self.app = app
        self.error = ""
        self._steps: Iterator[None] | None = None

    def script(self) -> Iterator[None]:
        raise NotImplementedError

    def begin(self, _dt: float = 0.0) -> None:
        from kivy.clock import Clock

        self._steps = self.script()
        Clock.schedule_interval(self.step, self.interval_s)

    def step(self, _dt: float) -> bool:
        assert self._steps is not None
        try:
            next(self._steps)
        except StopIteration:
            self.app.stop()
            return False
        except Exception as err:
            self.error = f"{type(err).__name__}: {err}"
            logging.getLogger("kiosk.ui.scripted").exception("the script failed")
            self.app.stop()
            return False
        return True
