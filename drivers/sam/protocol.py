"""The public serial protocol of the ID-card security module (SAM) in GA 467 readers.

Frames: preamble ``AA AA AA 96 69``, two length bytes (high first) counting what follows, then
``CMD Para Data CHK`` to the module or ``SW1 SW2 SW3 Data CHK`` back. CHK is the XOR of every byte
after the preamble (the length bytes included) up to CHK. SW3 ``90`` is success, ``9F`` "card
found"; every other status is its own typed error with a resident-facing translation key, so
that a caller can tell "no card" from "the module is not licensed" without reading English.

The base information of a card is 256 bytes of UCS-2LE text in fixed fields, followed by a
1024-byte encrypted photo (the decoder is licensed and pluggable; none ships, the bytes are kept).
Four layouts share those 256 bytes; the card-type character at byte 248 tells them apart, and a
layout that is not recognised is refused rather than read as a resident card.

Nothing in this module does I/O: the reader (:mod:`drivers.sam.reader`) and the simulator
(:mod:`drivers.sam.simulator`) both build on it, and the property tests feed it random bytes.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from flows.errors import DeviceError, ProtocolError
from flows.identity import NATIONS, SEX, valid_id_number
from flows.models import CardType, Identity

PREAMBLE = b"\xaa\xaa\xaa\x96\x69"
HEADER = len(PREAMBLE) + 2
MIN_LENGTH = 3  # CMD Para CHK; an answer needs at least SW1 SW2 SW3 CHK
MAX_LENGTH = 0x0A00  # the longest answer (base info + photo + fingerprint) fits well below
READ_ANSWER_BYTES = 2400  # a frame answering 30 xx is at most this long (with fingerprints)

# commands: (CMD, Para)
RESET_SAM = (0x10, 0xFF)
SAM_STATUS = (0x11, 0xFF)
SAM_ID = (0x12, 0xFF)
FIND_CARD = (0x20, 0x01)
SELECT_CARD = (0x20, 0x02)
READ_BASE = (0x30, 0x01)
READ_ADDRESS = (0x30, 0x03)
SET_BAUD = 0x60

BAUD_CODES = {115200: 0x00, 57600: 0x01, 38400: 0x02, 19200: 0x03, 9600: 0x04}


def baud_command(baud: int) -> tuple[int, int]:
    """The command that switches the module to ``baud`` (it answers at the old rate)."""
    try:
        return (SET_BAUD, BAUD_CODES[baud])
    except KeyError as err:
        raise ValueError(f"the module offers {sorted(BAUD_CODES)} baud, not {baud}") from err


SW_OK = 0x90
SW_CARD_FOUND = 0x9F
SW_NO_CONTENT = 0x91


# --- errors -------------------------------------------------------------------------------------


class FrameError(ProtocolError):
    """Bytes that are not a valid frame: bad checksum, impossible length."""

    translation_key = "error.sam.communication"


class SamError(DeviceError):
    """A status the module answered, other than success. ``code`` is SW3."""

    translation_key = "error.sam.failed"
    code = 0x00
    meaning = "the module answered an undocumented status"

    def __init__(self, code: int | None = None, message: str = "") -> None:
        if code is not None:
            self.code = code
        super().__init__(message or f"SAM status {self.code:02X}: {self.meaning}")


class SamCommunicationError(SamError, ProtocolError):
    """The module says our frame was wrong: a wire problem, worth asking again."""

    translation_key = "error.sam.communication"


class SamChecksumRejected(SamCommunicationError):
    code = 0x10
    meaning = "the module found a wrong checksum in the command"


class SamLengthRejected(SamCommunicationError):
    code = 0x11
    meaning = "the module found a wrong length, or timed out receiving the command"


class SamCommandRejected(SamCommunicationError):
    code = 0x21
    meaning = "the module received an invalid command or parameter"


class SamModuleError(SamError):
    """The module itself cannot work: a technician is needed, asking again will not help."""

    translation_key = "error.sam.module"


class SamOperationNotPermitted(SamModuleError):
    code = 0x23
    meaning = "the operation exceeds the module's rights"


class SamUnrecognisedError(SamModuleError):
    code = 0x24
    meaning = "the module reported an unrecognised error"


class SamSelfTestFailed(SamModuleError):
    code = 0x60
    meaning = "the module failed its self-test and accepts no command"


class SamLoginFailed(SamModuleError):
    code = 0x61
    meaning = "user login to the module failed"


class SamNotAuthorised(SamModuleError):
    code = 0x66
    meaning = "the module has no production keys (not authorised)"


class CardAuthError(SamError):
    """Card and module did not trust each other: a damaged or forged card."""

    translation_key = "error.sam.card_auth"


class CardRejectedModule(CardAuthError):
    code = 0x31
    meaning = "the card failed to authenticate the module"


class ModuleRejectedCard(CardAuthError):
    code = 0x32
    meaning = "the module failed to authenticate the card"


class CardInfoVerifyFailed(CardAuthError):
    code = 0x33
    meaning = "the information read from the card failed verification"


class CardReadError(SamError):
    """Reading did not complete, most often because the card moved: place it again."""

    translation_key = "error.sam.read_failed"


class CardNotFoundYet(CardReadError):
    code = 0x34
    meaning = "no card has been found yet, so the card cannot be operated on"


class CardReadFailed(CardReadError):
    code = 0x41
    meaning = "reading the card failed"


class CardRandomFailed(CardReadError):
    code = 0x47
    meaning = "getting a random number from the card failed"


class CardWriteFailed(CardReadError):
    code = 0x50
    meaning = "writing to the card failed"


class CardSelectFailed(CardReadError):
    code = 0x81
    meaning = "selecting the card failed"


class NoSuchContent(CardReadError):
    code = 0x91
    meaning = "the card holds no such item (e.g. no appended address)"


class UnknownCardType(SamError):
    translation_key = "error.sam.card_unknown"
    code = 0x40
    meaning = "the card on the reader is of an unrecognised type"


class CardNotFound(SamError):
    translation_key = "error.sam.no_card"
    code = 0x80
    meaning = "no card found on the reader"


STATUS_ERRORS: dict[int, type[SamError]] = {
    cls.code: cls
    for cls in (
        SamChecksumRejected,
        SamLengthRejected,
        SamCommandRejected,
        SamOperationNotPermitted,
        SamUnrecognisedError,
        CardRejectedModule,
        ModuleRejectedCard,
        CardInfoVerifyFailed,
        CardNotFoundYet,
        UnknownCardType,
        CardReadFailed,
        CardRandomFailed,
        CardWriteFailed,
        SamSelfTestFailed,
        SamLoginFailed,
        SamNotAuthorised,
        CardNotFound,
        CardSelectFailed,
        NoSuchContent,
    )
}
"""Every non-success SW3 the public documents of the module list, each its own type."""


def status_error(code: int) -> SamError:
    """The typed error for status ``code``; an undocumented code is a plain :class:`SamError`."""
    cls = STATUS_ERRORS.get(code)
    return cls() if cls is not None else SamError(code)


class CardDataError(ProtocolError):
    """The module answered success, but the card's text does not follow its layout."""

    translation_key = "error.sam.read_failed"


