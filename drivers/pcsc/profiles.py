"""Card profiles as data: where on a card each field of an identity lives.

The social security card (社会保障卡): the public specification (人力资源社会保障部 社会保障卡
规范) confirms the application (AID ``7378312E73682EC9E7BBE1B1A3D5CF``, "sx1.sh.社会保障" in GBK),
its files EF05 (card data) and EF06 (holder data), and their records read by READ RECORD with
the record number as P1 and P2 = 04, each answered as a TLV whose tag is the record number:
EF06 08 social security number (= ID number, 18 ASCII), 09 name (30 bytes GBK), 0A sex, 0B
nation, 0D birth date (BCD YYYYMMDD); EF05 06 expiry (BCD). What varies by issuer: whether the
SELECT of the application answers 61xx (GET RESPONSE needed), record lengths padded with spaces
or 00, and whether a PIN must be verified before EF06 can be read (SW 6982): the driver reports
that as :class:`drivers.pcsc.apdu.SecurityNotSatisfied` with a resident-facing key.

How the field reads the card (published reader code and articles, see ``docs/hardware.md``):
after the application, EFs are selected with ``00 A4 02 00 02 EF 05`` (P1 = 02, an EF under the
current DF), which some cards refuse while others accept only P1 = 00; records are read with
``Le = 00`` or with the exact record length (a card may answer ``6Cxx`` with the length, or
``6700`` without); values shorter than their field are padded with spaces, ``00`` or ``FF``.
A :class:`CardProfile` says in which order to try the SELECT forms and how long each record is,
so a province's card is a profile, not code; the reader falls back through the other forms.

A station can map a local card without code: a :class:`CardProfile` is plain data (AID, files,
records, encodings, SELECT forms, record lengths), the generic ISO 7816-4 reading is the same.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flows.errors import ConfigError
from flows.models import CardType


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One identity field: in a record (READ RECORD, TLV answer) or at an offset (READ BINARY)."""

    field: str  # id_number, name, sex, nation, birth_date, valid_to
    fid: int
    record: int = 0  # READ RECORD number; 0: READ BINARY at offset/length
    encoding: str = "ascii"  # ascii, gbk, bcd_date, code
    offset: int = 0
    length: int = 0


SELECT_FORMS = ("in_df", "by_id", "by_path")
"""How an EF is selected: ``in_df`` P1 = 02 (an EF under the current DF, the field's practice),
``by_id`` P1 = 00 (by file identifier), ``by_path`` P1 = 09 (path from the current DF) or, when
the profile knows the application's path from the MF (``df_path``), P1 = 08."""


@dataclass(frozen=True, slots=True)
class CardProfile:
    name: str
    card_type: CardType
    aid: bytes
    fields: tuple[FieldSpec, ...]
    select_forms: tuple[str, ...] = SELECT_FORMS  # tried in this order
    record_lengths: tuple[tuple[int, int], ...] = ()  # (record, whole TLV length) for exact Le
    df_path: bytes = b""  # the application's path from the MF, for SELECT by path (P1 = 08)

    def record_length(self, record: int) -> int:
        """The whole length (tag, length, value) of ``record``, 0 when the profile does not say."""
        return dict(self.record_lengths).get(record, 0)


SOCIAL_SECURITY_SIZES = {0x08: 18, 0x09: 30, 0x0A: 1, 0x0B: 1, 0x0D: 4, 0x06: 4}
"""Value lengths of the records read (社会保障卡文件结构和数据项 V2.0): number an18, name an30,
sex an1, nation cn1, birth date cn4, expiry cn4."""

SOCIAL_SECURITY = CardProfile(
    name="social_security",
    card_type=CardType.SOCIAL_SECURITY,
    aid=bytes.fromhex("7378312E73682EC9E7BBE1B1A3D5CF"),
    fields=(
        FieldSpec("id_number", 0xEF06, 0x08, "ascii"),
        FieldSpec("name", 0xEF06, 0x09, "gbk"),
        FieldSpec("sex", 0xEF06, 0x0A, "code"),
        FieldSpec("nation", 0xEF06, 0x0B, "code"),
        FieldSpec("birth_date", 0xEF06, 0x0D, "bcd_date"),
        FieldSpec("valid_to", 0xEF05, 0x06, "bcd_date"),
    ),
    record_lengths=tuple((record, size + 2) for record, size in SOCIAL_SECURITY_SIZES.items()),
)

PADDING = b" \x00\xff"
"""What pads a value to its field's length: spaces, 00 (``an`` data) or FF (``cn`` data)."""


