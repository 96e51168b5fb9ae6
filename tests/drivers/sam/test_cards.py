"""Base information: the four card layouts, round trips, check characters, refusals."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from drivers.sam import protocol as p
from drivers.sam.cards import (
    PLACEHOLDER_PHOTO,
    encode_appended_address,
    encode_base_info,
    encode_text,
)
from flows.models import CardType, Identity
from flows.synthetic import (
    DEMO_FOREIGN,
    DEMO_FOREIGN_2023,
    DEMO_HMT,
    DEMO_RESIDENT,
    SYNTHETIC_CARDS,
    synthetic_id_number,
)


def same(a: Identity, b: Identity) -> bool:
    return all(getattr(a, f.name) == getattr(b, f.name) for f in dataclasses.fields(Identity))


@pytest.mark.parametrize("key", sorted(SYNTHETIC_CARDS))
def test_every_synthetic_card_round_trips(key: str) -> None:
    card = SYNTHETIC_CARDS[key]
    photo = bytes(range(256)) * 4
    card = dataclasses.replace(card, photo=photo)
    parsed = p.parse_base_info(encode_base_info(card))
    assert same(parsed, card)


def test_the_layouts_are_256_bytes_with_the_type_at_248() -> None:
    for layout in (p.RESIDENT_LAYOUT, p.HMT_LAYOUT, p.FOREIGN_LAYOUT, p.FOREIGN_2023_LAYOUT):
        assert sum(size for _, size in layout) == p.TEXT_LENGTH
        offsets = {}
        pos = 0
        for name, size in layout:
            offsets[name] = pos
            pos += size
        assert offsets.get("card_type", p.CARD_TYPE_OFFSET) == p.CARD_TYPE_OFFSET


def test_resident_text_bytes_are_where_the_standard_puts_them() -> None:
    payload = encode_base_info(DEMO_RESIDENT)
    assert payload[:4] == bytes.fromhex("01000400")  # 256 text bytes, 1024 photo bytes
    text = payload[4:260]

    def field(offset: int, size: int) -> str:
        return text[offset : offset + size].decode("utf-16-le")

    assert field(0, 30) == "张秀英" + " " * 12
    assert field(30, 2) == "2"  # sex code: 女
    assert field(32, 4) == "01"  # nation code: 汉
    assert field(36, 16) == "19560308"
    assert field(122, 36) == DEMO_RESIDENT.id_number
    assert field(188, 16) == "20160520"
    assert field(204, 16) == "长期" + " " * 6
    assert field(248, 2) == " "  # a resident card leaves the card-type character blank
    assert payload[260:] == PLACEHOLDER_PHOTO


def test_demo_resident_fields() -> None:
    identity = p.parse_base_info(encode_base_info(DEMO_RESIDENT))
    assert identity.card_type is CardType.RESIDENT
    assert identity.name == "张秀英" and identity.id_number == DEMO_RESIDENT.id_number
    assert identity.sex == "女" and identity.nation == "汉"
    assert identity.birth_date == dt.date(1956, 3, 8)
    assert identity.address.startswith("江苏省南京市")
    assert identity.authority == "南京市公安局江宁分局"
    assert identity.valid_from == dt.date(2016, 5, 20)
    assert identity.valid_to is None  # 长期
    assert len(identity.photo) == p.PHOTO_LENGTH
    assert "张秀英" not in repr(identity) and DEMO_RESIDENT.id_number not in repr(identity)


def test_sex_and_nation_codes() -> None:
    assert p.SEX["1"] == "男" and p.SEX["2"] == "女"
    assert len(p.NATIONS) == 58 and len(set(p.NATIONS.values())) == 58
    assert [c for c in p.NATIONS if int(c) <= 56] == [f"{i:02d}" for i in range(1, 57)]
    assert p.NATIONS["97"] == "其他" and p.NATIONS["98"] == "外国血统中国籍人士"
    man = dataclasses.replace(DEMO_RESIDENT, sex="男", nation="朝鲜")
    parsed = p.parse_base_info(encode_base_info(man))
    assert parsed.sex == "男" and parsed.nation == "朝鲜"


def test_check_digit_is_verified() -> None:
    assert p.valid_id_number("11010519491231002X")  # the worked example of GB 11643
    assert not p.valid_id_number("110105194912310021")
    assert not p.valid_id_number("11010519491231002")
    assert synthetic_id_number("110105", dt.date(1949, 12, 31), 2) == "11010519491231002X"
    number = DEMO_RESIDENT.id_number
    wrong = number[:-1] + ("0" if number[-1] != "0" else "1")
    with pytest.raises(p.InvalidIdNumber) as err:
        p.parse_base_info(encode_base_info(dataclasses.replace(DEMO_RESIDENT, id_number=wrong)))
    assert number[:6] not in str(err.value)  # errors never carry the number


def test_permit_numbers_are_checked_too() -> None:
    wrong = DEMO_HMT.id_number[:-1] + ("1" if DEMO_HMT.id_number[-1] != "1" else "2")
    with pytest.raises(p.InvalidIdNumber):
        p.parse_base_info(encode_base_info(dataclasses.replace(DEMO_HMT, id_number=wrong)))
    with pytest.raises(p.InvalidIdNumber):
        p.parse_base_info(
            encode_base_info(dataclasses.replace(DEMO_FOREIGN, id_number="CA1320170510012"))
        )


def test_hmt_permit_is_parsed_as_such() -> None:
    identity = p.parse_base_info(encode_base_info(DEMO_HMT, pass_number="H12345678"))
    assert identity.card_type is CardType.HMT_PERMIT
    assert identity.id_number.startswith("810000") and identity.nation == ""
    assert identity.valid_to == dt.date(2026, 3, 1)


def test_foreign_cards_of_both_editions_are_parsed_as_such() -> None:
    old = p.parse_base_info(encode_base_info(DEMO_FOREIGN, english_name="MI ANNA"))
    assert old.card_type is CardType.FOREIGN_PERMANENT
    assert old.name == "米安娜" and old.nation == "CAN" and old.authority == "3200"
    assert old.address == ""
    text = encode_text(DEMO_FOREIGN, english_name="MI ANNA")
    assert text[:14].decode("utf-16-le") == "MI ANNA"  # the English name comes first
    new = p.parse_base_info(encode_base_info(DEMO_FOREIGN_2023))
    assert new.card_type is CardType.FOREIGN_PERMANENT
    assert new.name == "MILLER ANNA MARIA" and new.id_number.startswith("9")


def test_a_long_english_name_spans_both_fields_of_the_2023_edition() -> None:
    name = "VAN DER BERGHE-SANTOS ALEXANDRA MARIA JOHANNA"  # 46 characters
    card = dataclasses.replace(DEMO_FOREIGN_2023, name=name)
    assert p.parse_base_info(encode_base_info(card)).name == name


@pytest.mark.parametrize("char", ["I", "J", "Y"])
def test_a_resident_layout_under_another_type_is_never_read_as_a_resident(char: str) -> None:
    payload = encode_base_info(DEMO_RESIDENT, card_type_char=char)
    try:
        identity = p.parse_base_info(payload)
    except p.CardDataError:
        return
    assert identity.card_type is not CardType.RESIDENT


@pytest.mark.parametrize("char", ["Z", "1", "身"])
def test_unknown_card_types_are_refused(char: str) -> None:
    with pytest.raises(p.UnsupportedCard) as err:
        p.parse_base_info(encode_base_info(DEMO_RESIDENT, card_type_char=char))
    assert err.value.translation_key == "error.sam.card_unknown"


def test_broken_text_is_a_typed_error() -> None:
    payload = bytearray(encode_base_info(DEMO_RESIDENT))
    with pytest.raises(p.CardDataError):
        p.parse_base_info(bytes(payload[:100]))
    bad_date = bytearray(payload)
    bad_date[4 + 36 : 4 + 52] = "19561308".encode("utf-16-le")  # month 13
    with pytest.raises(p.CardDataError):
        p.parse_base_info(bytes(bad_date))
    surrogates = bytearray(payload)
    surrogates[4:8] = "😀".encode("utf-16-le")  # a surrogate pair is not UCS-2
    with pytest.raises(p.CardDataError):
        p.parse_base_info(bytes(surrogates))
    lone = bytearray(payload)
    lone[4:6] = b"\x00\xd8"  # a lone surrogate
    with pytest.raises(p.CardDataError):
        p.parse_base_info(bytes(lone))


def test_the_encoder_refuses_what_a_card_cannot_hold() -> None:
    with pytest.raises(ValueError):
        encode_base_info(dataclasses.replace(DEMO_RESIDENT, name="张" * 16))
    with pytest.raises(ValueError):
        encode_base_info(dataclasses.replace(DEMO_RESIDENT, card_type=CardType.SOCIAL_SECURITY))


def test_appended_address_round_trips() -> None:
    data = encode_appended_address("江苏省南京市玄武区示例路1号")
    assert len(data) == p.ADDRESS_LENGTH
    assert p.parse_appended_address(data) == "江苏省南京市玄武区示例路1号"
    with pytest.raises(p.CardDataError):
        p.parse_appended_address(data[:10])
