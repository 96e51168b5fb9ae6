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
    NATIONS,
    PHOTO_LENGTH,
    RESIDENT_LAYOUT,
    SEX,
    TEXT_LENGTH,
    Layout,
    id_check_digit,
)
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


def synthetic_id_number(region: str, birth: dt.date, serial: int) -> str:
    """An 18-character number with a valid check character: region, birth date, serial."""
    first17 = f"{region}{birth:%Y%m%d}{serial:03d}"
    return first17 + id_check_digit(first17)


DEMO_RESIDENT = Identity(
    card_type=CardType.RESIDENT,
    name="张秀英",
    id_number=synthetic_id_number("320115", dt.date(1956, 3, 8), 128),
    sex="女",
    nation="汉",
    birth_date=dt.date(1956, 3, 8),
    address="江苏省南京市江宁区秣陵街道示例村委会12号",
    authority="南京市公安局江宁分局",
    valid_from=dt.date(2016, 5, 20),
    valid_to=None,
)
"""An invented resident of 70, with a long-term card: the demo and test card."""


SYNTHETIC_RESIDENTS: tuple[Identity, ...] = (
    DEMO_RESIDENT,
    Identity(
        card_type=CardType.RESIDENT,
        name="李建国",
        id_number=synthetic_id_number("370303", dt.date(1962, 10, 1), 31),
        sex="男",
        nation="汉",
        birth_date=dt.date(1962, 10, 1),
        address="山东省淄博市高新区四宝山街道示例社区 7 号楼 301",
        authority="淄博市公安局高新区分局",
        valid_from=dt.date(2012, 6, 1),
        valid_to=None,
    ),
    Identity(
        card_type=CardType.RESIDENT,
        name="马晓梅",
        id_number=synthetic_id_number("370303", dt.date(1990, 4, 17), 46),
        sex="女",
        nation="回",
        birth_date=dt.date(1990, 4, 17),
        address="山东省淄博市高新区四宝山街道示例村 22 号",
        authority="淄博市公安局高新区分局",
        valid_from=dt.date(2020, 8, 3),
        valid_to=dt.date(2040, 8, 3),
    ),
)
"""The invented residents of the demo dataset (the demo card and two neighbours)."""


DEMO_HMT = Identity(
    card_type=CardType.HMT_PERMIT,
    name="陈嘉欣",
    id_number=synthetic_id_number("810000", dt.date(1988, 7, 21), 64),
    sex="女",
    nation="",  # the permit has no nationality field
    birth_date=dt.date(1988, 7, 21),
    address="江苏省苏州市工业园区示例路88号",
    authority="苏州市公安局",
    valid_from=dt.date(2021, 3, 1),
    valid_to=dt.date(2026, 3, 1),
)
"""An invented Hong Kong resident with a residence permit (card type "J")."""

DEMO_FOREIGN = Identity(
    card_type=CardType.FOREIGN_PERMANENT,
    name="米安娜",
    id_number="CAN320170510012",
    sex="女",
    nation="CAN",
    birth_date=dt.date(1970, 5, 10),
    authority="3200",  # the accepting authority's code, as the card holds it
    valid_from=dt.date(2018, 1, 15),
    valid_to=dt.date(2028, 1, 15),
)
"""An invented permanent resident with a 2017-edition card (card type "I")."""

DEMO_FOREIGN_2023 = Identity(
    card_type=CardType.FOREIGN_PERMANENT,
    name="MILLER ANNA MARIA",
    id_number=synthetic_id_number("932124", dt.date(1980, 6, 15), 12),
    sex="女",
    nation="CAN",
    birth_date=dt.date(1980, 6, 15),
    valid_from=dt.date(2024, 2, 1),
    valid_to=dt.date(2034, 2, 1),
)
"""An invented permanent resident with a 2023-edition card (card type "Y"), no Chinese name."""

SYNTHETIC_CARDS: dict[str, Identity] = {
    "demo": DEMO_RESIDENT,
    "neighbour": SYNTHETIC_RESIDENTS[1],
    "neighbour2": SYNTHETIC_RESIDENTS[2],
    "hmt": DEMO_HMT,
    "foreign": DEMO_FOREIGN,
    "foreign2023": DEMO_FOREIGN_2023,
}
"""Cards by name, for the simulator's control port and ``make run``."""
