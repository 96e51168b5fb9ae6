"""Walks the real app with a catalog whose texts look like Kivy markup (used by test_markup).

Started by ``test_markup.py`` as a subprocess on Xvfb. A resident with a card looks at the list
of services, a materials notice (in both languages) and a certificate's preview; a technician
then opens the maintenance screen, whose log holds a line that looks like markup too. On each
screen it renders every label and reads what Kivy laid out (the words of the core label, after
markup parsing): each catalog text must be there character for character, and nothing may be
drawn at the injected size or become a touchable ``[ref]``. Findings go to ``--report`` as JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from app_start import kiosk_station
from journey_app import Journey

from kiosk import present

NOTICE = "disability_certificate_checklist"
CERTIFICATE = "social_insurance_certificate"
INJECTED_SIZE = 400  # what the catalog's [size=400] would make of a text


def rendered(label: Any) -> tuple[str, list[dict[str, Any]]]:
    """What the label draws: its words joined (without white space, which wrapping moves) and
    the options Kivy drew each word with."""
    label.texture_update()
    words = [word for line in label._label._cached_lines for word in line.words]
    text = "".join("".join(word.text.split()) for word in words)
    return text, [dict(word.options) for word in words]


class MarkupWalk(Journey):
    def __init__(
        self, app: Any, station: Any, artifacts: Path, pin: str, texts: dict[str, list[str]]
    ) -> None:
        super().__init__(app, artifacts, "zh", "markup")
        self.station = station
        self.pin = pin
        self.texts = texts  # language -> catalog texts that look like markup
        self.problems: list[str] = []
        self.checked: list[str] = []

    def settle(self) -> Iterator[None]:
        for _ in range(8):
            yield

    def check(self, where: str, expected: list[str]) -> None:
        """Every text in ``expected`` drawn as written; no label drawn with injected markup."""
        from kivy.uix.label import Label

        labels = [w for w in self.screen().walk() if isinstance(w, Label)]
        labels += [w for w in self.top_bar().walk() if isinstance(w, Label) and w not in labels]
        drawn = []
        for label in labels:
            try:
                text, options = rendered(label)
            except ValueError as err:  # e.g. [size=abc] read as markup: Kivy cannot draw it
                self.problems.append(f"{where}: {label.text!r} cannot be drawn: {err}")
                continue
            drawn.append(text)
            if label.markup and label.refs:
                self.problems.append(f"{where}: {label.text!r} has refs {sorted(label.refs)}")
            if any(o.get("font_size") == INJECTED_SIZE for o in options):
                self.problems.append(f"{where}: {label.text!r} drew a word at size 400")
        for data in expected:
            if not any("".join(data.split()) in text for text in drawn):
                self.problems.append(f"{where}: {data!r} is not shown as written")
        self.checked.append(where)
        self.shot(f"markup-{where}")

    def script(self) -> Iterator[None]:
        yield from self.wait_screen("idle")
        station_name = self.texts["zh"][0]
        self.check("home", [station_name])
        self.tap(self.screen().ids.start_button)
        yield from self.wait_screen("identify")
        self.station.simulate("insert")
        yield from self.wait_screen("choose", timeout=30)
        yield from self.find_service(NOTICE)
        yield from self.settle()
        self.check("choose", [self.texts["zh"][1]])
        self.tap(self.service_button(NOTICE))
        yield from self.wait_screen("notice")
        yield from self.settle()
        self.check("notice-zh", self.texts["zh"])
        self.tap(self.top_bar().ids.lang_button)
        yield from self.wait(lambda: self.app.vm.lang == "en", 5, "English")
        yield from self.settle()
        self.check("notice-en", self.texts["en"])
        self.tap(self.top_bar().ids.lang_button)
        yield from self.wait(lambda: self.app.vm.lang == "zh", 5, "Chinese")
        self.tap(self.bottom_bar().ids.back_button)
        yield from self.wait_screen("choose")
        yield from self.find_service(CERTIFICATE)
        self.tap(self.service_button(CERTIFICATE))
        yield from self.wait_screen("preview")
        yield from self.wait(lambda: self.app.vm.preview_texture is not None, 20, "preview")
        self.check("preview", [self.texts["certificate"][0]])
        self.tap(self.bottom_bar().ids.cancel_button)
        yield from self.wait_screen("take_card")  # the card is asked for first
        self.station.simulate("remove")
        yield from self.wait_screen("idle")
        yield from self.maintenance()
        self.ok = True

    def maintenance(self) -> Iterator[None]:
        """A log line that looks like markup, shown on the maintenance screen as written."""
        line = "[size=400][color=ff0000]log[/color][/size] [ref=x]y[/ref]"
        name = self.top_bar().ids.station_name
        for _ in range(5):
            self.tap(name)
            yield
        yield from self.wait_screen("unlock")
        keys = {w.digit: w for w in self.screen().walk() if getattr(w, "digit", "")}
        for digit in self.pin:
            self.tap(keys[digit])
            yield
        logging.getLogger("kiosk.test").warning("%s", line)  # among the last lines of the log
        self.tap(self.screen().ids.submit_button)
        yield from self.wait_screen("maintenance")
        shown = (line, present.literal(line))  # as it is today, as it should be
        yield from self.wait(
            lambda: any(s in self.app.vm.maint_log for s in shown), 10, "the log line"
        )
        yield from self.settle()
        self.check("maintenance", [line])
        self.tap(self.screen().ids.leave_button)
        yield from self.wait_screen("idle")


def escape_agrees_with_kivy() -> list[str]:
    """kiosk.present.literal is kivy.utils.escape_markup (which the module cannot import)."""
    from kivy.utils import escape_markup

    rng = random.Random(17)
    alphabet = "[]&;/=ablrsizeo大 \n"
    samples = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30))) for _ in range(500)]
    samples += ["&bl;", "&amp;[", "[[]]", "&br;&"]
    return [f"literal({s!r}) differs" for s in samples if present.literal(s) != escape_markup(s)]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--artifacts", required=True)
    parser.add_argument("--pin", required=True)
    parser.add_argument("--texts", required=True, help="JSON: language -> texts to find")
    parser.add_argument("--report", required=True)
    args = parser.parse_args()
    station = kiosk_station(args.config, wire_log=False)
    app = station.build_app()
    walk = MarkupWalk(app, station, Path(args.artifacts), args.pin, json.loads(args.texts))
    from kivy.clock import Clock

    Clock.schedule_once(walk.begin, 0.5)
    app.run()
    report = {
        "ok": walk.ok,
        "error": walk.error,
        "checked": walk.checked,
        "problems": walk.problems,
        "escape": escape_agrees_with_kivy(),
    }
    Path(args.report).write_text(json.dumps(report, ensure_ascii=False, indent=1))
    if not walk.ok:
        print(f"MARKUP WALK FAILED: {walk.error}", file=sys.stderr, flush=True)
    return 0 if walk.ok else 1


if __name__ == "__main__":
    sys.exit(main())
