"""Walks every screen of the real app in both languages and both modes, measuring each one.

Started by ``test_tour.py`` as a subprocess on Xvfb, once per orientation (the window size is
fixed at start). For Chinese and English, standard and elder mode, it goes through home, the PIN
pad, maintenance, identify, help, "are you still there?", choose, a materials notice, preview,
printing, rate and out-of-order with touches, as a resident (or a technician) would; at each one
it saves a screenshot and runs :func:`kiosk.ui.audit.audit` on the live widget tree. The findings go
to ``--report`` as JSON; the test asserts on them.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from app_start import kiosk_station
from journey_app import Journey

from flows.session import WARN_BEFORE_S

NOTICE = "food_licence_renewal_checklist"
CERTIFICATE = "social_insurance_certificate"


class Tour(Journey):
    interval_s = 0.0  # a step every frame: the waits poll, settle() counts frames

    def __init__(self, app: Any, station: Any, artifacts: Path, orientation: str, pin: str) -> None:
        super().__init__(app, artifacts, "zh", "tour")
        self.station = station
        self.orientation = orientation
        self.pin = pin
        self.visits: list[dict[str, Any]] = []
        self.lang_now = "zh"
        self.elder_now = False
        self.bars: list[dict[str, Any]] = []  # the top bar's controls, in every combination
        self.focus_shots: list[dict[str, Any]] = []  # the focus ring, where it was drawn
        self.drawing = True  # False: frames tick (layout, text, touches) but are not drawn

    def script(self) -> Iterator[None]:
        yield from self.wait_screen("idle")
        for lang in ("zh", "en"):
            for elder in (False, True):
                self.lang_now, self.elder_now = lang, elder
                yield from self.combination()
        self.ok = True

    # --- helpers -------------------------------------------------------------------------------

    def begin(self, _dt: float = 0.0) -> None:
        """Draws only the frames it photographs (as ``finder_app.py`` does): the measurements
        read the live widget tree, which every frame lays out whether drawn or not, and drawing
        a 1600 × 900 window on a software renderer at every one of the tour's thousands of
        frames was most of its time. A handler that returns True stops the window's own
        ``on_draw`` and ``on_flip``; :meth:`drawn` draws the frames before each screenshot."""
        from kivy.core.window import Window

        Window.bind(on_draw=lambda *_: not self.drawing, on_flip=lambda *_: not self.drawing)
        self.drawing = False
        super().begin(_dt)

    def drawn(self, n: int = 3) -> Iterator[None]:
        """``n`` frames drawn in full, so that the screen shows the state the tour is on."""
        self.drawing = True
        for _ in range(n):
            yield

    def settle(self) -> Iterator[None]:
        for _ in range(8):
            yield

    def set_mode(self) -> Iterator[None]:
        """Language and elder mode as a resident sets them, with the buttons of the top bar."""
        bar = self.top_bar()
        if self.app.vm.lang != self.lang_now:
            self.tap(bar.ids.lang_button)
            yield from self.wait(lambda: self.app.vm.lang == self.lang_now, 5, "language")
        if self.app.vm.elder != self.elder_now:
            self.tap(bar.ids.elder_button)
            yield from self.wait(lambda: self.app.vm.elder == self.elder_now, 5, "elder mode")

    def visit(self, name: str, root: Any = None) -> Iterator[None]:
        from kiosk.ui.audit import TECHNICIAN_SCREENS, audit, keys_audit

        yield from self.drawn()

        mode = "elder" if self.elder_now else "standard"
        label = f"{self.orientation}-{self.lang_now}-{mode}-{name}"
        found = audit(
            root if root is not None else self.screen(),
            self.app.theme,
            elder=self.app.vm.elder,
            font=self.station.font,
            name=label,
            page=self.app.manager.current not in TECHNICIAN_SCREENS or root is not None,
        )
        # usable without sight: every target reached by the keypad, named, ringed visibly
        found.problems += keys_audit(
            root if root is not None else self.screen(), self.app.theme, self.app.focus, name=label
        )
        if root is None:  # a screen: with the caption bar under it (a modal has its own)
            bar = audit(
                self.app.caption_bar,
                self.app.theme,
                elder=self.app.vm.elder,
                font=self.station.font,
                name=f"{label}-caption",
                page=False,
            )
            found.texts += bar.texts
            found.problems += bar.problems
        self.shot(label)
        self.drawing = False
        self.visits.append(
            {
                "name": name,
                "screen": self.app.manager.current,
                "lang": self.app.vm.lang,
                "elder": self.app.vm.elder,
                "orientation": self.orientation,
                "texts": found.texts,
                "targets": found.targets,
                "problems": found.problems,
                "shot": f"{label}.png",
            }
        )

    def focus_shot(self, name: str, steps: int = 1) -> Iterator[None]:
        """A screenshot with the focus ring on the page's ``steps``-th control (the keys' first
        stop on a new page is its first control below the top bar)."""
        mode = "elder" if self.elder_now else "standard"
        label = f"{self.orientation}-{self.lang_now}-{mode}-{name}-focus"
        focus = self.app.focus
        focus.clear()
        for _ in range(steps):
            focus.move(1, quiet=True)
        yield from self.settle()
        yield from self.drawn()
        self.shot(label)
        self.drawing = False
        self.focus_shots.append({"shot": f"{label}.png", "rect": list(focus.ring_rect)})
        focus.clear()
        yield from self.settle()

    def expect_ticker(self, lang: str) -> None:
        """The home screen's ticker speaks the language the screen is in, at once (issue 20
        point 9: it stayed in English after a session returned to Chinese)."""
        text = self.app.vm.attract_text
        chinese = any("\u4e00" <= c <= "\u9fff" for c in text.split("：")[0])
        if not text or chinese != (lang == "zh"):
            raise AssertionError(f"the ticker says {text!r} on a screen in {lang}")

    def bar_places(self) -> dict[str, list[int]]:
        """Where the top bar's controls are, in window pixels (they must never move)."""
        bar = self.top_bar()
        places = {}
        for key in ("lang_button", "elder_button", "louder_button", "help_button"):
            w = bar.ids[key]
            x, y = w.to_window(w.x, w.y)
            places[key] = [round(x), round(y), round(w.width), round(w.height)]
        return places

    # --- one language and mode -----------------------------------------------------------------

    def combination(self) -> Iterator[None]:
        runtime = self.station.runtime
        yield from self.wait_screen("idle", timeout=30)
        yield from self.set_mode()
        yield from self.settle()
        yield from self.visit("home")
        yield from self.focus_shot("home")
        self.expect_ticker(self.lang_now)
        self.bars.append(
            {"lang": self.lang_now, "elder": self.elder_now, "places": self.bar_places()}
        )

        # without an ID card first: the services that need one say so on their buttons
        self.tap(self.screen().ids.start_button)
        yield from self.wait_screen("identify")
        self.tap(self.screen().ids.no_card_button)
        yield from self.wait_screen("choose")
        yield from self.settle()
        yield from self.visit("choose-no-card")
        self.tap(self.bottom_bar().ids.cancel_button)
        yield from self.wait_screen("idle")
        yield from self.set_mode()  # home again: the station's language and mode are back
        yield from self.settle()

        self.tap(self.screen().ids.start_button)
        yield from self.wait_screen("identify")
        yield from self.visit("identify")
        self.tap(self.top_bar().ids.help_button)
        yield from self.wait(lambda: self.app.help_view.parent is not None, 5, "help")
        yield from self.visit("help", self.app.help_view)
        self.tap(self.app.help_view.ids.close_help)
        yield from self.wait(lambda: self.app.help_view.parent is None, 5, "help closed")

        # "are you still there?": a short timeout for this one state, armed by a touch
        timeouts = runtime.session._timeouts  # test harness only: real timeouts take minutes
        saved = timeouts["identify"]
        timeouts["identify"] = WARN_BEFORE_S + 1.0  # warned a second (elder: two) after the touch
        self.app.intent("touch")  # what the window posts for any touch: arms the new timeout
        yield from self.wait(lambda: self.app.still_there_view.parent is not None, 30, "warning")
        # warned: the session would end 15 s (elder: 30 s) later, and a visit's audits on a
        # loaded machine (two test workers) took longer; the warning stays while it is looked at
        session = runtime.session
        session._deadline = session._clock() + 300.0  # test harness only, like _timeouts
        yield from self.visit("still-there", self.app.still_there_view)
        timeouts["identify"] = saved
        self.tap(self.app.still_there_view.ids.extend_button)
        yield from self.wait(lambda: self.app.still_there_view.parent is None, 5, "extended")

        self.station.simulate("insert")
        yield from self.wait_screen("choose", timeout=30)
        yield from self.visit("choose")
        yield from self.focus_shot("choose", steps=2)
        yield from self.search()
        yield from self.find_service(NOTICE)
        yield from self.visit("choose-list")
        screen = self.screen()
        if screen.pages > 1:
            self.tap(screen.ids.next_page)
            yield from self.settle()
            yield from self.visit("choose-page-2")
        self.tap(self.service_button(NOTICE))
        yield from self.wait_screen("notice")
        yield from self.settle()
        yield from self.visit("notice")
        yield from self.notice_pages()
        self.tap(self.bottom_bar().ids.back_button)
        yield from self.wait_screen("choose")
        yield from self.find_service(CERTIFICATE)
        self.tap(self.service_button(CERTIFICATE))
        yield from self.wait_screen("preview")
        yield from self.wait(lambda: self.app.vm.preview_texture is not None, 20, "preview")
        yield from self.visit("preview")
        self.tap(self.screen().ids.picture_button)  # the page as it prints, at the panel's width
        yield from self.wait(lambda: self.screen().picture, 5, "the picture")
        yield from self.settle()
        yield from self.visit("preview-magnified")
        self.tap(self.screen().ids.picture_button)  # back to the reading view
        yield from self.wait(lambda: not self.screen().picture, 5, "the text")
        release = self.hold_printer()
        self.tap(self.screen().ids.print_button)
        yield from self.wait_screen("printing")
        yield from self.settle()
        yield from self.visit("printing")
        release.set()
        yield from self.wait_screen("rate", timeout=120)
        yield from self.visit("rate")
        yield from self.focus_shot("rate")
        self.tap(self.screen().ids.rate5)
        if self.elder_now:  # elder mode rates in two steps: the level, then optional reasons
            yield from self.wait(lambda: self.screen().level == 5, 5, "reasons step")
            yield from self.settle()
            yield from self.visit("rate-reasons")
            self.tap(self.screen().ids.send_button)
        yield from self.wait_screen("take_card")  # the card is still on the reader
        yield from self.settle()
        yield from self.visit("take-card")
        thanks = timeouts["thanks"]
        timeouts["thanks"] = 120.0  # held until the tour has looked, however slow the frames
        self.station.simulate("remove")
        yield from self.wait_screen("thanks")
        yield from self.settle()
        yield from self.visit("thanks")
        timeouts["thanks"] = thanks
        runtime.session._deadline = 0.0  # then over at once: the tour does not wait 5 s (10 s)
        yield from self.wait_screen("idle")
        self.expect_ticker(self.station.config.station.lang)  # back in the station's language

        yield from self.out_of_order()
        yield from self.maintenance()

    def notice_pages(self) -> Iterator[None]:
        """Every page of the notice, turned with its buttons; together they hold every line."""
        screen = self.screen()
        whole = [line for line in self.app.vm.notice_text.split("\n") if line.strip()]
        paged = [line for page in screen.pages for line in page.split("\n") if line.strip()]
        if paged != whole:
            raise AssertionError(f"{self.lang_now}: the notice's pages do not hold it all")
        for n in range(1, len(screen.pages)):
            self.tap(screen.ids.next_page)
            yield from self.settle()
            yield from self.visit(f"notice-page-{n + 1}")
        while screen.page > 0:
            self.tap(screen.ids.prev_page)
            yield from self.settle()

    def search(self) -> Iterator[None]:
        """The pinyin keypad, one letter typed, and the results it shows."""
        from flows.finder import SEARCH

        screen = self.screen()
        self.tap(self.service_button(SEARCH))
        yield from self.wait(lambda: screen.level == "keypad", 5, "the keypad")
        yield from self.visit("choose-keypad")
        key = next(k for k in reversed(screen.ids.keypad.children) if not k.disabled)
        self.tap(key)
        yield from self.settle()
        yield from self.visit("choose-keypad-typed")
        self.tap(screen.ids.results_button)
        yield from self.wait(lambda: screen.level.startswith("search:"), 5, "the results")
        yield from self.visit("choose-results")

    def hold_printer(self) -> threading.Event:
        """The A4 printer waits until the tour has seen the printing screen (it is quick here)."""
        printer = self.station.runtime.devices.a4_printer
        release = threading.Event()
        real = type(printer).print_pdf

        def held(*args: Any, **kw: Any) -> Any:
            release.wait(30)
            del printer.print_pdf  # back to the real method
            return real(printer, *args, **kw)

        printer.print_pdf = held
        return release

    def out_of_order(self) -> Iterator[None]:
        """Both printers report a fault until the tour has looked: the station is out of order.

        (The real out-of-paper path, through the printer simulator, is in test_journey.)
        """
        from flows.models import DeviceHealth, DeviceState

        runtime = self.station.runtime
        printers = (runtime.devices.a4_printer, runtime.devices.thermal_printer)
        for printer in printers:
            kind = "a4_printer" if printer is printers[0] else "thermal_printer"
            broken = DeviceHealth(printer.name, kind, DeviceState.FAULT, ("paper_out",))
            printer.health = lambda broken=broken: broken
        runtime._refresh_health.set()
        yield from self.wait_screen("out_of_order", timeout=10)
        yield from self.set_mode()
        yield from self.settle()
        yield from self.visit("out-of-order")
        for printer in printers:
            del printer.health
        runtime._refresh_health.set()
        yield from self.wait_screen("idle", timeout=30)

    def maintenance(self) -> Iterator[None]:
        """The technician's way in: five taps on the station name, a wrong PIN, the right one."""
        yield from self.set_mode()
        name = self.top_bar().ids.station_name
        for _ in range(5):
            self.tap(name)
            yield
        yield from self.wait_screen("unlock")
        yield from self.set_mode()
        yield from self.visit("unlock")
        keys = {w.digit: w for w in self.screen().walk() if getattr(w, "digit", "")}
        for digit in "0000":
            self.tap(keys[digit])
            yield
        self.tap(self.screen().ids.submit_button)
        yield from self.wait(lambda: self.app.vm.pin_problem, 5, "wrong PIN message")
        yield from self.visit("unlock-wrong-pin")
        for digit in self.pin:
            self.tap(keys[digit])
            yield
        self.tap(self.screen().ids.submit_button)
        yield from self.wait_screen("maintenance")
        yield from self.wait(lambda: bool(self.app.vm.maint_devices), 5, "report")
        self.tap(self.screen().ids.test_thermal)
        yield from self.wait(lambda: "printed" in self.app.vm.maint_last, 30, "test print")
        yield from self.visit("maintenance")
        self.tap(self.screen().ids.leave_button)
        yield from self.wait_screen("idle")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--artifacts", required=True)
    parser.add_argument("--orientation", required=True)
    parser.add_argument("--pin", required=True)
    parser.add_argument("--report", required=True)
    args = parser.parse_args()
    station = kiosk_station(args.config, uncapped=True)
    app = station.build_app()
    tour = Tour(app, station, Path(args.artifacts), args.orientation, args.pin)
    from kivy.clock import Clock

    Clock.schedule_once(tour.begin, 0.5)
    app.run()
    report = {"ok": tour.ok, "visits": tour.visits, "bars": tour.bars, "focus": tour.focus_shots}
    Path(args.report).write_text(json.dumps(report, indent=1))
    if not tour.ok:
        print(f"TOUR FAILED: {tour.error}", file=sys.stderr, flush=True)
    return 0 if tour.ok else 1


if __name__ == "__main__":
    sys.exit(main())