class InvalidIdNumber(CardDataError):
    """The number's check character is wrong: a corrupted read (or a forged card)."""


class UnsupportedCard(CardDataError):
    """A card-type field this driver has no layout for; never guessed as a resident card."""

    translation_key = "error.sam.card_unknown"


# --- frames -------------------------------------------------------------------------------------


def checksum(data: bytes) -> int:
    value = 0
    for byte in data:
        value ^= byte
    return value


def _frame(body: bytes) -> bytes:
    head = (len(body) + 1).to_bytes(2, "big")
    return PREAMBLE + head + body + bytes([checksum(head + body)])


def encode_command(command: tuple[int, int], data: bytes = b"") -> bytes:
    """A frame to the module: preamble, length, CMD, Para, data, CHK."""
    return _frame(bytes(command) + data)


def encode_response(sw3: int, data: bytes = b"", *, sw1: int = 0x00, sw2: int = 0x00) -> bytes:
    """A frame from the module (the simulator's side): SW1 SW2 SW3, data, CHK."""
    return _frame(bytes([sw1, sw2, sw3]) + data)


@dataclass(frozen=True, slots=True)
class Frame:
    """A decoded frame body (between the length and CHK, both excluded)."""

    body: bytes

    @property
    def command(self) -> tuple[int, int]:
        """For frames to the module: (CMD, Para)."""
        return (self.body[0], self.body[1]) if len(self.body) >= 2 else (-1, -1)

    @property
    def status(self) -> int:
        """For answers: SW3."""
        return self.body[2] if len(self.body) >= 3 else -1

    @property
    def data(self) -> bytes:
        """For answers: what follows SW3."""
        return self.body[3:]


