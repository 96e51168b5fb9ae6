"""The keypad's focus without a screen: key codes from the config, reading order, labels and
roles, and a ring that stands out on any colour (issue 23)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flows.errors import ConfigError
from kiosk.config import DevicesSection, parse_config
from kiosk.ui.focus import (
    MIN_RING_CONTRAST,
    RING_DARK,
    RING_LIGHT,
    KeyMap,
    field_of,
    label_of,
    reading_order,
    ring_contrast,
    role_of,
)
from kiosk.ui.theme import contrast


@dataclass
class Box:
    """Where a control is, in window coordinates (what reading order reads)."""

    name: str
    x: float
    y: float
    width: float = 100
    height: float = 50

    def to_window(self, x: float, y: float) -> tuple[float, float]:
        return x, y


def test_reading_order_is_rows_from_the_top_each_left_to_right() -> None:
    # y grows upwards in Kivy: the top bar is highest
    boxes = [
        Box("cancel", 800, 10),
        Box("lang", 500, 1000),
        Box("help", 700, 1000),
        Box("tile-right", 600, 500, height=120),
        Box("tile-left", 100, 520, height=80),  # a shorter button of the same row
        Box("back", 100, 10),
        Box("next-row", 100, 300),
    ]
    order = [b.name for b in reading_order(boxes)]
    assert order == ["lang", "help", "tile-left", "tile-right", "next-row", "back", "cancel"]


def test_keys_come_from_the_devices_section_and_may_not_clash() -> None:
    keys = KeyMap.from_config(DevicesSection())
    assert [keys.action(c) for c in (273, 274, 8, 13, 271, 282, 270, 269)] == [
        "up",
        "down",
        "back",
        "select",
        "select",
        "help",
        "volume_up",
        "volume_down",
    ]
    assert keys.action(27) == ""  # Escape is not the keypad's: still swallowed
    custom = KeyMap.from_config(DevicesSection(key_select=[32], key_help=[104]))
    assert custom.action(32) == "select" and custom.action(13) == ""
    assert custom.action(104) == "help"
    with pytest.raises(ValueError, match="key code 274 is both key_down and key_select"):
        DevicesSection(key_select=[274])
    with pytest.raises(ValueError, match="headphones: set headphone_player_args"):
        DevicesSection(headphones="alsa:0")  # plugged in, the voice would have nowhere to go
    jack = DevicesSection(headphones="key", key_headphones=[104], headphone_player_args=["-D", "x"])
    assert KeyMap.from_config(jack).action(104) == "headphones"


def test_a_clashing_key_in_the_toml_is_a_configuration_mistake() -> None:
    with pytest.raises(ConfigError, match="key_back"):
        parse_config({"version": 1, "devices": {"key_back": [273]}}, source="kiosk.toml")


class Control:
    def __init__(self, text: str = "", **attrs: object) -> None:
        self.text = text
        for k, v in attrs.items():
            setattr(self, k, v)


def test_labels_are_the_words_on_the_control_without_markup_or_pictures() -> None:
    assert label_of(Control("[b]确认打印[/b]")) == "确认打印"
    assert label_of(Control("★★★★★ 非常满意")) == "非常满意"
    assert label_of(Control("Print &bl;A4&br;\nnow")) == "Print [A4] now"
    # a matter is named by its name, not the description drawn under it
    matter = Control(
        "[size=20]社保[/size]\n[size=10]打印本人…[/size]", service_code="x", name="社保"
    )
    assert label_of(matter) == "社保"
    assert label_of(Control("")) == ""
    assert (
        label_of(Control("中文", spoken="Chinese: switch to Chinese"))
        == "Chinese: switch to Chinese"
    )


def test_roles() -> None:
    assert role_of(Control("OK")) == "focus.role.button"
    assert role_of(Control("社保", service_code="a", glyph="")) == "focus.role.matter"
    assert role_of(Control("社保医保", service_code="b", glyph="\ue000")) == "focus.role.list"
    shut = Control("公积金（需要身份证）", service_code="c", glyph="", disabled=True)
    assert role_of(shut) == "focus.role.unavailable"
    on = Control("慢", group=None, allow_no_selection=True, state="down")
    assert role_of(on) == "focus.role.toggle_on"
    assert role_of(Control("慢", allow_no_selection=True, state="normal")) == (
        "focus.role.toggle_off"
    )


def test_the_ring_stands_out_on_the_themes_colours() -> None:
    from kiosk.ui.theme import Theme

    theme = Theme(width=1920, height=1080, diagonal_in=21.5, distance_mm=500)
    for name in ("bg", "fg", "primary", "secondary", "bar", "disabled", "danger"):
        rgb = tuple(getattr(theme, name)[:3])
        assert ring_contrast(rgb) >= MIN_RING_CONTRAST, name
    assert contrast(RING_DARK, RING_LIGHT) >= 7  # the two bands against each other


@given(st.tuples(*itertools.repeat(st.floats(0, 1), 3)))
def test_the_ring_stands_out_on_any_colour(rgb: tuple[float, float, float]) -> None:
    assert ring_contrast(rgb) >= MIN_RING_CONTRAST


def test_a_reading_views_fields_are_named_by_their_label_and_have_roles() -> None:
    field = Control("", reading_field=("姓名", "张**"), reading_role="focus.role.field")
    assert field_of(field) == ("姓名", "张**")
    assert label_of(field) == "姓名" and role_of(field) == "focus.role.field"
    heading = Control("社会保险参保证明", reading_field=("", "社会保险参保证明"))
    heading.reading_role = "focus.role.heading"
    assert label_of(heading) == "社会保险参保证明" and role_of(heading) == "focus.role.heading"
    row = Control("", reading_field=("年月 2026-06", "缴费基数 4200.00"), reading_role="")
    assert role_of(row) == "focus.role.field"  # a field unless it says otherwise
    # a cell of the table (or any label) is no stop; a button is a button
    assert field_of(Control("4200.00", reading_field=())) == ("", "")
    assert role_of(Control("OK", reading_field=())) == "focus.role.button"
