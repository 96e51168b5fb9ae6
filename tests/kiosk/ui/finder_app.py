"""Walks every list of the choose screen with touches, counting taps (used by test_finder_gui and
test_long_names).

Started as a subprocess on Xvfb. A resident with an ID card reaches the choose screen; then, for
each language and mode asked for, the walk explores the screen breadth-first from its first page
of tiles: every tile, every page turn, the keypad's letters and "show results" are tapped for
real, and each new page (list, page number, letters typed) is one state. The taps to reach a
state are its depth; a matter shown on a state is reached in depth + 1 taps (the tap that picks
it is not made: it would leave the screen). Every state is measured with
:func:`kiosk.ui.audit.audit` (text inside its widget, sizes, contrast, at most six targets on an
elder page) except search results beyond the first few, which show matters already measured in
their lists. The keypad is explored deeply (two letters) only where taps are counted.

Findings go to ``--report`` as JSON; screenshots of the tiles, a list, the keypad and results to
``--artifacts``. (The walk puts the screen back on a state without a tap, so the caption bar in a
screenshot may show what the last tap said, not what a resident arriving there would hear.)
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from app_start import kiosk_station
from journey_app import Journey

State = tuple[str, int, str]  # level, page, letters typed
HOME: State = ("home", 0, "")
AUDITED_RESULTS = 3  # search results measured per language and mode


class FinderWalk(Journey):
    interval_s = 0.0  # every frame: thousands of taps

    def __init__(self, app: Any, station: Any, artifacts: Path, combos: list[str], taps: str):
        super().__init__(app, artifacts, "zh", "finder")
        self.station = station
        self.combos = combos  # "zh-elder", "en-standard", ...
        self.count_taps = taps  # the combination whose keypad is explored deeply
        self.problems: list[str] = []
        self.taps: dict[str, dict[str, int]] = {}  # combination → matter → fewest taps
        self.states: dict[str, int] = {}
        self.shots: list[str] = []
        self._due = ""  # a screenshot to take of the state on the screen
        self.drawing = True  # False: frames tick (layout, text) but are not drawn

    def begin(self, _dt: float = 0.0) -> None:
        """Draws only the frames it photographs: the walk reads the widget tree, not pixels, and
        drawing 1600 × 900 on a software renderer was most of its time. A handler that returns
        True stops the window's own ``on_draw`` and ``on_flip``."""
        from kivy.core.window import Window

        Window.bind(on_draw=lambda *_: not self.drawing, on_flip=lambda *_: not self.drawing)
        super().begin(_dt)

    def photograph(self) -> Iterator[None]:
        if not self._due:
            return
        self.drawing = True
        yield from self.settle(2)
        self.shot(self._due)
        self._due, self.drawing = "", False

    def settle(self, n: int = 2) -> Iterator[None]:
        for _ in range(n):
            yield

    def script(self) -> Iterator[None]:
        yield from self.wait_screen("idle")
        self.tap(self.screen().ids.start_button)
        yield from self.wait_screen("identify")
        self.station.simulate("insert")
        yield from self.wait_screen("choose", timeout=30)
        for combo in self.combos:
            lang, mode = combo.split("-")
            if self.app.vm.lang != lang:
                self.tap(self.top_bar().ids.lang_button)
                yield from self.wait(lambda lang=lang: self.app.vm.lang == lang, 5, lang)
            if self.app.vm.elder != (mode == "elder"):
                self.tap(self.top_bar().ids.elder_button)
                yield from self.wait(
                    lambda mode=mode: self.app.vm.elder == (mode == "elder"), 5, mode
                )
            self.drawing = False
            yield from self.explore(combo)
            self.drawing = True
        self.ok = True

    # --- one language and mode ---------------------------------------------------------------

    def explore(self, combo: str) -> Iterator[None]:
        screen = self.screen()
        deep = combo == self.count_taps
        depth: dict[State, int] = {HOME: 0}
        queue: deque[State] = deque([HOME])
        self._reached: dict[str, int] = {}
        self._results_audited = 0
        yield from self.restore(HOME)
        self.look(combo, HOME, 0)
        yield from self.photograph()
        while queue:
            state = queue.popleft()
            d = depth[state]
            search = state[0] == "keypad" or state[0].startswith("search:")
            if search and d >= (3 if deep else 2):
                continue  # deeper letters only where taps are counted
            yield from self.restore(state)
            for target in self.targets(state):
                yield from self.restore(state)
                widget = self.find(target)
                if widget is None:
                    continue
                self.tap(widget)
                yield from self.settle()
                new: State = (screen.level, int(screen.page), screen.query)
                if new not in depth:  # measured now, while it is on the screen
                    depth[new] = d + 1
                    queue.append(new)
                    self.look(combo, new, d + 1)
                    yield from self.photograph()
        self.taps[combo] = self._reached
        self.states[combo] = len(depth)

    def look(self, combo: str, state: State, d: int) -> None:
        """A state reached in ``d`` taps, on the screen: its matters, and its measurements."""
        level = state[0]
        if not level.startswith("search:") or self._results_audited < AUDITED_RESULTS:
            self._results_audited += level.startswith("search:")
            self.measure(combo, state)
        for button in self.matters():
            code = button.service_code
            self._reached[code] = min(self._reached.get(code, 99), d + 1)

    def restore(self, state: State) -> Iterator[None]:
        """Put the screen on a state without a tap (the walk's own bookkeeping)."""
        screen = self.screen()
        level, page, query = state
        if (screen.level, int(screen.page), screen.query) != state:
            screen.query, screen.level, screen.page = query, level, page
            screen._rebuild()
            yield from self.settle(1)

    def matters(self) -> list[Any]:
        return [
            b
            for b in self.screen().ids.grid.children
            if getattr(b, "service_code", "") and not b.glyph
        ]

    def targets(self, state: State) -> list[tuple[str, str]]:
        """What a resident can tap on this state that stays on the choose screen."""
        screen = self.screen()
        out = [
            ("page", name) for name in ("next_page", "prev_page") if not screen.ids[name].disabled
        ]
        if state[0] == "keypad":
            out += [("key", k.text) for k in screen.ids.keypad.children if not k.disabled]
            if not screen.ids.results_button.disabled:
                out.append(("results", ""))
        out += [
            ("tile", b.service_code)
            for b in screen.ids.grid.children
            if getattr(b, "glyph", "") and not b.disabled
        ]
        return out

    def find(self, target: tuple[str, str]) -> Any:
        kind, name = target
        ids = self.screen().ids
        if kind == "page":
            return ids[name]
        if kind == "results":
            return ids.results_button
        children = ids.keypad.children if kind == "key" else ids.grid.children
        attr = "text" if kind == "key" else "service_code"
        return next((c for c in children if getattr(c, attr, None) == name), None)

    def measure(self, combo: str, state: State) -> None:
        from kiosk.ui.audit import audit

        level, page, query = state
        name = f"{combo}-{level}-p{page + 1}" + (f"-{query}" if query else "")
        found = audit(
            self.screen(), self.app.theme, elder=self.app.vm.elder, font=self.station.font,
            name=name,
        )  # fmt: skip
        self.problems += found.problems
        kind = "results" if level.startswith("search:") else level
        shot = {"home": "tiles", "keypad": "keypad" if not query else "keypad-typed"}.get(
            kind, "results" if kind == "results" else "list"
        )
        label = f"{combo}-{shot}"
        if label not in self.shots and (page == 0 or shot == "tiles"):
            self.shots.append(label)
            self._due = label  # taken by photograph(), after frames that are drawn


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--artifacts", required=True)
    parser.add_argument("--report", required=True)
    parser.add_argument("--combos", default="zh-elder,en-elder")
    parser.add_argument("--taps", default="zh-elder", help="the combination to count taps in")
    args = parser.parse_args()
    station = kiosk_station(args.config, wire_log=False, uncapped=True)
    app = station.build_app()
    walk = FinderWalk(app, station, Path(args.artifacts), args.combos.split(","), args.taps)
    from kivy.clock import Clock

    Clock.schedule_once(walk.begin, 0.5)
    app.run()
    report = {
        "ok": walk.ok,
        "error": walk.error,
        "taps": walk.taps,
        "states": walk.states,
        "problems": walk.problems,
        "shots": walk.shots,
    }
    Path(args.report).write_text(json.dumps(report, ensure_ascii=False, indent=1))
    return 0 if walk.ok else 1


if __name__ == "__main__":
    sys.exit(main())
