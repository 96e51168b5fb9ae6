"""Runs the real kiosk app and walks one resident's journey with touches (used by test_journey).

Started as a subprocess on the test's Xvfb display, so that Kivy's one-app-per-process state never
leaks between tests. It prints ``AT <screen>`` lines on stdout; the test acts as the resident's
hands on the devices (placing and taking away the card on the simulated reader) when it reads
them. Exit code 0 means the journey completed; screenshots of every screen go to ``--artifacts``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from app_start import kiosk_station

from kiosk.ui.scripted import ScriptedRun


class Journey(ScriptedRun):
    interval_s = 0.1

    def __init__(self, app: Any, artifacts: Path, lang: str, scenario: str) -> None:
        super().__init__(app)
        self.artifacts = artifacts
        self.lang = lang
        self.scenario = scenario
        self.ok = False
        self.runtime: Any = None  # set by main: the captions are checked after every frame
        self._said = 0

    def begin(self, _dt: float = 0.0) -> None:
        if self.runtime is not None:
            shown = self.runtime.on_frame  # the app's own renderer, set when it started

            def frame_then_check(frame: Any) -> None:
                shown(frame)
                self.check_said()

            self.runtime.on_frame = frame_then_check
            self._said = max(0, len(self.runtime.captions.history) - 1)
        super().begin(_dt)

    def check_said(self) -> None:
        """Everything spoken is shown on the screen it was spoken on: after each frame, the
        newest line given to the voice must be the visible caption, on its screen. A line
        superseded before any frame (two in one batch) was cut off on the voice too; it is
        reported as such, and the test allows it only next to the line that replaced it."""
        history = list(self.runtime.captions.history)
        if len(history) <= self._said:
            return
        new, self._said = history[self._said :], len(history)
        for said in new[:-1]:
            print(f"SAID superseded {said.screen} {said.key}", flush=True)
        said = new[-1]
        modal = next((v for v in (self.app.help_view, self.app.still_there_view) if v.parent), None)
        bar = self.app.caption_bar
        if modal is not None:
            from kiosk.ui.widgets import CaptionBar

            bar = next(w for w in modal.walk() if isinstance(w, CaptionBar))
        visible = bar.ids.caption.text
        here = self.app.manager.current
        ok = visible == said.shown and here == said.screen and bool(said.shown)
        print(f"SAID {'shown' if ok else 'MISSING'} {said.screen} {said.key} on {here}", flush=True)

    # --- helpers -------------------------------------------------------------------------------

    def screen(self) -> Any:
        return self.app.manager.current_screen

    def tap(self, widget: Any) -> None:
        from kivy.tests.common import UnitTestTouch

        x, y = widget.to_window(*widget.center)
        touch = UnitTestTouch(x, y)
        touch.touch_down()
        touch.touch_up()

    def shot(self, name: str) -> None:
        from kivy.core.window import Window

        path = Path(Window.screenshot(name=str(self.artifacts / f"{name}.png")))
        path.rename(self.artifacts / f"{name}.png")

    def wait(self, cond: Callable[[], bool], timeout: float, what: str) -> Iterator[None]:
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {timeout:.0f}s for {what}")
            yield
        for _ in range(6):  # let a few frames render before a screenshot
            yield

    def wait_screen(self, name: str, timeout: float = 20.0) -> Iterator[None]:
        yield from self.wait(lambda: self.app.manager.current == name, timeout, f"screen {name}")
        print(f"AT {name}", flush=True)

    def service_button(self, code: str) -> Any:
        for child in self.screen().ids.grid.children:
            if getattr(child, "service_code", None) == code:
                return child
        raise LookupError(code)

    def find_service(self, code: str) -> Iterator[None]:
        """Reach the service's button as a resident would: back to the tiles, the tile of the
        list that holds it (turning the tiles' pages), then that list's pages."""
        from flows.finder import HOME, SEARCH, TOP

        screen = self.screen()
        while screen.level != HOME:
            self.tap(self.bottom_bar().ids.back_button)
            yield from self.frames(3)
        finder = screen.finder
        if not finder.flat:
            tile = next(
                t.code
                for t in finder.home
                if t.code not in (SEARCH, TOP) and any(i.code == code for i in finder.items(t.code))
            )
            yield from self.turn_to(tile)
            self.tap(self.service_button(tile))
            yield from self.frames(3)
        yield from self.turn_to(code)

    def turn_to(self, code: str) -> Iterator[None]:
        """Turn the pages of the choose screen's list until the button ``code`` shows."""
        screen = self.screen()
        for _ in range(int(screen.pages) + 1):
            if any(getattr(c, "service_code", None) == code for c in screen.ids.grid.children):
                return
            self.tap(screen.ids.next_page)
            yield from self.frames(3)
        raise LookupError(code)

    def frames(self, n: int) -> Iterator[None]:
        for _ in range(n):
            yield

    def bottom_bar(self) -> Any:
        from kiosk.ui.widgets import BottomBar

        return next(w for w in self.screen().walk() if isinstance(w, BottomBar))

    def top_bar(self) -> Any:
        return self.screen().children[0].children[-1]

    # --- the journey ---------------------------------------------------------------------------

    def script(self) -> Iterator[None]:
        yield from {
            "certificate": self.certificate,
            "notice": self.notice,
            "bundle": self.bundle,
            "out_of_order": self.out_of_order,
            "left_card": self.left_card,
            "guide": self.guide,
        }[self.scenario]()

    def notice(self) -> Iterator[None]:
        """A resident without an ID card takes a materials checklist home."""
        yield from self.wait_screen("idle")
        self.tap(self.screen().ids.start_button)
        yield from self.wait_screen("identify")
        self.tap(self.screen().ids.no_card_button)
        yield from self.wait_screen("choose")
        self.shot("notice-1-choose-no-card")
        yield from self.find_service("disability_certificate_checklist")
        self.tap(self.service_button("disability_certificate_checklist"))
        yield from self.wait_screen("notice")
        self.shot("notice-2-notice")
        self.tap(self.screen().ids.print_button)
        yield from self.wait_screen("rate", timeout=60)
        self.tap(self.screen().ids.skip_button)
        yield from self.wait_screen("thanks")
        self.shot("notice-3-thanks")
        yield from self.wait_screen("idle")
        self.ok = True

    def guide(self) -> Iterator[None]:
        """A resident without an ID card takes a 掌上办 guide home: the tax record on a phone."""
        yield from self.wait_screen("idle")
        self.tap(self.screen().ids.start_button)
        yield from self.wait_screen("identify")
        self.tap(self.screen().ids.no_card_button)
        yield from self.wait_screen("choose")
        yield from self.find_service("personal_tax_mobile_guide")
        self.shot("guide-1-choose")
        self.tap(self.service_button("personal_tax_mobile_guide"))
        yield from self.wait_screen("preview")
        yield from self.wait(lambda: self.app.vm.preview_ready, 15, "preview")
        self.shot("guide-2-preview")
        self.tap(self.screen().ids.print_button)
        yield from self.wait_screen("rate", timeout=60)
        self.tap(self.screen().ids.skip_button)
        yield from self.wait_screen("thanks")
        yield from self.wait_screen("idle")
        self.ok = True

    def bundle(self) -> Iterator[None]:
        """An elder in elder mode retires: three documents with one card read, one confirmation."""
        yield from self.wait_screen("idle")
        self.tap(self.top_bar().ids.elder_button)
        yield from self.wait(lambda: self.app.vm.elder, 5, "elder mode")
        self.shot("bundle-1-home-elder")
        self.tap(self.screen().ids.start_button)
        yield from self.wait_screen("identify")
        self.shot("bundle-2-identify-elder")
        yield from self.wait_screen("choose", timeout=30)
        self.shot("bundle-3-choose-elder")
        yield from self.find_service("retirement_bundle")
        self.tap(self.service_button("retirement_bundle"))
        yield from self.wait_screen("preview")
        yield from self.wait(lambda: self.app.vm.preview_ready, 15, "preview")
        self.shot("bundle-4-preview-elder")
        self.tap(self.screen().ids.print_button)
        yield from self.wait_screen("rate", timeout=120)
        self.shot("bundle-5-rate-elder")
        self.tap(self.screen().ids.rate5)  # a slip of the finger: back, and the level meant
        yield from self.wait(lambda: self.screen().level == 5, 5, "reasons step")
        self.tap(self.bottom_bar().ids.back_button)
        yield from self.wait(lambda: self.screen().level == 0, 5, "the levels again")
        self.tap(self.screen().ids.rate4)  # elder mode: the level, then the optional reasons
        yield from self.wait(lambda: self.screen().level == 4, 5, "reasons step")
        for widget in self.screen().walk():
            if getattr(widget, "tag", "") == "slow":
                self.tap(widget)
        yield from self.wait(lambda: self.app.vm.rate_tags == ["slow"], 5, "tag")
        self.shot("bundle-5-rate-reasons-elder")
        self.tap(self.screen().ids.send_button)
        yield from self.wait_screen("take_card")  # the elder left the card on the reader
        self.shot("bundle-6-take-card-elder")
        yield from self.wait_screen("thanks", timeout=30)
        self.shot("bundle-7-thanks-elder")
        yield from self.wait_screen("idle")
        self.ok = True

    def out_of_order(self) -> Iterator[None]:
        """Both printers fail: the terminal says it is out of service, then recovers."""
        yield from self.wait_screen("out_of_order", timeout=30)
        self.shot("out-of-order")
        yield from self.wait_screen("idle", timeout=30)
        self.shot("back-in-service")
        self.ok = True

    def certificate(self) -> Iterator[None]:
        suffix = f"-{self.lang}"
        yield from self.wait_screen("idle")
        if self.lang != self.app.vm.lang:
            self.tap(self.top_bar().ids.lang_button)
            yield from self.wait(lambda: self.app.vm.lang == self.lang, 5, "language switch")
        self.shot(f"01-home{suffix}")
        self.tap(self.screen().ids.start_button)
        yield from self.wait_screen("identify")
        self.shot(f"02-identify{suffix}")
        yield from self.wait_screen("choose", timeout=30)
        self.shot(f"03-choose{suffix}")
        yield from self.find_service("social_insurance_certificate")
        self.tap(self.service_button("social_insurance_certificate"))
        yield from self.wait_screen("preview")
        yield from self.wait(lambda: self.app.vm.preview_texture is not None, 10, "preview")
        self.shot(f"04-preview{suffix}")
        self.tap(self.screen().ids.print_button)
        yield from self.wait_screen("printing")
        self.shot(f"05-printing{suffix}")
        yield from self.wait_screen("rate", timeout=120)
        self.shot(f"06-rate{suffix}")
        self.tap(self.screen().ids.rate5)
        yield from self.wait_screen("thanks")  # the card was taken while rating
        self.shot(f"07-thanks{suffix}")
        yield from self.wait_screen("idle")
        self.shot(f"08-home-again{suffix}")
        self.ok = True

    def left_card(self) -> Iterator[None]:
        """A resident leaves the card on the reader; the next one's card is read (issue 20)."""
        suffix = f"-{self.lang}"
        yield from self.wait_screen("idle")
        if self.lang != self.app.vm.lang:
            self.tap(self.top_bar().ids.lang_button)
            yield from self.wait(lambda: self.app.vm.lang == self.lang, 5, "language switch")
        self.tap(self.screen().ids.start_button)
        yield from self.wait_screen("identify")
        yield from self.wait_screen("choose", timeout=30)
        yield from self.find_service("social_insurance_certificate")
        self.tap(self.service_button("social_insurance_certificate"))
        yield from self.wait_screen("preview")
        yield from self.wait(lambda: self.app.vm.preview_ready, 15, "preview")
        self.tap(self.screen().ids.print_button)
        yield from self.wait_screen("rate", timeout=120)
        self.tap(self.screen().ids.rate5)
        yield from self.wait_screen("take_card")  # the test waits for the console's alert
        self.shot(f"left-1-take-card{suffix}")
        yield from self.wait_screen("thanks", timeout=90)  # then takes the card away
        self.shot(f"left-2-thanks{suffix}")
        yield from self.wait_screen("idle")
        print("AT next-resident", flush=True)  # the next resident places a card first
        yield from self.wait(lambda: self.app.vm.card_on_reader, 20, "the card on the reader")
        self.shot(f"left-3-home-with-card{suffix}")
        self.tap(self.screen().ids.start_button)
        yield from self.wait_screen("identify")
        yield from self.wait_screen("choose", timeout=30)  # read without being placed again
        self.shot(f"left-4-next-resident-read{suffix}")
        self.tap(self.bottom_cancel())
        yield from self.wait_screen("take_card")
        yield from self.wait_screen("idle", timeout=30)
        self.ok = True

    def bottom_cancel(self) -> Any:
        from kiosk.ui.widgets import BottomBar

        bar = next(w for w in self.screen().walk() if isinstance(w, BottomBar))
        return bar.ids.cancel_button


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--artifacts", required=True)
    parser.add_argument("--lang", default="zh")
    parser.add_argument("--scenario", default="certificate")
    args = parser.parse_args()
    station = kiosk_station(args.config)
    app = station.build_app()
    journey = Journey(app, Path(args.artifacts), args.lang, args.scenario)
    journey.runtime = station.runtime
    from kivy.clock import Clock

    Clock.schedule_once(journey.begin, 0.5)
    app.run()
    if not journey.ok:
        print(f"JOURNEY FAILED: {journey.error}", file=sys.stderr, flush=True)
    return 0 if journey.ok else 1


if __name__ == "__main__":
    sys.exit(main())
