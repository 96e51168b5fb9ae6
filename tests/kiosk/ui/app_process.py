"""A test app (``*_app.py``) as the tests run it: a subprocess on the test's Xvfb display whose
output lines are read as they come (``AT <screen>``, ``SPOKE …``, ``NAME value`` lines)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any


class AppProcess:
    """Starts with :meth:`launch`; :meth:`finish` waits for it and says how it ended."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.stderr: list[str] = []
        self.proc: subprocess.Popen[str]
        self.threads: list[threading.Thread] = []

    def launch(self, script: Path, args: list[str], display: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(script), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ, DISPLAY=display),
        )
        self.threads = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.lines)),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.stderr)),
        ]
        for t in self.threads:
            t.start()

    @staticmethod
    def _read(stream: Any, into: list[str]) -> None:
        for line in stream:
            into.append(line.rstrip("\n"))

    def saw(self, line: str) -> bool:
        return line in self.lines

    def values(self, prefix: str) -> list[str]:
        """Every ``PREFIX value`` line's value, in order."""
        return [x.removeprefix(prefix + " ") for x in self.lines if x.startswith(prefix + " ")]

    def value(self, prefix: str) -> str:
        """The one ``PREFIX value`` line's value."""
        [value] = self.values(prefix)
        return value

    def said(self) -> list[str]:
        return [line.split(" ", 2)[2] for line in self.lines if line.startswith("SPOKE ")]

    def wait(self, timeout: float) -> int:
        """The exit status; the process is killed if it is not done by then."""
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            for t in self.threads:
                t.join(timeout=10)
            for stream in (self.proc.stdout, self.proc.stderr):
                if stream is not None:
                    stream.close()
