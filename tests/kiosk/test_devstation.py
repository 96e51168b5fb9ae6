"""`make run`'s station comes up with every process, says where things go, and Ctrl-C stops all."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


def _children_alive(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split()[2]
        except FileNotFoundError:
            continue
        if state != "Z":
            alive.append(pid)
    return alive


def _descendants(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True).stdout
    parents: dict[int, list[int]] = {}
    for line in out.splitlines():
        child, parent = (int(x) for x in line.split())
        parents.setdefault(parent, []).append(child)
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@pytest.mark.gui
@pytest.mark.slow
def test_station_starts_headless_and_ctrl_c_stops_everything(
    tmp_path: Path, artifacts: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "kiosk.devstation"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip())
            if "press Ctrl-C" in line:
                break
        text = "\n".join(lines)
        assert "virtual screen" in text, text
        assert "fleet console on http://127.0.0.1:" in text
        assert "Printed certificates:" in text
        time.sleep(15)  # let the kiosk come up and the agent connect
        assert proc.poll() is None, "\n".join(lines + proc.stdout.readlines())
        started = _descendants(proc.pid)
        assert len(started) >= 4  # Xvfb, console, agent, kiosk (and their helpers)
        assert (tmp_path / "station-data" / "state" / "journal.sqlite3").exists()
        screen = tmp_path / "station-data" / "screen.png"
        assert screen.stat().st_size > 10_000  # the virtual screen, mirrored for a person
        shutil.copy(screen, artifacts / "make-run-screen.png")
        proc.send_signal(signal.SIGINT)
        rest = proc.communicate(timeout=60)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, rest
    assert "station: stopped" in rest
    assert "Traceback" not in rest and "leaked" not in rest and "broken" not in rest, rest
    time.sleep(1)
    assert _children_alive(started) == [], rest
