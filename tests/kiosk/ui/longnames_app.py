"""Walks the choose screen with service names as long as the catalog allows (used by
test_long_names).

Started by ``test_long_names.py`` as a subprocess on Xvfb. Every service is named with the most
characters ``flows.catalog`` allows (``NAME_ZH``, ``NAME_EN``); a resident in elder mode looks at
every page of the services in Chinese and in English. On each page every service button's text,
as Kivy laid it out, must fit inside the button, with its line height to spare at the bottom.
Findings go to ``--report`` as JSON; a screenshot of each language's first page goes to
``--artifacts``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from journey_app import Journey

from kiosk.config import load_config
from kiosk.station import create_station, setup_logging
from kiosk.ui.app import configure_kivy


class LongNamesWalk(Journey):
    def __init__(self, app: Any, station: Any, artifacts: Path) -> None:
        super().__init__(app, artifacts, "zh", "long-names")
        self.station = station
        self.problems: list[str] = []
        self.checked: list[str] = []

    def fits(self, where: str) -> None:
        for button in self.screen().ids.grid.children:
            if not hasattr(button, "service_code"):
                continue
            button.texture_update()
            text_w, text_h = button.texture_size
            if text_w > button.width or text_h > button.height:
                self.problems.append(
                    f"{where}: {button.service_code}: text {text_w:.0f}x{text_h:.0f} px in a"
                    f" button of {button.width:.0f}x{button.height:.0f}"
                )
            self.checked.append(f"{where}:{button.service_code}")

    def pages(self, lang: str) -> Iterator[None]:
        screen = self.screen()
        while screen.page > 0:
            self.tap(screen.ids.prev_page)
            yield from self.settle()
        for page in range(int(screen.pages)):
            yield from self.settle()
            self.fits(f"{lang}-page{page + 1}")
            if page == 0:
                self.shot(f"long-names-{lang}-elder")
            if page < screen.pages - 1:
                self.tap(screen.ids.next_page)

    def settle(self) -> Iterator[None]:
        for _ in range(6):
            yield

    def script(self) -> Iterator[None]:
        yield from self.wait_screen("idle")
        self.tap(self.screen().ids.start_button)
        yield from self.wait_screen("identify")
        self.station.simulate("insert")
        yield from self.wait_screen("choose", timeout=30)
        if not self.app.vm.elder:
            self.tap(self.top_bar().ids.elder_button)
            yield from self.wait(lambda: self.app.vm.elder, 5, "elder mode")
        yield from self.pages("zh")
        self.tap(self.top_bar().ids.lang_button)
        yield from self.wait(lambda: self.app.vm.lang == "en", 5, "English")
        yield from self.pages("en")
        self.ok = True


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--artifacts", required=True)
    parser.add_argument("--report", required=True)
    args = parser.parse_args()
    config = load_config(Path(args.config))
    setup_logging(config.state_dir)
    configure_kivy(config, config.state_dir / "kivy")
    station = create_station(config, strict_translations=True)
    app = station.build_app()
    walk = LongNamesWalk(app, station, Path(args.artifacts))
    from kivy.clock import Clock

    Clock.schedule_once(walk.begin, 0.5)
    app.run()
    report = {
        "ok": walk.ok,
        "error": walk.error,
        "checked": walk.checked,
        "problems": walk.problems,
    }
    Path(args.report).write_text(json.dumps(report, ensure_ascii=False, indent=1))
    return 0 if walk.ok else 1


if __name__ == "__main__":
    sys.exit(main())
