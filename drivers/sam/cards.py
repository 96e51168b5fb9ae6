"""Synthetic ID cards for the simulator and tests: the exact inverse of the base-info parser.

Every person here is invented; the numbers carry valid check characters but belong to no one.
Encoding goes through the same layout tables the parser reads, so a field moved in one place is
moved in both, and the round-trip tests catch any drift.
"""

from __future__ import annotations

import datetime as dt

from drivers.sam.protocol import (
    ADDRESS_LENGTH,
    CARD_TYPE_OFFSET,
    FOREIGN_2023_LAYOUT,
    FOREIGN_LAYOUT,
    HMT_LAYOUT,
    LONG_TERM,
    PHOTO_LENGTH,
    RESIDENT_LAYOUT,
    TEXT_LENGTH,
    Layout,
)
from flows.identity import NATIONS, SEX
from flows.models import CardType, Identity

PLACEHOLDER_PHOTO = b"WLF" + bytes(PHOTO_LENGTH - 3)  # an encrypted photo is opaque anyway


def _code(table: dict[str, str], value: str) -> str:
    for code, name in table.items():
        if name == value:
            return code
    return value


def _date(value: dt.date | None) -> str:
    return LONG_TERM if value is None else value.strftime("%Y%m%d")


def _layout_for(identity: Identity) -> tuple[str, Layout]:
    if identity.card_type is CardType.RESIDENT:
        return " ", RESIDENT_LAYOUT
    if identity.card_type is CardType.HMT_PERMIT:
        return "J", HMT_LAYOUT
    if identity.card_type is CardType.FOREIGN_PERMANENT:
        if len(identity.id_number) == 18:
            return "Y", FOREIGN_2023_LAYOUT
        return "I", FOREIGN_LAYOUT
    raise ValueError(f"{identity.card_type.value} cards are not read through a SAM")


def encode_text(
    identity: Identity,
    *,
    card_type_char: str | None = None,
    english_name: str = "",
    pass_number: str = "",
    issue_count: int = 0,
    version: str = "01",
) -> bytes:
    """The 256 text bytes of ``identity``'s card in the layout of its card type.

    ``card_type_char`` overrides the card-type character (tests forge other layouts with it).
    For foreign cards an ASCII ``identity.name`` is the English name; otherwise it is the
    Chinese name and ``english_name`` fills the English one.
    """
    char, layout = _layout_for(identity)
    values = {
        "name": identity.name,
        "sex": _code(SEX, identity.sex),
        "nation": identity.nation,
        "birth": "" if identity.birth_date is None else _date(identity.birth_date),
        "address": identity.address,
        "id_number": identity.id_number,
        "authority": identity.authority,
        "valid_from": "" if identity.valid_from is None else _date(identity.valid_from),
        "valid_to": _date(identity.valid_to),
        "pass_number": pass_number,
        "issue_count": f"{issue_count:02d}",
        "version": version,
        "renewal_count": "00",
        "card_type": char,
    }
    if char == " ":
        values["nation"] = _code(NATIONS, identity.nation)
    if char in ("I", "Y"):
        english = english_name
        if identity.name.isascii():
            english, values["name"] = identity.name, ""
        split = 35 if char == "Y" else 60
        values["english_name"], values["english_name_ext"] = english[:split], english[split:]
    chars: list[str] = []
    for name, size in layout:
        value, width = values.get(name, ""), size // 2
        if len(value) > width:
            raise ValueError(f"field {name} holds {width} characters, got {len(value)}")
        chars.append(value.ljust(width))
    text = "".join(chars)
    index = CARD_TYPE_OFFSET // 2
    text = text[:index] + (card_type_char or char) + text[index + 1 :]
    raw = text.encode("utf-16-le")
    if len(raw) != TEXT_LENGTH:
        raise ValueError("text is not UCS-2 (a character outside the basic plane)")
    return raw


def encode_base_info(
    identity: Identity,
    *,
    card_type_char: str | None = None,
    english_name: str = "",
    pass_number: str = "",
    issue_count: int = 0,
) -> bytes:
    """The payload of a READ_BASE answer: lengths, 256 text bytes, 1024 photo bytes.

    The options are those of :func:`encode_text`.
    """
    raw = encode_text(
        identity,
        card_type_char=card_type_char,
        english_name=english_name,
        pass_number=pass_number,
        issue_count=issue_count,
    )
    photo = (identity.photo or PLACEHOLDER_PHOTO)[:PHOTO_LENGTH].ljust(PHOTO_LENGTH, b"\x00")
    return TEXT_LENGTH.to_bytes(2, "big") + PHOTO_LENGTH.to_bytes(2, "big") + raw + photo


def encode_appended_address(address: str) -> bytes:
    """The data of a READ_ADDRESS answer: the latest appended address, 70 bytes UCS-2LE."""
    if len(address) > ADDRESS_LENGTH // 2:
        raise ValueError(f"an appended address holds {ADDRESS_LENGTH // 2} characters")
    return address.ljust(ADDRESS_LENGTH // 2).encode("utf-16-le")
