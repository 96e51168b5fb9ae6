"""Playback of one WAV file through a subprocess that can be killed at once.

``aplay -q FILE`` by default (``-D null`` where there is no sound card, as in tests). A watchdog
kills a playback that runs far longer than its file lasts.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
import wave
from pathlib import Path


def wav_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / float(w.getframerate() or 1)


class Player:
    def __init__(self, command: str = "aplay", args: tuple[str, ...] = ("-q",)) -> None:
        self.command = command
        self.args = args
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    @property
    def is_playing(self) -> bool:
        proc = self._proc
        return proc is not None and proc.poll() is None

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return None if proc is None else proc.pid

    def play(self, path: Path) -> subprocess.Popen[bytes]:
        """Start playing ``path``; raises OSError when the player program cannot start."""
        self.stop()
        proc = subprocess.Popen(
            [self.command, *self.args, str(path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        with self._lock:
            self._proc = proc
        return proc

    def wait(self, proc: subprocess.Popen[bytes], limit_s: float) -> tuple[int, str]:
        """Wait for a playback to end; past ``limit_s`` it is killed (the watchdog)."""
        try:
            _, err = proc.communicate(timeout=limit_s)
        except subprocess.TimeoutExpired:
            self._kill(proc)
            return -9, "playback ran too long"
        return proc.returncode, (err or b"").decode(errors="replace").strip()

    def stop(self) -> None:
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is not None:
            self._kill(proc)

    @staticmethod
    def _kill(proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=1)
