"""Runs inside the real kiosk app for ``bench_ui``: screen changes and memory over many sessions.

Each simulated session is what a resident without a card does when they only look: start, no
card, the services (the choose screen builds its buttons), a materials notice, back, cancel.
The first ``--timed`` sessions go one step per frame, with the window drawing every frame
(``maxfps`` 0): the time of a screen change is the Python work of it, the runtime handling the
touch, the session's effects, the app rendering the new view and a layout pass over the new
screen. The rest (the soak) go ``--per-frame`` sessions between two drawn frames, so that 10,000
sessions fit in minutes on a software renderer; every widget is still built, laid out and freed.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kiosk.config import load_config
from kiosk.shell.runtime import Intent
from kiosk.station import create_station
from kiosk.ui.app import configure_kivy
from kiosk.ui.scripted import ScriptedRun

STEPS = [
    ("start", None),
    ("skip_identity", None),
    ("pick", "disability_certificate_checklist"),
    ("back", None),
    ("cancel", None),
]


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def layout(widget: Any) -> None:
    for w in widget.walk(restrict=True):
        if hasattr(w, "do_layout"):
            w.do_layout()


class Probe(ScriptedRun):
    def __init__(
        self, station: Any, app: Any, sessions: int, early: int, timed: int, per_frame: int
    ) -> None:
        super().__init__(app)
        self.station = station
        self.sessions, self.early = sessions, early
        self.timed, self.per_frame = timed, per_frame
        self.times: list[float] = []
        self.rss: dict[str, float] = {}

    def script(self) -> Iterator[None]:
        runtime = self.station.runtime
        for _ in range(30):  # let start-up settle (health, prewarm)
            yield
        for n in range(1, self.sessions + 1):
            for name, arg in STEPS:
                t0 = time.perf_counter()
                runtime.post(Intent(name, arg))
                runtime.pump()
                layout(self.app.manager.current_screen)
                if n <= self.timed:
                    self.times.append(time.perf_counter() - t0)
                    yield
            if n > self.timed and n % self.per_frame == 0:
                yield
            if n == self.early:
                gc.collect()
                self.rss["early"] = rss_mib()
        gc.collect()
        self.rss["late"] = rss_mib()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--early", type=int, default=100)
    parser.add_argument("--timed", type=int, default=200)
    parser.add_argument("--per-frame", type=int, default=10)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    config = load_config(Path(args.config))
    configure_kivy(config, config.state_dir / "kivy")
    from kivy.config import Config as KivyConfig

    KivyConfig.set("graphics", "maxfps", "0")
    station = create_station(config)
    app = station.build_app()
    probe = Probe(station, app, args.sessions, args.early, args.timed, args.per_frame)
    from kivy.clock import Clock

    Clock.schedule_once(probe.begin, 0.5)
    app.run()
    Path(args.out).write_text(
        json.dumps({"times": probe.times, "rss": probe.rss, "error": probe.error})
    )
    return 0 if not probe.error else 1


if __name__ == "__main__":
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    sys.exit(main())
