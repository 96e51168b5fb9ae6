"""Lockdown: keys and close requests do nothing to the running kiosk; the PIN pad locks out.

The real ``kiosk run`` runs on Xvfb; the test is an X client that presses keys through XTEST
(as a keyboard would) and sends the window the WM_DELETE_WINDOW message a window manager sends
when someone clicks close or presses Alt+F4. The app must still be running and drawing afterwards.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kiosk.shell.maintenance import MAX_FAILURES, PinGuard, hash_pin
from statedir.journal import Journal

PIN = "13579"


@pytest.fixture
def kiosk(tmp_path: Path, xvfb: str) -> Iterator[tuple[subprocess.Popen[str], Path, list[str]]]:
    state = tmp_path / "state"
    config = tmp_path / "kiosk.toml"
    config.write_text(
        "version = 1\n"
        f'[state]\ndir = "{state}"\n'
        '[devices]\nspeech = "off"\n'
        "[ui]\nwidth = 1280\nheight = 720\nshow_simulator_controls = false\n",
        encoding="utf-8",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "kiosk.cli", "--config", str(config), "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=dict(os.environ, DISPLAY=xvfb),
    )
    lines: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        yield proc, state, lines
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=20)
        reader.join(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()


def until(cond: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def find_window(display: Any) -> Any:
    """The kiosk's top-level window: the only client window on this private X server."""
    windows = display.screen().root.query_tree().children
    assert windows, "no window on the screen"
    return max(windows, key=lambda w: w.get_geometry().width * w.get_geometry().height)


@pytest.mark.gui
def test_escape_alt_f4_and_close_requests_leave_the_kiosk_running(
    kiosk: tuple[subprocess.Popen[str], Path, list[str]], xvfb: str
) -> None:
    from Xlib import XK, X, display
    from Xlib.ext import xtest
    from Xlib.protocol import event

    proc, state, lines = kiosk
    until(lambda: any("home screen ready" in line for line in lines), 60, "the home screen")
    d = display.Display(xvfb)
    window = find_window(d)
    geometry = window.get_geometry()
    xtest.fake_input(d, X.MotionNotify, x=geometry.width // 2, y=geometry.height // 3)
    window.set_input_focus(X.RevertToParent, X.CurrentTime)
    d.sync()

    def press(*keys: str) -> None:
        codes = [d.keysym_to_keycode(XK.string_to_keysym(k)) for k in keys]
        for code in codes:
            xtest.fake_input(d, X.KeyPress, code)
        for code in reversed(codes):
            xtest.fake_input(d, X.KeyRelease, code)
        d.sync()
        time.sleep(0.5)

    press("Escape")
    press("Alt_L", "F4")
    press("F11")
    protocols = d.intern_atom("WM_PROTOCOLS")
    delete = d.intern_atom("WM_DELETE_WINDOW")
    close = event.ClientMessage(
        window=window, client_type=protocols, data=(32, [delete, X.CurrentTime, 0, 0, 0])
    )
    window.send_event(close, event_mask=X.NoEventMask)
    d.sync()
    time.sleep(2)

    assert proc.poll() is None, "the kiosk quit"
    log = (state / "logs" / "kiosk.log").read_text()
    assert "key 27 swallowed" in log  # Escape reached the app and did nothing
    assert "a request to close the window was refused" in log
    # the app still runs its clock: the UI heartbeat the agent watches moves on
    journal = Journal(state / "journal.sqlite3")
    before = journal.ui_heartbeat()
    assert before is not None
    until(lambda: (journal.ui_heartbeat() or 0) > before, 15, "a newer UI heartbeat")
    journal.close()
    d.close()
    proc.send_signal(signal.SIGTERM)  # the service manager can still stop it
    assert proc.wait(timeout=30) == 0


# --- the PIN pad: no screen needed, the real runtime and session ---------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_pin_lockout_doubles_and_survives_a_restart(tmp_path: Path) -> None:
    clock = Clock()
    store = tmp_path / "pin.json"
    guard = PinGuard(hash_pin(PIN), store, clock=clock)
    for attempt in range(1, MAX_FAILURES):
        result = guard.check("0000")
        assert not result.ok and result.message_key == "maint.wrong_pin"
        assert result.attempts_left == MAX_FAILURES - attempt
    locked = guard.check("0000")
    assert locked.new_lockout and locked.seconds_locked == 300
    assert not guard.check(PIN).ok, "the right PIN must not open a locked pad"
    restarted = PinGuard(hash_pin(PIN), store, clock=clock)  # a restart does not unlock
    assert restarted.check(PIN).message_key == "maint.locked"
    clock.now += 301
    for _ in range(MAX_FAILURES):
        result = restarted.check("9999")
    assert result.new_lockout and result.seconds_locked == 600  # the second lockout doubles
    clock.now += 601
    assert restarted.check(PIN).ok
    assert restarted.check("1111").attempts_left == MAX_FAILURES - 1  # success resets the count
    assert PIN not in store.read_text()


def test_no_pin_configured_means_no_way_in(tmp_path: Path) -> None:
    assert PinGuard("", tmp_path / "pin.json").check("0000").message_key == "maint.not_configured"
