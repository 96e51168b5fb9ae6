"""Printer profiles from python-escpos' database, and lines wrapped by display width."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.escpos.layout import CLOSING, OPENING, text_width, wrap
from drivers.escpos.profiles import DEFAULT_PROFILE, load_profile
from flows.errors import ConfigError


@pytest.mark.parametrize(
    ("model", "width", "dots", "columns", "qr", "cutter"),
    [
        ("default", 58, 384, 32, "native", True),  # width unknown: the narrow paper
        ("NT-5890K", 58, 384, 32, "raster", False),  # Netum: no GS ( k in the database
        ("POS-5890", 58, 384, 32, "raster", False),  # Zjiang
        ("ZJ-5870", 58, 384, 32, "raster", False),  # ZiJiang
        ("NT-80-V-UL", 80, 576, 48, "native", True),  # the database says 12 columns: not used
        ("TM-T20II", 80, 576, 48, "native", True),
        ("TM-T88V", 80, 512, 42, "native", True),
        ("RP-F10-58mm", 58, 432, 36, "native", True),
        ("TM-U220", 58, 400, 33, "text", False),  # impact printer: no QR, no raster
    ],
)
def test_profiles_come_from_python_escpos(
    model: str, width: int, dots: int, columns: int, qr: str, cutter: bool
) -> None:
    profile = load_profile(model)
    assert (profile.width_mm, profile.dots, profile.columns) == (width, dots, columns)
    assert (profile.qr, profile.cutter, profile.status) == (qr, cutter, "auto")


def test_the_station_settles_what_the_database_does_not_know() -> None:
    assert DEFAULT_PROFILE.columns == 32
    wide = load_profile("default", width_mm=80, status="none")
    assert (wide.dots, wide.columns, wide.status) == (576, 48, "none")
    assert load_profile("NT-5890K", width_mm=80).columns == 48  # the station knows better
    # the database's shared data is not changed by a profile's width
    assert load_profile("default").escpos_profile().profile_data["media"]["width"]["pixels"] == 384
    assert (
        load_profile("default", width_mm=80)
        .escpos_profile()
        .profile_data["media"]["width"]["pixels"]
        == 576
    )
    assert load_profile("default").escpos_profile().profile_data["media"]["width"]["pixels"] == 384


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"model": "XP-58"}, "not in python-escpos"),
        ({"width_mm": 76}, "58 or 80"),
        ({"status": "maybe"}, "auto, dle-eot, none"),
    ],
)
def test_wrong_profile_settings_are_config_errors(kwargs: dict[str, object], says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        load_profile(**kwargs)  # type: ignore[arg-type]


# --- wrapping -----------------------------------------------------------------------------------


def test_a_han_character_is_two_columns_and_ambiguous_ones_too() -> None:
    assert text_width("abc") == 3
    assert text_width("证明") == 4
    assert text_width("“—·”") == 8  # a terminal says 4; a GB18030 printer prints them full width


def test_the_notice_line_that_broke_on_58_mm() -> None:
    text = "This certifies the record above. Printed by a self-service terminal."
    lines = wrap(text, 32)
    assert lines == ["This certifies the record above.", "Printed by a self-service", "terminal."]


def test_chinese_punctuation_never_starts_a_line() -> None:
    # 15 Han characters fill 30 columns; the full stop would be the 16th pair: it stays
    text = "请携带本人居民身份证原件及复印件。然后到窗口"
    lines = wrap(text, 32)
    assert all(line[0] not in CLOSING for line in lines)
    assert all(line[-1] not in OPENING for line in lines)
    assert "".join(lines) == text
    lines = wrap("一二三四五六七八九十一二三四五（原件）", 32)
    assert lines == ["一二三四五六七八九十一二三四五", "（原件）"]


def test_numbers_dates_and_document_numbers_stay_whole() -> None:
    lines = wrap("取号时间: 2026-12-05 14:30 编号: SO20261205ABCDEF", 20)
    assert "2026-12-05" in lines[0] + lines[1] and any("SO20261205ABCDEF" in x for x in lines)
    assert all(text_width(line) <= 20 for line in lines)


def test_enumerations_and_labels_hang() -> None:
    lines = wrap("2. 医院出具的残疾评定诊断证明（原件）", 24)
    assert lines == ["2. 医院出具的残疾评定诊", "   断证明（原件）"]
    lines = wrap("地点: 街道便民服务中心三号窗口", 24)
    assert lines == ["地点: 街道便民服务中心三", "      号窗口"]
    assert wrap("地点: 街道便民服务中心三号窗口", 24, indent=False)[1] == "号窗口"
    assert wrap("办理地点: 街道便民服务中心三号窗口", 24)[1] == "心三号窗口"  # too long a label


def test_a_word_longer_than_the_line_is_the_only_thing_cut() -> None:
    assert wrap("KIOSK-DOC:ABCDEFGHIJKLMNOPQRSTUVWXYZ", 16) == [
        "KIOSK-DOC:ABCDEF",
        "GHIJKLMNOPQRSTUV",
        "WXYZ",
    ]


# a word, then maybe one mark: marks follow words, as in the texts a receipt prints (a pile of
# marks such as "， ,AA ，，" can have no break that keeps every rule, and is not what we print)
_WORDS = st.tuples(
    st.one_of(
        st.from_regex(r"[A-Za-z]{1,14}", fullmatch=True),
        st.from_regex(r"[0-9]{1,8}([.:-][0-9]{1,4})?", fullmatch=True),
        st.text(alphabet="证明材料原件复印窗口办理社会保险", min_size=1, max_size=8),
    ),
    st.sampled_from(
        ["", "", "", "，", "。", "、", "：", "（原件）", "《办法》", ",", ".", "(s)", "—"]
    ),
).map("".join)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(_WORDS, st.booleans()), min_size=1, max_size=30),
    st.sampled_from([16, 24, 32, 48]),
)
def test_wrapping_keeps_every_word_within_the_width(
    pieces: list[tuple[str, bool]], columns: int
) -> None:
    text = "".join(word + (" " if space else "") for word, space in pieces).strip()
    lines = wrap(text, columns)
    assert all(text_width(line) <= columns for line in lines)
    assert re.sub(r"\s+", "", "".join(lines)) == re.sub(r"\s+", "", text)  # nothing lost
    if all(len(run) <= columns // 2 for run in re.findall(r"[!-~]+", text)):
        # (a run wider than the line is cut by width, where the rule may not hold)
        for line in lines[1:]:
            assert line.lstrip()[:1] not in CLOSING
    for word in re.findall(r"[!-~]+", text):  # runs of ASCII: words, numbers and their marks
        if len(word) + 4 <= columns - columns // 3:  # one that fits a line is never cut
            assert any(word in line for line in lines), (word, lines)


def test_the_first_line_does_not_hang_when_its_first_piece_is_cut() -> None:
    # a label ("0:") makes continuation lines hang; a first piece wider than the line was cut
    # after an empty flush, which indented the first line as well
    assert wrap("0:0000ABCDEFGHIJKLMNOPQRSTUV", 16)[0] == "0:0000ABCDEFGHIJ"
