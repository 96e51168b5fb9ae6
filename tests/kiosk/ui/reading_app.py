"""Runs the real kiosk app through the preview's reading view of a three-page bundle (issue 20).

An elder in elder mode chooses 退休一件事, reads every page as text, turns the pages (each turn
said and shown), looks at a page as it prints, zoomed to the panel's width, and reads it again
in English. Prints ``MEASURE``, ``PAGE``, ``ZOOM`` and ``TARGETS`` lines for test_reading.py;
screenshots go to ``--artifacts``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from app_start import kiosk_station
from journey_app import Journey

BUNDLE = "retirement_bundle"


class Reading(Journey):
    def __init__(self, app: Any, artifacts: Path, font: Path) -> None:
        super().__init__(app, artifacts, "zh", "reading")
        self.font = font

    def script(self) -> Iterator[None]:
        yield from self.wait_screen("idle")
        self.tap(self.top_bar().ids.elder_button)
        yield from self.wait(lambda: self.app.vm.elder, 5, "elder mode")
        self.tap(self.screen().ids.start_button)
        yield from self.wait_screen("identify")
        yield from self.wait_screen("choose", timeout=30)
        yield from self.find_service(BUNDLE)
        self.tap(self.service_button(BUNDLE))
        yield from self.wait_screen("preview")
        vm = self.app.vm
        yield from self.wait(
            lambda: vm.preview_ready and len(vm.reading) == 3 and len(vm.preview_pages) == 3,
            30,
            "the bundle's three pages",
        )
        screen = self.screen()
        for number in (1, 2, 3):
            yield from self.wait(lambda n=number: screen.page == n - 1, 5, f"page {number}")
            self.measure(f"zh-{number}")
            self.shot(f"reading-{number}-zh-elder")
            if number < 3:
                self.tap(screen.ids.next_page)
                caption = f"第 {number + 1} 页，共 3 页"
                yield from self.wait(
                    lambda c=caption: self.app.caption_bar.ids.caption.text == c, 5, caption
                )
        print(f"LAST {screen.ids.next_page.text}", flush=True)
        self.tap(screen.ids.picture_button)
        yield from self.wait(lambda: screen.picture and screen.ids.viewport.opacity == 1, 5, "pic")
        self.zoom(screen)
        self.shot("reading-3-picture-zh-elder")
        screen.ids.viewport.scroll_y = 0  # the foot of the page: the QR code, the issuer
        for _ in range(4):
            yield
        self.shot("reading-3-picture-foot-zh-elder")
        self.tap(screen.ids.picture_button)
        yield from self.wait(lambda: not screen.picture, 5, "the text again")
        self.tap(screen.ids.next_page)  # from the last page back to the first
        yield from self.wait(lambda: screen.page == 0, 5, "back to page 1")
        self.tap(self.top_bar().ids.lang_button)
        yield from self.wait(lambda: vm.lang == "en" and "Social" in vm.reading[0].title, 5, "en")
        self.measure("en-1")
        self.shot("reading-1-en-elder")
        self.tap(screen.ids.next_page)
        yield from self.wait(
            lambda: self.app.caption_bar.ids.caption.text == "Page 2 of 3", 5, "Page 2 of 3"
        )
        self.shot("reading-2-en-elder")
        self.tap(self.top_bar().ids.elder_button)  # standard mode: previous and next
        yield from self.wait(lambda: not vm.elder, 5, "standard mode")
        yield from self.wait(lambda: screen.ids.prev_page.opacity == 1, 5, "previous page")
        self.shot("reading-2-en-standard")
        self.tap(screen.ids.prev_page)
        yield from self.wait(
            lambda: self.app.caption_bar.ids.caption.text == "Page 1 of 3", 5, "Page 1 of 3"
        )
        print(f"STANDARD prev={screen.ids.prev_page.disabled} page={screen.page}", flush=True)
        self.tap(self.bottom_cancel())
        yield from self.wait_screen("take_card")
        yield from self.wait_screen("idle", timeout=30)
        self.ok = True

    def measure(self, name: str) -> None:
        """The values' text on the configured screen: a capital's height (the project's
        measure, kiosk.ui.audit) and a Chinese character's, from the font's outlines."""
        from PIL import ImageFont

        from kiosk.ui.audit import audit, cap_height_px

        screen = self.screen()
        px_mm = float(self.app.theme.px_mm)
        values = [w for w in screen.ids.sheet.walk() if type(w).__name__ == "ReadingValue"]
        caps, hanzi = [], []
        for w in values:
            size = round(float(w.font_size))
            caps.append(cap_height_px(str(self.font), size) / px_mm)
            _, top, _, bottom = ImageFont.truetype(str(self.font), size).getbbox("证")
            hanzi.append((bottom - top) / px_mm)
        title = self.app.vm.reading[screen.page].title
        print(
            f"MEASURE {name} values={len(values)} cap_mm={min(caps):.2f} hanzi_mm={min(hanzi):.2f}"
            f" px_mm={px_mm:.3f}",
            flush=True,
        )
        print(f"PAGE {name} {title}", flush=True)
        heading = screen.ids.page_label
        print(f"HEADING {name} {heading.text} {heading.height > 0}", flush=True)
        found = audit(screen, self.app.theme, elder=True, font=self.font, name=name)
        from kiosk.ui.widgets import BigButton, BottomBar, TopBar

        bars = [w for w in screen.walk(restrict=True) if isinstance(w, TopBar | BottomBar)]
        in_bars = {id(w) for bar in bars for w in bar.walk(restrict=True)}
        targets = sum(  # the screen's own; the top and bottom bars are on every screen
            1
            for w in screen.walk(restrict=True)
            if isinstance(w, BigButton)
            and id(w) not in in_bars
            and w.opacity > 0
            and w.width > 0
            and w.height > 0
        )
        print(f"TARGETS {name} screen={targets} audit={found.targets}", flush=True)
        for problem in found.problems:
            print(f"PROBLEM {problem}", flush=True)

    def zoom(self, screen: Any) -> None:
        view, page = screen.ids.viewport, screen.ids.page
        tex = page.texture
        print(
            f"ZOOM image_w={page.width:.0f} view_w={view.width:.0f} image_h={page.height:.0f}"
            f" view_h={view.height:.0f} tex={tex.width}x{tex.height} scroll_x={view.do_scroll_x}"
            f" page_mm={page.width / float(self.app.theme.px_mm):.0f}",
            flush=True,
        )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--artifacts", required=True)
    args = parser.parse_args()
    station = kiosk_station(args.config)
    app = station.build_app()
    run = Reading(app, Path(args.artifacts), station.font)
    run.runtime = station.runtime
    from kivy.clock import Clock

    Clock.schedule_once(run.begin, 0.5)
    app.run()
    if not run.ok:
        print(f"READING FAILED: {run.error}", file=sys.stderr, flush=True)
    return 0 if run.ok else 1


if __name__ == "__main__":
    sys.exit(main())