class FrameDecoder:
    """Incremental decoder: feed bytes as they arrive, take whole frames out.

    Junk before a preamble is dropped (resynchronisation); a frame with an impossible length or a
    wrong checksum raises :class:`FrameError` after dropping its first byte only, so a real frame
    hidden behind a false preamble is still found on the next call. Every call consumes bytes or
    returns, so a loop over :meth:`next_frame` always ends.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self.skipped = 0  # junk bytes dropped, for the wire log

    def feed(self, data: bytes) -> None:
        self._buf += data

    def pending(self) -> int:
        return len(self._buf)

    def next_frame(self) -> Frame | None:
        start = self._buf.find(PREAMBLE)
        if start < 0:
            keep = len(PREAMBLE) - 1  # a preamble may be split across reads
            drop = max(0, len(self._buf) - keep)
            self.skipped += drop
            del self._buf[:drop]
            return None
        if start:
            self.skipped += start
            del self._buf[:start]
        if len(self._buf) < HEADER:
            return None
        length = int.from_bytes(self._buf[len(PREAMBLE) : HEADER], "big")
        if not MIN_LENGTH <= length <= MAX_LENGTH:
            self.skipped += 1
            del self._buf[:1]
            raise FrameError(f"impossible frame length {length}")
        end = HEADER + length
        if len(self._buf) < end:
            return None
        checked = bytes(self._buf[len(PREAMBLE) : end - 1])
        if checksum(checked) != self._buf[end - 1]:
            self.skipped += 1
            del self._buf[:1]
            raise FrameError("bad checksum")
        del self._buf[:end]
        return Frame(checked[2:])


# --- base information: layouts ------------------------------------------------------------------

TEXT_LENGTH = 256
PHOTO_LENGTH = 1024
ADDRESS_LENGTH = 70  # the answer to READ_ADDRESS: the latest appended address
CARD_TYPE_OFFSET = 248  # byte offset of the card-type character, the same in every layout

Layout = tuple[tuple[str, int], ...]  # (field, byte length), in order, 256 bytes in all

RESIDENT_LAYOUT: Layout = (
    ("name", 30),
    ("sex", 2),
    ("nation", 4),
    ("birth", 16),
    ("address", 70),
    ("id_number", 36),
    ("authority", 30),
    ("valid_from", 16),
    ("valid_to", 16),
    ("reserved", 36),  # holds the (blank) card-type character
)
"""中华人民共和国居民身份证."""

HMT_LAYOUT: Layout = (
    ("name", 30),
    ("sex", 2),
    ("reserved1", 4),
    ("birth", 16),
    ("address", 70),
    ("id_number", 36),
    ("authority", 30),
    ("valid_from", 16),
    ("valid_to", 16),
    ("pass_number", 18),  # 通行证号码
    ("issue_count", 4),  # 签发次数
    ("reserved2", 6),
    ("card_type", 2),  # "J"
    ("reserved3", 6),
)
"""港澳台居民居住证 (Hong Kong, Macao and Taiwan residents' residence permit)."""

FOREIGN_LAYOUT: Layout = (
    ("english_name", 120),
    ("sex", 2),
    ("id_number", 30),  # 15 characters: three letters, twelve digits
    ("nation", 6),  # nationality, ISO 3166 three-letter code
    ("name", 30),  # Chinese name, may be blank
    ("valid_from", 16),
    ("valid_to", 16),
    ("birth", 16),
    ("version", 4),
    ("authority", 8),  # code of the accepting authority
    ("card_type", 2),  # "I"
    ("reserved", 6),
)
"""外国人永久居留身份证, 2017 edition."""

FOREIGN_2023_LAYOUT: Layout = (
    ("name", 30),  # Chinese name, may be blank
    ("sex", 2),
    ("renewal_count", 4),
    ("birth", 16),
    ("english_name", 70),  # characters 1-35
    ("id_number", 36),  # 18 characters, first "9", GB 11643 check character
    ("reserved1", 30),
    ("valid_from", 16),
    ("valid_to", 16),
    ("english_name_ext", 22),  # characters 36-46
    ("nation", 6),
    ("card_type", 2),  # "Y"
    ("previous_number", 6),  # link to the holder's 15-character number of the 2017 edition
)
"""外国人永久居留身份证, 2023 edition."""

LAYOUTS: dict[str, tuple[CardType, Layout]] = {
    " ": (CardType.RESIDENT, RESIDENT_LAYOUT),
    "J": (CardType.HMT_PERMIT, HMT_LAYOUT),
    "I": (CardType.FOREIGN_PERMANENT, FOREIGN_LAYOUT),
    "Y": (CardType.FOREIGN_PERMANENT, FOREIGN_2023_LAYOUT),
}
"""Card-type character → layout. Residents' cards leave it blank (space or NUL)."""

LONG_TERM = "长期"

_FOREIGN_2017_NUMBER = re.compile(r"[A-Z]{3}\d{12}")


def split_text(text: str, layout: Layout) -> dict[str, str]:
    """The fields of ``layout`` in 128 characters of text, trailing blanks stripped."""
    fields: dict[str, str] = {}
    pos = 0
    for name, size in layout:
        fields[name] = text[pos // 2 : (pos + size) // 2].rstrip(" \x00")
        pos += size
    return fields


def _date(text: str, *, open_ended: bool = False) -> dt.date | None:
    if not text or (open_ended and text == LONG_TERM):
        return None
    if len(text) != 8 or not text.isascii() or not text.isdigit():
        raise CardDataError("a date field is not YYYYMMDD")
    try:
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError as err:
        raise CardDataError("a date field is not a calendar date") from err


def card_type_char(text: str) -> str:
    """The card-type character of 128 characters of base-info text (blank → " ")."""
    char = text[CARD_TYPE_OFFSET // 2]
    return " " if char in " \x00" else char


def parse_base_info(payload: bytes) -> Identity:
    """Parse the answer to READ_BASE: text length, photo length, text, photo.

    Raises :class:`CardDataError` (or its subclasses) for anything that does not follow a known
    layout, and never includes the card's text in an error message.
    """
    if len(payload) < 4:
        raise CardDataError("base information too short")
    text_len = int.from_bytes(payload[0:2], "big")
    photo_len = int.from_bytes(payload[2:4], "big")
    if text_len != TEXT_LENGTH or len(payload) < 4 + text_len + photo_len:
        raise CardDataError("base information has the wrong length")
    try:
        text = payload[4 : 4 + text_len].decode("utf-16-le")
    except UnicodeDecodeError as err:
        raise CardDataError("base information is not UCS-2 text") from err
    if len(text) != TEXT_LENGTH // 2:  # surrogate pairs: UTF-16, not the UCS-2 of the card
        raise CardDataError("base information is not UCS-2 text")
    photo = bytes(payload[4 + text_len : 4 + text_len + photo_len])
    char = card_type_char(text)
    if char not in LAYOUTS:
        raise UnsupportedCard(f"unknown card-type character U+{ord(char):04X}")
    card_type, layout = LAYOUTS[char]
    f = split_text(text, layout)
    number = f["id_number"]
    if char == "I":
        if not _FOREIGN_2017_NUMBER.fullmatch(number):
            raise InvalidIdNumber("the permit number is not three letters and twelve digits")
    elif not valid_id_number(number):
        raise InvalidIdNumber("the number's check character is wrong")
    elif char == "J" and number[:6] not in ("810000", "820000", "830000"):
        raise InvalidIdNumber("a residence permit number starts 810000, 820000 or 830000")
    if char in ("I", "Y"):
        english = (f["english_name"] + f.get("english_name_ext", "")).strip()
        name = f["name"] or english
        nation = f["nation"]
    else:
        name = f["name"]
        nation = "" if char == "J" else NATIONS.get(f["nation"], f["nation"])
    if not name:
        raise CardDataError("the name field is blank")
    return Identity(
        card_type=card_type,
        name=name,
        id_number=number,
        sex=SEX.get(f["sex"], f["sex"]),
        nation=nation,
        birth_date=_date(f["birth"]),
        address=f.get("address", ""),
        authority=f.get("authority", ""),
        valid_from=_date(f["valid_from"]),
        valid_to=_date(f["valid_to"], open_ended=True),
        photo=photo,
    )


def parse_appended_address(data: bytes) -> str:
    """Parse the answer to READ_ADDRESS: the latest address appended to the card, UCS-2LE."""
    if len(data) < ADDRESS_LENGTH:
        raise CardDataError("appended address too short")
    try:
        text = data[:ADDRESS_LENGTH].decode("utf-16-le")
    except UnicodeDecodeError as err:
        raise CardDataError("appended address is not UCS-2 text") from err
    return text.rstrip(" \x00")
