"""Values shared by the domain and the drivers: identities, device events and health, documents.

Everything here is immutable. Personal data (a resident's name and ID number) lives only inside an
:class:`Identity`, whose ``repr`` and ``str`` are masked so that it can never end up in a log line
by accident.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field
from typing import Any


class CardType(enum.StrEnum):
    RESIDENT = "resident"  # 中华人民共和国居民身份证
    FOREIGN_PERMANENT = "foreign_permanent"  # 外国人永久居留身份证
    HMT_PERMIT = "hmt_permit"  # 港澳台居民居住证
    SOCIAL_SECURITY = "social_security"  # 社会保障卡


def mask_name(name: str) -> str:
    """The first character and one star for each other character: 张三丰 -> 张**."""
    if not name:
        return ""
    return name[0] + "*" * (len(name) - 1)


def mask_id_number(number: str) -> str:
    """The first four and the last four characters, stars between: 3201**********1234."""
    if len(number) <= 8:
        return "*" * len(number)
    return number[:4] + "*" * (len(number) - 8) + number[-4:]


@dataclass(frozen=True, slots=True)
class Identity:
    """A resident as read from a card. Lives in memory for one session only."""

    card_type: CardType
    name: str = field(repr=False)
    id_number: str = field(repr=False)
    sex: str = field(default="", repr=False)
    nation: str = field(default="", repr=False)
    birth_date: dt.date | None = field(default=None, repr=False)
    address: str = field(default="", repr=False)
    authority: str = field(default="", repr=False)
    valid_from: dt.date | None = field(default=None, repr=False)
    valid_to: dt.date | None = field(default=None, repr=False)  # None: 长期, no end
    photo: bytes = field(default=b"", repr=False)

    @property
    def masked_name(self) -> str:
        return mask_name(self.name)

    @property
    def masked_id_number(self) -> str:
        return mask_id_number(self.id_number)

    def __repr__(self) -> str:
        return (
            f"Identity(card_type={self.card_type.value!r}, name={self.masked_name!r}, "
            f"id_number={self.masked_id_number!r})"
        )

    __str__ = __repr__


# --- device events: posted by drivers onto the flow's queue -------------------------------------


@dataclass(frozen=True, slots=True)
class ReaderConnected:
    device: str


@dataclass(frozen=True, slots=True)
class ReaderDisconnected:
    device: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class CardInserted:
    device: str


@dataclass(frozen=True, slots=True)
class IdentityRead:
    device: str
    identity: Identity


@dataclass(frozen=True, slots=True)
class CardRemoved:
    device: str


@dataclass(frozen=True, slots=True)
class DeviceFault:
    """A typed error from a device; ``translation_key`` is what the resident is told."""

    device: str
    translation_key: str
    detail: str = ""


DeviceEvent = (
    ReaderConnected | ReaderDisconnected | CardInserted | IdentityRead | CardRemoved | DeviceFault
)


# --- health -------------------------------------------------------------------------------------


class DeviceState(enum.StrEnum):
    OK = "ok"  # working
    DEGRADED = "degraded"  # working, but needs attention soon (paper low, toner low)
    FAULT = "fault"  # not working for a named reason (paper out, cover open)
    OFFLINE = "offline"  # unplugged or unreachable
    UNKNOWN = "unknown"  # no answer: never reported as fine


@dataclass(frozen=True, slots=True)
class DeviceHealth:
    """Health as data: what the agent reports and the home screen uses to disable services."""

    device: str
    kind: str  # id_reader, a4_printer, thermal_printer, speech, ...
    state: DeviceState
    reasons: tuple[str, ...] = ()
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def usable(self) -> bool:
        return self.state in (DeviceState.OK, DeviceState.DEGRADED)

    def as_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "kind": self.kind,
            "state": self.state.value,
            "reasons": list(self.reasons),
            "detail": dict(self.detail),
        }


# --- documents for the thermal printer ----------------------------------------------------------


class Align(enum.StrEnum):
    LEFT = "left"
    CENTER = "center"
    RIGHT = "right"


@dataclass(frozen=True, slots=True)
class ReceiptLine:
    """One line of text as the document says it; the driver wraps it to the paper's width."""

    text: str
    align: Align = Align.LEFT
    bold: bool = False
    double: bool = False  # double width and height
    rule: bool = False  # a rule across the paper, ``text`` (one character) repeated to the width


@dataclass(frozen=True, slots=True)
class Receipt:
    """A thermal receipt or ticket as data; the ESC/POS driver turns it into bytes."""

    lines: tuple[ReceiptLine, ...]
    qr: str | None = None  # printed after the lines, centred
    cut: bool = True


# --- print outcomes -----------------------------------------------------------------------------


class JobState(enum.StrEnum):
    PENDING = "pending"
    PRINTING = "printing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class PrintOutcome:
    job_state: JobState
    job_id: str = ""
    reasons: tuple[str, ...] = ()
    translation_key: str = ""  # set when the job did not complete

    @property
    def ok(self) -> bool:
        return self.job_state is JobState.COMPLETED


# --- records from document providers ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecordTable:
    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...] = field(repr=False)


@dataclass(frozen=True, slots=True)
class Record:
    """What a document provider answers for one service and one resident.

    ``fields`` are (bilingual label, value) pairs and may hold personal data, so they are kept
    out of ``repr``; the record lives in memory for the session only, like the identity.
    """

    service: str
    title_zh: str
    title_en: str
    fields: tuple[tuple[str, str], ...] = field(repr=False)
    table: RecordTable | None = None
    notes: tuple[str, ...] = ()
    issuer_zh: str = ""  # the agency the record is issued by (出具单位); the station only prints
    issuer_en: str = ""
