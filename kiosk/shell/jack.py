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
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from flows.models import Identity
from flows.ports import Speech
from flows.session import Effect, Speak
from flows.view import View
from kiosk.i18n import Translator

log = logging.getLogger("kiosk.shell.jack")

POLL_S = 0.3
FIELD_KEYS = frozenset({"focus.field", "focus.text"})  # a field of a document, said by the keys


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


class Headphones:
    """Whether the voice is in the headphones, and what that allows: the runtime's part.

    Plugged in, the speech port plays into the jack's device only (``Speech.route``) and the help
    key's summary may carry the resident's masked ID number (``focus.summary_who``); unplugged,
    the loudspeaker again, and it may not. The same for the fields of the preview's reading
    view: in the headphones, the name and ID number are read as the screen shows them (masked);
    on the loudspeaker, "your name (plug in headphones to hear it)" in their place."""

    def __init__(self, speech: Speech, tr: Translator) -> None:
        self.speech = speech
        self.tr = tr
        self.plugged = False

    def plugged_in(self, plugged: object) -> list[Effect]:
        plugged = bool(plugged)
        if self.speech.route(plugged) is False and plugged:
            log.warning("headphones plugged in, but no headphone output is configured")
            return []
        self.plugged = plugged
        return [Speak("focus.headphones_on" if plugged else "focus.headphones_off")]

    def private(
        self, key: str, params: Mapping[str, Any], view: View, card: Identity | None = None
    ) -> Speak:
        """A line the keys' focus asked for; the page's summary names the card read, and a
        document's field its name and ID number, in the headphones only. On the loudspeaker a
        field that holds what the card says of the resident (``card``: the address, the whole
        name or number) is not read either: "your personal details" in its place."""
        said = {k: str(v) for k, v in params.items()}
        if key == "focus.summary" and self.plugged and view.masked_id_number:
            key, said["id"] = "focus.summary_who", view.masked_id_number
        if key in FIELD_KEYS and not self.plugged:
            for secret, words in (
                (view.masked_id_number, "focus.withheld_id"),
                (view.masked_name, "focus.withheld_name"),
            ):
                for name in ("label", "value"):
                    text = said.get(name, "")
                    # within a longer text only when masked (a one-letter name is not)
                    if secret and (text == secret or ("*" in secret and secret in text)):
                        said[name] = text.replace(secret, self.tr(words, view.lang))
            personal = [] if card is None else [card.address, card.name, card.id_number]
            if any(len(p) > 1 and p in said.get("value", "") for p in personal):
                said["value"] = self.tr("focus.withheld_personal", view.lang)
        return Speak(key, said)
