"""The headphone jack: plugged in or not, told to the runtime as an intent on change.

Where the sound card reports its jack, ALSA has a card control named "Headphone Jack"
(``amixer -c CARD cget iface=CARD,name='Headphone Jack'`` says ``values=on``); it is polled
(``alsa:CARD``). A simulated jack is a file holding ``1`` or ``0`` (``file:PATH``: tests and
development stations). Where the jack is not detected at all, a key says it (``key``: the
keypad's ``key_headphones``, handled by the UI); this watcher then does nothing.
"""

from __future__ import annotations

import logging
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("kiosk.shell.jack")

POLL_S = 0.3


def alsa_jack(card: str, timeout_s: float = 2.0) -> bool | None:
    """The "Headphone Jack" control of ``card``; None when the card has none or amixer fails."""
    try:
        out = subprocess.run(
            ["amixer", "-c", card, "cget", "iface=CARD,name=Headphone Jack"],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in out.stdout.splitlines():
        line = line.strip()
        if line.startswith(": values="):
            return line.removeprefix(": values=") == "on"
    return None


def file_jack(path: Path) -> bool | None:
    try:
        return path.read_text(encoding="ascii").strip() == "1"
    except (OSError, UnicodeDecodeError):
        return False


class JackWatch:
    """Polls the jack named by ``spec`` (``[devices] headphones``) and calls ``changed(plugged)``
    when it changes, the first time too when headphones are already in."""

    def __init__(
        self, spec: str, changed: Callable[[bool], None], *, poll_s: float = POLL_S
    ) -> None:
        self.spec = spec
        self.changed = changed
        self.poll_s = poll_s
        self.plugged = False
        kind, _, where = spec.partition(":")
        self._read: Callable[[], bool | None] | None = None
        if kind == "alsa":
            self._read = lambda: alsa_jack(where)
        elif kind == "file":
            self._read = lambda: file_jack(Path(where))

    def poll(self) -> None:
        if self._read is None:
            return
        now = self._read()
        if now is None or now == self.plugged:
            return
        self.plugged = now
        log.info("headphones %s", "plugged in" if now else "unplugged")
        self.changed(now)

    def start(self, stop: threading.Event) -> None:
        if self._read is None:
            return
        if self.spec.startswith("alsa:") and alsa_jack(self.spec[5:]) is None:
            log.warning("the sound card %s reports no headphone jack", self.spec[5:])

        def loop() -> None:
            while not stop.wait(self.poll_s):
                try:
                    self.poll()
                except Exception:
                    log.exception("reading the headphone jack failed")

        threading.Thread(target=loop, name="jack", daemon=True).start()
