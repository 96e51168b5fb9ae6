"""The kiosk app's figures, measured on the real app in a window on a private Xvfb.

- ``ui.cold_start_ms``: ``kiosk run`` started → the home screen drawn and the runtime listening
  (the app prints "home screen ready" after its first frame), median ms. The devices exist
  already (a private cupsd and the ESC/POS simulator, started before the clock), as on a station.
  Goal < 2000.
- ``ui.cold_start_to_bare_kivy``: the same over a bare Kivy app (one label) started the same way
  in the same run: what the kiosk adds to Kivy's own start.
- ``ui.transition_p95_to_frame``: the Python work of one screen change at p95 over the first
  200 sessions, one change per drawn frame (``ui_probe.py``), over one 60 Hz frame (16.7 ms).
  Goal ≤ 1.
- ``ui.rss_10000_to_100``: resident memory after 10,000 simulated sessions over after 100, both
  after a garbage collection. Goal ≤ 1.05.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from drivers.escpos.simulator import EscposSimulator
from kiosk.tools.devstation import start_xvfb
from sandbox.cups import CupsSandbox

HERE = Path(__file__).resolve().parent
FRAME_S = 1 / 60

BARE_KIVY = """
import os
os.environ["KIVY_NO_ARGS"] = "1"
os.environ["KIVY_NO_CONSOLELOG"] = "1"
os.environ["KIVY_NO_FILELOG"] = "1"
os.environ["KIVY_HOME"] = os.environ["BENCH_KIVY_HOME"]
from kivy.app import App
from kivy.clock import Clock
from kivy.uix.label import Label

class Bare(App):
    def build(self):
        return Label(text="ready")
    def on_start(self):
        Clock.schedule_once(lambda dt: print("kiosk: home screen ready", flush=True), 0)
        Clock.schedule_once(lambda dt: self.stop(), 0.2)

Bare().run()
"""


def write_config(path: Path, state: Path, cups: CupsSandbox, thermal: EscposSimulator) -> None:
    path.write_text(
        "version = 1\n"
        f'[state]\ndir = "{state}"\n'
        "[devices]\n"
        f'a4_printer = "cups:{cups.queue}@{cups.server}"\n'
        f'thermal_printer = "{thermal.url}"\n'
        'speech = "off"\n'
        "[ui]\nshow_simulator_controls = false\n",
        encoding="utf-8",
    )


def time_to_ready(argv: list[str], env: dict[str, str], timeout_s: float = 60) -> float:
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "home screen ready" in line:
                return (time.perf_counter() - t0) * 1000
            if time.perf_counter() - t0 > timeout_s:
                break
        raise RuntimeError(f"{argv[:3]} never became ready")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def run(
    rounds: int = 5, sessions: int = 10_000, early: int = 100, timed: int = 200
) -> dict[str, float]:
    xvfb, display = start_xvfb(1920, 1080)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cups = CupsSandbox(root / "cups")
        thermal = EscposSimulator(out_dir=root / "receipts")
        cups.start()
        thermal.start()
        try:
            config = root / "kiosk.toml"
            write_config(config, root / "state", cups, thermal)
            env = dict(os.environ, DISPLAY=display, BENCH_KIVY_HOME=str(root / "bare-kivy"))
            kiosk = [sys.executable, "-m", "kiosk.cli", "--config", str(config), "run"]
            (root / "bare.py").write_text(BARE_KIVY)  # Kivy's App wants a source file
            bare = [sys.executable, str(root / "bare.py")]
            time_to_ready(kiosk, env)  # first start writes caches (voice, kivy home): not cold
            starts, bares = [], []
            for _ in range(rounds):
                starts.append(time_to_ready(kiosk, env))
                bares.append(time_to_ready(bare, env))
            out = root / "probe.json"
            subprocess.run(
                [
                    sys.executable,
                    str(HERE / "ui_probe.py"),
                    "--config",
                    str(config),
                    "--sessions",
                    str(sessions),
                    "--early",
                    str(early),
                    "--timed",
                    str(min(timed, sessions)),
                    "--out",
                    str(out),
                ],
                env=env,
                check=True,
                timeout=3600,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            probe = json.loads(out.read_text())
        finally:
            thermal.stop()
            cups.stop()
            xvfb.terminate()
            xvfb.wait(timeout=10)
    times = sorted(probe["times"])
    p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
    cold = statistics.median(starts)
    return {
        "ui.cold_start_ms": round(cold, 1),
        "ui.cold_start_to_bare_kivy": round(cold / statistics.median(bares), 2),
        "ui.transition_p95_to_frame": round(p95 / FRAME_S, 4),
        "ui.rss_10000_to_100": round(probe["rss"]["late"] / probe["rss"]["early"], 4),
    }
