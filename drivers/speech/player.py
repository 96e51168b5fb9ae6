"""Playback of one WAV file through a subprocess that can be killed at once.

``aplay -q FILE`` by default (``-D null`` where there is no sound card, as in tests). A watchdog
kills a playback that runs far longer than its file lasts.
"""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
import threading
import wave
from collections.abc import Sequence
from pathlib import Path


def wav_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / float(w.getframerate() or 1)


def player_args(command: str, args: Sequence[str]) -> tuple[str, ...]:
    """The player's arguments as the kiosk runs it: aplay is always quiet (``-q``)."""
    return ("-q", *args) if Path(command).name == "aplay" else tuple(args)


def write_silence(path: Path, seconds: float = 0.05, rate: int = 22050) -> Path:
    """A short silent 16-bit mono WAV: what a probe of the output plays."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\0\0" * int(rate * seconds))
    return path


def null_sink(command: str, args: Sequence[str]) -> bool:
    """Whether the player is told to play into ALSA's null device (``-D null``): silence."""
    argv = [command, *args]
    return any(
        a in ("-D", "--device") and i + 1 < len(argv) and argv[i + 1] == "null"
        for i, a in enumerate(argv)
    ) or any(a in ("-Dnull", "--device=null") for a in argv)


def probe_output(command: str, args: Sequence[str], timeout_s: float = 10.0) -> str:
    """Play a moment of silence the way prompts are played: "" when the output opened, else the
    player's own last words (``aplay: main:831: audio open error: No such file or directory``).
    """
    with tempfile.TemporaryDirectory(prefix="kiosk-audio-") as tmp:
        wav = write_silence(Path(tmp) / "silence.wav")
        try:
            result = subprocess.run(
                [command, *args, str(wav)],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout_s,
                check=False,
            )
        except FileNotFoundError:
            return f"{command} is not installed"
        except (OSError, subprocess.TimeoutExpired) as err:
            return f"{command}: {err}"
    if result.returncode == 0:
        return ""
    said = [ln.strip() for ln in (result.stderr + result.stdout).splitlines() if ln.strip()]
    # ALSA's library lines ("ALSA lib conf.c:...") come first; the player's verdict is last
    return said[-1] if said else f"{command} exited with {result.returncode}"


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
