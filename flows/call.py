"""Remote assisted service (远程帮办): when the kiosk may take a staff member's call, and what
its call screen shows. Pure: the shell (:mod:`kiosk.shell.call`) feeds it the session's state,
the help button's presses and a clock.

**The kiosk never answers unless its resident asked for help in this session.** "This session"
is the resident at the screen now: a help request counts from the moment it is made until the
next resident's session begins. Two cases on the home screen, each for :data:`HOME_GRACE_S`:

- help was pressed on the home screen (before or without starting a session);
- help was pressed in a session that has just ended (an elderly resident waiting for the staff
  member often lets the session time out: they are still standing there).

A technician at the station (the PIN pad or the maintenance screen) is never called.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

HOME_GRACE_S = 180.0
NO_SESSION = frozenset({"idle", "out_of_order", "unlock", "maintenance"})
MAINTENANCE = frozenset({"unlock", "maintenance"})

Phase = Literal["", "connecting", "talking", "ended"]
EndReason = Literal["", "resident", "staff", "dropped", "failed"]
Consent = Literal["", "ask", "yes", "no"]
"""Recording: "" the call is not to be recorded; ``ask`` the question is on the screen; the
resident's answer."""


class CallGate:
    """Whether a call may be answered now; fed by the shell on the UI thread."""

    def __init__(self) -> None:
        self._in_session = False
        self._began = float("-inf")  # the current (or last) session began
        self._ended = float("-inf")  # the last session ended
        self._help_at: float | None = None

    def observe(self, state: str, now: float) -> None:
        """The session's state, at every pump."""
        in_session = state not in NO_SESSION
        if in_session and not self._in_session:
            self._began = now
        elif self._in_session and not in_session:
            self._ended = now
        self._in_session = in_session

    def help_pressed(self, now: float) -> None:
        self._help_at = now

    def refusal(self, state: str, now: float) -> str | None:
        """None if a call may be answered now, else why not (``fleet.protocol.call.REFUSALS``)."""
        if state in MAINTENANCE:
            return "maintenance"
        asked = self._help_at
        if asked is None:
            return "no_help_request"
        if state not in NO_SESSION:  # in a session: asked in it, or on the home screen before
            return (
                None if asked >= max(self._ended, self._began - HOME_GRACE_S) else "no_help_request"
            )
        if asked >= self._ended and now - asked <= HOME_GRACE_S:
            return None  # asked on the home screen, a moment ago
        if self._began <= asked < self._ended and now - self._ended <= HOME_GRACE_S:
            return None  # asked in the session that has just ended
        return "no_help_request"


@dataclass(frozen=True, slots=True)
class CallView:
    """What the call screen shows (in the runtime's frame); ``phase`` "" is no call."""

    phase: Phase = ""
    staff: str = ""  # the staff member's display name, as the console sent it
    volume: float = 1.0  # 0..MAX_VOLUME, the staff member's voice
    ended: EndReason = ""
    camera: bool = False  # the station's camera is in the call
    camera_on: bool = True  # the resident has not turned it off
    picture: bool = False  # the staff member's picture is arriving
    consent: Consent = ""
    record_days: int = 0  # how long a recording is kept (the console's setting)

    @property
    def active(self) -> bool:
        return self.phase in ("connecting", "talking")

    @property
    def consent_word(self) -> Literal["", "yes", "no"]:
        """For the call's end: a question never answered is no consent."""
        return "" if not self.consent else "yes" if self.consent == "yes" else "no"


MAX_VOLUME = 2.0
VOLUME_STEP = 0.25


def volume_step(volume: float, up: bool) -> float:
    """One press of "louder" or "quieter", within 0.25..:data:`MAX_VOLUME`."""
    stepped = volume + (VOLUME_STEP if up else -VOLUME_STEP)
    return min(MAX_VOLUME, max(VOLUME_STEP, round(stepped / VOLUME_STEP) * VOLUME_STEP))