def decode(value: bytes, encoding: str) -> str | dt.date | None:
    if encoding == "ascii":
        return value.strip(PADDING).decode("ascii", errors="strict")
    if encoding == "gbk":  # GBK's second bytes are 40-FE: stripping bytes never cuts a character
        return value.strip(PADDING).decode("gbk", errors="strict")
    if encoding == "code":  # one byte: an ASCII digit or a binary number
        if len(value) == 1:
            return chr(value[0]) if 0x30 <= value[0] <= 0x39 else f"{value[0]:02d}"
        return value.decode("ascii").strip()
    if encoding == "bcd_date":
        digits = value.hex()
        if not digits.strip("0f"):
            return None
        return dt.datetime.strptime(digits[:8], "%Y%m%d").date()
    raise ValueError(f"unknown encoding {encoding!r}")


def encode(
    value: str | dt.date | None, encoding: str, size: int = 0, padding: bytes = b" "
) -> bytes:
    """The inverse of :func:`decode` (for the virtual card), padded to ``size``."""
    if encoding == "bcd_date":
        return (
            bytes.fromhex(value.strftime("%Y%m%d")) if isinstance(value, dt.date) else b"\xff" * 4
        )
    text = str(value or "")
    if encoding == "code":
        return bytes([int(text)]) if text.isdigit() and len(text) == 2 else text.encode("ascii")
    raw = text.encode("gbk" if encoding == "gbk" else "ascii")
    return raw.ljust(size, padding) if size else raw


FIELDS = frozenset({"id_number", "name", "sex", "nation", "birth_date", "valid_to"})
ENCODINGS = frozenset({"ascii", "gbk", "bcd_date", "code"})


def load_profile(path: Path) -> CardProfile:
    """A station's own card described in TOML, so it can be mapped without code::

        name = "county_citizen_card"
        aid = "A0000000031010"
        [[fields]]
        field = "id_number"      # id_number, name, sex, nation, birth_date, valid_to
        fid = "0101"             # the elementary file, hex
        offset = 30              # READ BINARY ...
        length = 18
        encoding = "ascii"       # ascii, gbk, bcd_date, code
        # or: record = 8         # READ RECORD 8, answered as a TLV with tag 8
        #     length = 18        # (optional) its value's length, for cards that need exact Le
        select = ["in_df", "by_id", "by_path"]   # (optional) SELECT forms in the order to try

    A mistake names the file, the field and what is allowed.
    """

    def fail(where: str, rule: str) -> ConfigError:
        return ConfigError(f"{path}: {where}: {rule}")

    try:
        data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise fail("(file)", f"cannot be read as TOML ({err})") from err
    try:
        aid = bytes.fromhex(str(data["aid"]))
    except (KeyError, ValueError) as err:
        raise fail("aid", "required, hex digits (5 to 16 bytes)") from err
    if not 5 <= len(aid) <= 16:
        raise fail("aid", "must be 5 to 16 bytes")
    select = data.get("select", list(SELECT_FORMS))
    if (
        not isinstance(select, list)
        or not select
        or any(form not in SELECT_FORMS for form in select)
        or len(set(select)) != len(select)
    ):
        raise fail("select", f"a list of distinct SELECT forms, each one of {list(SELECT_FORMS)}")
    specs = []
    lengths: dict[int, int] = {}
    raw_fields = data.get("fields")
    if not isinstance(raw_fields, list) or not raw_fields:
        raise fail("fields", "at least one [[fields]] table is required")
    for i, item in enumerate(raw_fields):
        where = f"fields[{i}]"
        field = item.get("field")
        if field not in FIELDS:
            raise fail(f"{where}.field", f"must be one of {sorted(FIELDS)}")
        encoding = item.get("encoding", "ascii")
        if encoding not in ENCODINGS:
            raise fail(f"{where}.encoding", f"must be one of {sorted(ENCODINGS)}")
        try:
            fid = int(str(item["fid"]), 16)
        except (KeyError, ValueError) as err:
            raise fail(f"{where}.fid", "required, a file id in hex such as 0101") from err
        record = int(item.get("record", 0))
        offset, length = int(item.get("offset", 0)), int(item.get("length", 0))
        if not 0 <= record <= 254 or (record == 0 and not 0 < length <= 255) or offset < 0:
            raise fail(where, "needs record (1-254) or offset and length (1-255)")
        if record and length:
            if not 0 < length <= 253:
                raise fail(f"{where}.length", "a record's value is 1 to 253 bytes")
            lengths[record] = length + 2
        specs.append(FieldSpec(field, fid, record, encoding, offset, 0 if record else length))
    if not {"id_number", "name"} <= {s.field for s in specs}:
        raise fail("fields", "must map at least id_number and name")
    return CardProfile(
        str(data.get("name", path.stem)),
        CardType.SOCIAL_SECURITY,
        aid,
        tuple(specs),
        select_forms=tuple(select),
        record_lengths=tuple(sorted(lengths.items())),
    )
