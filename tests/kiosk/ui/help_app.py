"""Runs the real kiosk app and asks for help with touches (used by test_help).

Started as a subprocess on the test's Xvfb display, like journey_app.py. Scenarios:

- ``reply``: a resident on the identify screen touches Help (``AT help``); the test, playing the
  technician on a real console, acknowledges the alert with an answer; this script waits for the
  answer on the screen, takes screenshots and closes the overlay.
- ``after_hours``: the station's clock says 22:00; the resident touches Help, reads that no one is
  on duty, and prints the hotline slip.
- ``no_call``: on duty, in elder mode, at a station without call audio: the overlay says no call
  is possible here, and the resident prints the hotline slip all the same.

Everything the kiosk says is printed as ``SPOKE <text>`` (the real voice still speaks it, into a
null sound device), so the test can check what the resident heard.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from app_start import kiosk_station
from journey_app import Journey


class Spoken:
    """The station's voice, with every text it is asked to say printed first."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def speak(self, text: str, *, lang: str, elder: bool = False) -> None:
        print(f"SPOKE {lang} {text}", flush=True)
        self._inner.speak(text, lang=lang, elder=elder)


class HelpRun(Journey):
    def script(self) -> Iterator[None]:
        scenarios = {"reply": self.reply, "after_hours": self.after_hours, "no_call": self.no_call}
        yield from scenarios[self.scenario]()

    def help_view(self) -> Any:
        return self.app.help_view

    def open_help(self) -> Iterator[None]:
        if self.lang != self.app.vm.lang:
            self.tap(self.top_bar().ids.lang_button)
            yield from self.wait(lambda: self.app.vm.lang == self.lang, 5, "language switch")
        self.tap(self.top_bar().ids.help_button)
        yield from self.wait(lambda: self.help_view().parent is not None, 5, "help overlay")

    def reply(self) -> Iterator[None]:
        yield from self.wait_screen("idle")
        self.tap(self.screen().ids.start_button)
        yield from self.wait_screen("identify")
        yield from self.open_help()
        self.shot(f"help-1-asked-{self.lang}")
        print("AT help", flush=True)
        yield from self.wait(lambda: bool(self.app.vm.help_reply), 60, "the technician's answer")
        print(f"SHOWN {self.help_view().ids.help_reply.text!r}", flush=True)
        self.shot(f"help-2-answered-{self.lang}")
        self.tap(self.help_view().ids.close_help)
        yield from self.wait(lambda: self.help_view().parent is None, 5, "overlay closed")
        print(f"AFTER_CLOSE {self.app.vm.help_reply!r}", flush=True)
        self.ok = True

    def after_hours(self) -> Iterator[None]:
        yield from self.wait_screen("idle")
        yield from self.open_help()
        yield from self.wait(lambda: self.app.vm.help_slip_offered, 5, "after-hours text")
        print(f"TITLE {self.help_view().ids.help_title.text!r}", flush=True)
        print(f"BODY {self.help_view().ids.help_body.text!r}", flush=True)
        print(f"HOTLINE {self.help_view().ids.help_hotline.text!r}", flush=True)
        self.shot(f"help-after-hours-1-{self.lang}")
        button = self.help_view().ids.help_slip_button
        self.tap(button)
        yield from self.wait(lambda: not self.app.vm.help_slip_enabled, 5, "slip printing")
        slip_done = ("help.slip_printed", "help.slip_failed")
        done_texts = {self.app.runtime_tr(k) for k in slip_done}
        yield from self.wait(lambda: button.text in done_texts, 30, "slip printed")
        print(f"SLIP {button.text!r}", flush=True)
        self.shot(f"help-after-hours-2-slip-{self.lang}")
        self.tap(button)  # a second touch prints nothing more
        for _ in range(10):
            yield
        self.ok = True

    def no_call(self) -> Iterator[None]:
        """On duty, at a station without call audio, in elder mode: the overlay says no call is
        possible here and offers the hotline slip."""
        yield from self.wait_screen("idle")
        self.tap(self.top_bar().ids.elder_button)
        yield from self.wait(lambda: self.app.vm.elder, 5, "elder mode")
        yield from self.open_help()
        yield from self.wait(lambda: self.app.vm.help_slip_offered, 5, "the slip offered")
        print(f"TITLE {self.help_view().ids.help_title.text!r}", flush=True)
        print(f"BODY {self.help_view().ids.help_body.text!r}", flush=True)
        button = self.help_view().ids.help_slip_button
        print(f"SLIP_SHOWN {button.opacity == 1 and button.width > 100}", flush=True)
        for _ in range(5):
            yield
        self.shot(f"help-no-call-elder-{self.lang}")
        self.tap(button)
        slip_done = ("help.slip_printed", "help.slip_failed")
        done_texts = {self.app.runtime_tr(k) for k in slip_done}
        yield from self.wait(lambda: button.text in done_texts, 30, "slip printed")
        print(f"SLIP {button.text!r}", flush=True)
        self.ok = True


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--artifacts", required=True)
    parser.add_argument("--lang", default="zh")
    parser.add_argument("--scenario", required=True)
    args = parser.parse_args()
    station = kiosk_station(args.config)
    runtime = station.runtime
    runtime.devices.speech = Spoken(runtime.devices.speech)
    if args.scenario == "after_hours":  # the demo station is staffed 08:30-17:30
        runtime.now = lambda: dt.datetime(2026, 12, 7, 22, 0)
    if args.scenario == "no_call":  # on duty; the test's configuration has no [call] devices
        runtime.now = lambda: dt.datetime(2026, 12, 7, 10, 0)
    app = station.build_app()
    app.runtime_tr = lambda key: runtime.tr(key, app.vm.lang)
    run = HelpRun(app, Path(args.artifacts), args.lang, args.scenario)
    from kivy.clock import Clock

    Clock.schedule_once(run.begin, 0.5)
    app.run()
    if not run.ok:
        print(f"HELP RUN FAILED: {run.error}", file=sys.stderr, flush=True)
    return 0 if run.ok else 1


if __name__ == "__main__":
    sys.exit(main())
