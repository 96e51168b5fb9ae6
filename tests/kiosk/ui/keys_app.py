"""Runs the real kiosk app and walks resident journeys with the keypad only (used by test_keys).

The keys are real X key events: this process is also an X client that presses them through
XTEST on the Xvfb display (as a USB keypad's keys reach X), and never touches the screen. A
resident who cannot see chooses by what is said: the script presses down until the control it
wants is the one in focus, then select. After every key it records what the voice was given
(the captions' history, the line given to the speech port), and whether it is the focused
control's label, role and position as ``focus.said`` words them. The ID card is placed and taken
with the simulator's hands (``station.simulate``), as in the other journeys. The report (JSON)
holds every key press and the line said after it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from app_start import kiosk_station
from journey_app import Journey

CERTIFICATE = "social_insurance_certificate"
NOTICE = "disability_certificate_checklist"
KEYSYMS = {
    "up": "Up",
    "down": "Down",
    "select": "Return",
    "back": "BackSpace",
    "help": "F1",
    "volume_up": "KP_Add",
    "volume_down": "KP_Subtract",
}
MAX_PRESSES = 80  # down presses to find one control: more means it cannot be reached


class KeyJourney(Journey):
    interval_s = 0.0

    def __init__(self, app: Any, station: Any, artifacts: Path, display: str) -> None:
        super().__init__(app, artifacts, "zh", "keys")
        self.station = station
        self.runtime = station.runtime
        self.display_name = display
        self.presses: list[dict[str, Any]] = []
        self.documents: list[dict[str, Any]] = []  # the preview's pages, and what each key said
        self.handled = 0  # keys the app has handled (counted by a wrapper around focus.key)
        self._x: Any = None
        self.drawing = False  # frames tick (layout, keys, speech) but are not drawn
        self.pumps = 0  # the runtime's pumps so far (each handles the intents posted before)

    # --- the keypad --------------------------------------------------------------------------

    def begin(self, _dt: float = 0.0) -> None:
        from Xlib import X, display

        focus_key = self.app.focus.key

        def counted(code: int) -> bool:
            handled = bool(focus_key(code))
            self.handled += handled
            return handled

        self.app.focus.key = counted
        pump = self.runtime.pump  # called by the app's clock, 30 times a second

        def counted_pump() -> Any:
            self.pumps += 1
            return pump()

        self.runtime.pump = counted_pump
        # draws only the frames it photographs (as finder_app.py and tour_app.py do): what is
        # said and focused is read from the app, and drawing 1920 x 1080 on a software renderer
        # after every key was most of the walk's time; a handler that returns True stops the
        # window's own on_draw and on_flip
        from kivy.core.window import Window

        Window.bind(on_draw=lambda *_: not self.drawing, on_flip=lambda *_: not self.drawing)
        self._x = display.Display(self.display_name)
        windows = self._x.screen().root.query_tree().children
        window = max(windows, key=lambda w: w.get_geometry().width * w.get_geometry().height)
        window.set_input_focus(X.RevertToParent, X.CurrentTime)
        self._x.sync()
        super().begin(_dt)

    def photo(self, name: str) -> Iterator[None]:
        """A screenshot of the screen as it is, after frames that are drawn."""
        self.drawing = True
        for _ in range(3):
            yield
        self.shot(name)
        self.drawing = False

    def press(self, key: str) -> Iterator[None]:
        """Press and release one key through XTEST; wait until the app has handled it and the
        runtime has acted on what it asked for."""
        from Xlib import XK, X
        from Xlib.ext import xtest

        before, said = self.handled, len(self.runtime.captions.history)
        code = self._x.keysym_to_keycode(XK.string_to_keysym(KEYSYMS[key]))
        xtest.fake_input(self._x, X.KeyPress, code)
        xtest.fake_input(self._x, X.KeyRelease, code)
        self._x.sync()
        deadline = time.monotonic() + 10
        while self.handled == before:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the app never saw the {key} key")
            yield
        pumped = self.pumps
        while self.pumps < pumped + 2:  # the runtime pumps the intent on its next tick
            yield
        for _ in range(3):  # and the view it rendered is laid out
            yield
        self.record(key, said)

    def record(self, key: str, said_before: int) -> None:
        from kiosk.ui.focus import field_of, label_of, role_of

        history = list(self.runtime.captions.history)[said_before:]
        said = history[-1] if history else None
        entry: dict[str, Any] = {
            "key": key,
            "screen": self.app.manager.current,
            "lang": self.app.vm.lang,
            "said_key": said.key if said else "",
            "said": said.shown if said else "",
            "spoken": said.spoken if said else "",
        }
        widget = self.app.focus.focused
        if key in ("up", "down") and widget is not None:
            controls = self.app.focus.controls()
            lang = self.app.vm.lang
            label, value = field_of(widget)
            if label or value:  # a field of the document: never the name or number aloud
                view = self.runtime.session.view
                for secret, words in (
                    (view.masked_id_number, "focus.withheld_id"),
                    (view.masked_name, "focus.withheld_name"),
                ):
                    if secret:
                        label = label.replace(secret, self.runtime.tr(words, lang))
                        value = value.replace(secret, self.runtime.tr(words, lang))
                entry["field"] = [label, value]
            expected = self.runtime.tr(
                "focus.field" if label else "focus.text" if value else "focus.said",
                lang,
                role=self.runtime.tr(role_of(widget), lang),
                label=label or label_of(widget),
                value=value,
                n=str(controls.index(widget) + 1),
                total=str(len(controls)),
            )
            entry["label"] = label_of(widget)
            entry["expected"] = expected
            entry["ok"] = said is not None and said.shown == expected and said.spoken == expected
        self.presses.append(entry)
        print(f"KEY {key} -> {entry['said']}", flush=True)

    def focused_label(self) -> str:
        from kiosk.ui.focus import label_of

        widget = self.app.focus.focused
        return label_of(widget) if widget is not None else ""

    def seek(self, label: str) -> Iterator[None]:
        """Down until the control called ``label`` is in focus (as heard)."""
        for _ in range(MAX_PRESSES):
            yield from self.press("down")
            if self.focused_label() == label:
                return
        raise LookupError(f"no control called {label!r} on {self.app.manager.current}")

    def choose(self, label: str) -> Iterator[None]:
        yield from self.seek(label)
        yield from self.press("select")

    # --- the journeys ------------------------------------------------------------------------

    def script(self) -> Iterator[None]:
        yield from self.wait_screen("idle")
        yield from self.certificate("zh")
        yield from self.notice("zh")
        yield from self.certificate("en")
        yield from self.notice("en")
        self.ok = True

    def to_language(self, lang: str) -> Iterator[None]:
        if self.app.vm.lang != lang:
            yield from self.choose(self.runtime.tr("focus.lang", self.app.vm.lang))
            yield from self.wait(lambda: self.app.vm.lang == lang, 5, "the language")

    def find(self, code: str) -> Iterator[None]:
        """The matter's button in focus: its tile opened, its list's pages turned, by keys."""
        from flows.finder import SEARCH, TOP

        screen = self.screen()
        finder = screen.finder
        lang = self.app.vm.lang
        name = next(
            i.name.get(lang) for t in finder.home for i in finder.items(t.code) if i.code == code
        )
        if not finder.flat:
            tile = next(
                t
                for t in finder.home
                if t.code not in (SEARCH, TOP) and any(i.code == code for i in finder.items(t.code))
            )
            yield from self.turn_until(
                lambda: any(
                    getattr(c, "service_code", "") == tile.code for c in screen.ids.grid.children
                )
            )
            yield from self.choose(tile.name.get(lang))
            yield from self.wait(lambda: screen.level == tile.code, 5, "the list")
            # back (the keypad's) goes up to the tiles, as the bottom bar's back does
            yield from self.press("back")
            yield from self.wait(lambda: screen.level != tile.code, 5, "the tiles again")
            yield from self.turn_until(
                lambda: any(
                    getattr(c, "service_code", "") == tile.code for c in screen.ids.grid.children
                )
            )
            yield from self.choose(tile.name.get(lang))
            yield from self.wait(lambda: screen.level == tile.code, 5, "the list")
        yield from self.turn_until(
            lambda: any(getattr(c, "service_code", "") == code for c in screen.ids.grid.children)
        )
        yield from self.seek(name)
        yield from self.press("help")  # what this page holds, and what the matter is

    def turn_until(self, shown: Any) -> Iterator[None]:
        from kiosk.ui.focus import label_of

        screen = self.screen()
        for _ in range(10):
            if shown():
                return
            yield from self.choose(label_of(screen.ids.next_page))
            yield from self.frames(3)
        raise LookupError("never shown")

    def certificate(self, lang: str) -> Iterator[None]:
        yield from self.wait_screen("idle")
        yield from self.to_language(lang)
        yield from self.press("volume_up")  # louder for this session, and back
        yield from self.press("volume_down")
        yield from self.press("up")  # the last control of the page: the list wraps around
        yield from self.choose(self.runtime.tr("home.start", lang))
        yield from self.wait_screen("identify")
        self.station.simulate("insert")
        yield from self.wait_screen("choose", timeout=30)
        yield from self.find(CERTIFICATE)
        yield from self.photo(f"keys-choose-{lang}")
        yield from self.press("select")
        yield from self.wait_screen("preview")
        yield from self.wait(lambda: self.app.vm.preview_ready, 20, "the preview")
        yield from self.read_document()
        yield from self.choose(self.label_of_id("print_button"))
        yield from self.wait_screen("rate", timeout=120)
        yield from self.photo(f"keys-rate-{lang}")
        yield from self.choose(self.label_of_id("rate5"))
        yield from self.wait_screen("take_card", timeout=20)
        self.station.simulate("remove")
        yield from self.wait_screen("thanks", timeout=20)
        yield from self.wait_screen("idle", timeout=30)

    def read_document(self) -> Iterator[None]:
        """Down from the top of the preview through its reading view: every field is said, in
        the document's order, until the focus leaves the document for the buttons."""
        from dataclasses import asdict

        from kiosk.ui.focus import field_of

        yield from self.frames(3)  # the reading view laid out
        screen = self.screen()
        document = {
            "lang": self.app.vm.lang,
            "page": asdict(self.app.vm.reading[int(screen.page)]),
            "said": [],
        }
        self.documents.append(document)
        for _ in range(MAX_PRESSES):
            yield from self.press("down")
            widget = self.app.focus.focused
            if widget is None or not any(field_of(widget)):
                break
            document["said"].append(self.presses[-1])
            if len(document["said"]) == 4:
                yield from self.frames(2)
                name = f"keys-preview-field-{self.app.vm.lang}"
                yield from self.photo(name)
                document["field_shot"] = {"shot": f"{name}.png", **self.field_rects(widget)}
        yield from self.press("help")  # the page's summary counts the document's parts
        document["help"] = self.presses[-1]["said"]

    def field_rects(self, widget: Any) -> dict[str, Any]:
        """The focused field's and its neighbours' rectangles on the screenshot (pixels from
        the top left), to check that the field's mark leaves the rows around it readable."""
        from kivy.core.window import Window

        from kiosk.ui.focus import window_rect

        def on_image(w: Any) -> list[float]:
            x0, y0, x1, y1 = window_rect(w)
            return [x0, Window.height - y1, x1, Window.height - y0]

        rows = list(reversed(widget.parent.children))  # Kivy keeps children last first
        at = rows.index(widget)
        return {
            "focused": on_image(widget),
            "neighbours": [on_image(w) for w in rows[max(0, at - 1) : at + 2] if w is not widget],
        }

    def notice(self, lang: str) -> Iterator[None]:
        yield from self.wait_screen("idle")
        yield from self.to_language(lang)
        yield from self.choose(self.runtime.tr("home.start", lang))
        yield from self.wait_screen("identify")
        yield from self.still_there()
        yield from self.choose(self.label_of_id("no_card_button"))
        yield from self.wait_screen("choose")
        yield from self.find(NOTICE)
        yield from self.press("select")
        yield from self.wait_screen("notice")
        yield from self.photo(f"keys-notice-{lang}")
        yield from self.choose(self.label_of_id("print_button"))
        yield from self.wait_screen("rate", timeout=60)
        yield from self.choose(self.label_of_id("skip_button"))
        yield from self.wait_screen("thanks")
        yield from self.wait_screen("idle", timeout=30)

    def still_there(self) -> Iterator[None]:
        """ "Are you still there?" (a short timeout for this state): any key answers it."""
        timeouts = self.runtime.session._timeouts  # test harness only: real ones take minutes
        saved = timeouts["identify"]
        timeouts["identify"] = 14.0
        self.app.intent("touch")  # arms the short timeout
        yield from self.wait(lambda: self.app.still_there_view.parent is not None, 30, "warning")
        timeouts["identify"] = saved
        yield from self.press("down")
        yield from self.wait(lambda: self.app.still_there_view.parent is None, 5, "answered")
        self.presses[-1]["answered_warning"] = True

    def label_of_id(self, ident: str) -> str:
        from kiosk.ui.focus import label_of

        return label_of(self.screen().ids[ident])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--artifacts", required=True)
    parser.add_argument("--display", required=True)
    parser.add_argument("--report", required=True)
    args = parser.parse_args()
    station = kiosk_station(args.config, uncapped=True)
    app = station.build_app()
    journey = KeyJourney(app, station, Path(args.artifacts), args.display)
    from kivy.clock import Clock

    Clock.schedule_once(journey.begin, 1.0)
    app.run()
    Path(args.report).write_text(
        json.dumps(
            {"ok": journey.ok, "presses": journey.presses, "documents": journey.documents},
            ensure_ascii=False,
            indent=1,
        )
    )
    if not journey.ok:
        print(f"JOURNEY FAILED: {journey.error}", file=sys.stderr, flush=True)
    return 0 if journey.ok else 1


if __name__ == "__main__":
    sys.exit(main())
