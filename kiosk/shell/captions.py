"""Everything spoken is also shown: the caption of the line being said, in its language.

The runtime hands every :class:`flows.effects.Speak` to :meth:`Captions.said` before the voice
gets it: one place, so no prompt can be spoken without being shown, whoever asked for it (the
session, the help desk, the attract loop). The caption is the text as a resident reads it (a phone
number as written, not digit by digit as the voice says it); it stays until the next line is said
or the screen changes. A newer line supersedes an older one on the voice too (the speech port
interrupts), so the caption is always the line being heard.

``history`` keeps the last lines with the screen they were said on, for the journeys' check that
every spoken line appears on the screen it was spoken on.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from kiosk.i18n import Translator
from kiosk.present import spoken_params

HISTORY = 200


@dataclass(frozen=True, slots=True)
class Said:
    key: str
    screen: str
    lang: str
    shown: str  # what the caption shows
    spoken: str  # what the voice was given


class Captions:
    def __init__(self, tr: Translator) -> None:
        self.tr = tr
        self.current: Said | None = None
        self.history: deque[Said] = deque(maxlen=HISTORY)

    def said(self, key: str, params: dict[str, str], *, screen: str, lang: str) -> str:
        """Note a line about to be spoken; returns the text the voice says."""
        shown = self.tr(key, lang, **params)
        spoken = self.tr(key, lang, **spoken_params(params, lang))
        self.current = Said(key, screen, lang, shown, spoken)
        self.history.append(self.current)
        return spoken

    def screen_changed(self) -> None:
        """A new screen: the previous screen's line goes with it."""
        self.current = None

    @property
    def text(self) -> str:
        return self.current.shown if self.current is not None else ""
