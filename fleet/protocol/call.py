"""Remote assisted service (远程帮办): the signalling of a call, as the ``call_offer`` command.

A technician on the console calls a station whose resident asked for help. The technician's
browser makes a WebRTC offer (audio, a data channel named :data:`CHANNEL`), gathers its ICE
candidates first (no trickle: one message each way), and the console sends it to the station as
the ``call_offer`` command (target ``ui``) with the technician's display name. The kiosk answers
only if its resident asked for help in this session (:mod:`flows.call`); its answer's SDP comes
back as the command's result detail (:class:`CallAnswer`), which the page polls for. Media then
flow directly between browser and kiosk (or through a TURN server, ``docs/deploy.md``).

The call's own life runs on the data channel, not on MQTT: each side sends ``ping`` every
:data:`PING_S`; ``bye`` ends the call; silence for :data:`DROP_S` is a dropped call, ended on
both sides.

The models are shared: the console builds the offer, the agent checks a command's arguments with
it, and the kiosk reads the journal's arguments through it again.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

CALL_OFFER = "call_offer"
CHANNEL = "call"
PING = "ping"
BYE = "bye"
PING_S = 1.0
DROP_S = 5.0
"""No message on the data channel for this long: the call dropped; both sides end it."""
MAX_SDP = 16 * 1024
MAX_STAFF = 40
ANSWER_TIMEOUT_S = 30.0

CONSENT_YES = "consent:yes"
CONSENT_NO = "consent:no"
"""The kiosk's data-channel messages when the call is to be recorded (``CallOffer.record``):
the resident's answer to the consent question, asked on screen and spoken before anything is
recorded. The technician's page records only after ``consent:yes``; the kiosk's ``evt/call_end``
carries the answer too (``CallEndEvent.consent``), and the console keeps no recording of a call
the kiosk does not say ``yes`` for."""
RECORD_CHUNK_S = 5.0
"""The technician's page uploads the recording in pieces this long, so a crash loses little."""

REFUSALS = frozenset({"no_help_request", "maintenance", "busy", "unsupported", "bad_args"})
"""Why a kiosk refuses a call (the failed result's ``reason``)."""


def _plain_sdp(value: str) -> str:
    if not value.startswith("v=0"):
        raise ValueError("an SDP starts with v=0")
    if any(unicodedata.category(c)[0] == "C" and c not in "\r\n" for c in value):
        raise ValueError("control characters in the SDP")
    return value


class CallOffer(BaseModel):
    """The ``call_offer`` command's arguments."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sdp: str = Field(min_length=10, max_length=MAX_SDP)
    staff: str = Field(min_length=1, max_length=MAX_STAFF)
    record: bool = False
    """The deployment records calls (the console's ``call_recording``): the kiosk asks the
    resident's consent first and says the answer on the data channel."""
    record_days: int = Field(default=0, ge=0, le=3650)
    """How long the console keeps a recording (``call_recording_days``), told to the resident."""

    @field_validator("sdp")
    @classmethod
    def _sdp(cls, value: str) -> str:
        return _plain_sdp(value)

    @field_validator("staff")
    @classmethod
    def _one_plain_line(cls, value: str) -> str:
        value = value.strip()
        if not value or any(unicodedata.category(c)[0] == "C" for c in value):
            raise ValueError("the staff name is one plain line")
        return value

    def args(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class CallAnswer(BaseModel):
    """The kiosk's answer: the ``succeeded`` result's detail of a ``call_offer``."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    sdp: str = Field(min_length=10, max_length=MAX_SDP)
    type: str = Field(pattern="^answer$")

    @field_validator("sdp")
    @classmethod
    def _sdp(cls, value: str) -> str:
        return _plain_sdp(value)


SCREEN_EVERY_S = 3.0
"""During a call the technician's page asks for the kiosk's current screen this often."""
SCREEN_TIMEOUT_S = 20.0


class ScreenArgs(BaseModel):
    """The ``screenshot`` command's arguments: none (the attract screen only, as ever), or the
    id of the call in progress: then the kiosk's current screen, whatever the session shows
    (masked as on the kiosk), so that the staff member can guide the resident through it. The
    kiosk takes it only while that call is talking."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    call: str | None = Field(default=None, pattern=r"^[0-9a-f-]{1,64}$")

    def args(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


def parse_screen_args(args: dict[str, Any]) -> ScreenArgs | None:
    try:
        return ScreenArgs.model_validate(args)
    except ValidationError:
        return None


def parse_offer(args: dict[str, Any]) -> CallOffer | None:
    """The offer these arguments hold, or None if they are not a valid one."""
    try:
        return CallOffer.model_validate(args)
    except ValidationError:
        return None
