"""The technician's answer to a resident's help request (帮办), as the ``help_reply`` command.

A technician acknowledges a ``help_request`` alert on the console and may add one short answer;
the console sends it to the station as the ``help_reply`` command (target ``ui``), and the kiosk
shows and speaks it to the resident. The answer is one of three kinds, so that the kiosk can say
the two common ones in the resident's own language from its translations:

- ``on_the_way`` with ``minutes``: someone is coming, in about that many minutes;
- ``call`` with ``number``: please call this number;
- ``text``: a short free text (at most :data:`MAX_TEXT` characters, one line), shown and spoken
  as written. It is data, never markup: the kiosk escapes it before a label with markup sees it.

The model is shared: the console builds it from the form, the agent checks a command's arguments
with it, and the kiosk reads the journal's arguments through it again.
"""

from __future__ import annotations

import unicodedata
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

HELP_REPLY = "help_reply"
MAX_TEXT = 60
MAX_MINUTES = 240
PHONE_PATTERN = r"^[0-9+\- ]{3,20}$"  # as the catalog's help_phone

ReplyKind = Literal["on_the_way", "call", "text"]


class HelpReply(BaseModel):
    """The ``help_reply`` command's arguments."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: ReplyKind
    minutes: int | None = Field(default=None, ge=1, le=MAX_MINUTES)
    number: str | None = Field(default=None, pattern=PHONE_PATTERN)
    text: str | None = Field(default=None, min_length=1, max_length=MAX_TEXT)

    @field_validator("text")
    @classmethod
    def _one_plain_line(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if not value:
            raise ValueError("empty text")
        if any(unicodedata.category(c)[0] == "C" for c in value):
            raise ValueError("control characters (a line break, a tab) in the text")
        return value

    @model_validator(mode="after")
    def _what_its_kind_needs(self) -> HelpReply:
        needs = {"on_the_way": "minutes", "call": "number", "text": "text"}[self.kind]
        given = {f for f in ("minutes", "number", "text") if getattr(self, f) is not None}
        if given != {needs}:
            raise ValueError(f"a {self.kind} reply has {needs} and nothing else")
        return self

    def args(self) -> dict[str, Any]:
        """The command's ``args`` object (only the fields set)."""
        return self.model_dump(mode="json", exclude_none=True)


def parse_reply(args: dict[str, Any]) -> HelpReply | None:
    """The reply these arguments hold, or None if they are not a valid one."""
    try:
        return HelpReply.model_validate(args)
    except ValidationError:
        return None
