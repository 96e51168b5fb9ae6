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

A station can map a local card without code: a :class:`CardProfile` is plain data (AID, files,
records, encodings), the generic ISO 7816-4 reading is the same.
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


@dataclass(frozen=True, slots=True)
class CardProfile:
    name: str
    card_type: CardType
    aid: bytes
    fields: tuple[FieldSpec, ...]


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
)


def decode(value: bytes, encoding: str) -> str | dt.date | None:
    if encoding == "ascii":
        return value.decode("ascii", errors="strict").strip(" \x00")
    if encoding == "gbk":
        return value.decode("gbk", errors="strict").strip(" \x00")
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


def encode(value: str | dt.date | None, encoding: str, size: int = 0) -> bytes:
    """The inverse of :func:`decode` (for the virtual card)."""
    if encoding == "bcd_date":
        return (
            bytes.fromhex(value.strftime("%Y%m%d")) if isinstance(value, dt.date) else b"\xff" * 4
        )
    text = str(value or "")
    if encoding == "code":
        return bytes([int(text)]) if text.isdigit() and len(text) == 2 else text.encode("ascii")
    raw = text.encode("gbk" if encoding == "gbk" else "ascii")
    return raw.ljust(size, b" ") if size else raw


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
    specs = []
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
        specs.append(FieldSpec(field, fid, record, encoding, offset, length))
    if not {"id_number", "name"} <= {s.field for s in specs}:
        raise fail("fields", "must map at least id_number and name")
    return CardProfile(
        str(data.get("name", path.stem)), CardType.SOCIAL_SECURITY, aid, tuple(specs)
    )
