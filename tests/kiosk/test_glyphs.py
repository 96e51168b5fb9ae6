"""Every character the kiosk shows has a glyph in the kiosk's font (issue 20 point 9: the
maintenance screen's fault mark was drawn as a missing-glyph box).

The font is the one the kiosk uses (:func:`kiosk.fonts.find_cjk_font`); a character is missing
when PIL draws it exactly as it draws a code point no font has (the ``.notdef`` box).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from PIL import ImageFont

from kiosk import present
from kiosk.fonts import FontMissing, find_cjk_font
from kiosk.i18n import Translator
from kiosk.shell.maintenance import MaintenanceReport

REPO = Path(__file__).resolve().parents[2]
LOCALES = REPO / "assets" / "locales"
KV = sorted((REPO / "kiosk" / "ui").rglob("*.kv"))


@pytest.fixture(scope="module")
def missing() -> Callable[[str], set[str]]:
    try:
        font = ImageFont.truetype(str(find_cjk_font()), 40)
    except FontMissing:
        pytest.skip("the kiosk's font is not installed")
    box = bytes(font.getmask("\uffff"))

    def find(text: str) -> set[str]:
        chars = {c for c in text if not c.isspace() and ord(c) > 0x7F}
        return {c for c in chars if bytes(font.getmask(c)) == box}

    return find


def test_the_maintenance_marks_have_glyphs(missing: Callable[[str], set[str]]) -> None:
    report = MaintenanceReport(
        devices=(("thermal_printer", "fault", "paper_out"), ("a4_printer", "ok", "")),
        catalog_version=1,
        app_version="1",
        network=(),
        broker="",
        log_tail=(),
        last_action="",
    )
    for lang in ("zh", "en"):
        devices = present.maintenance_texts(report, lang, Translator())["devices"]
        assert missing(devices) == set(), devices


def test_every_kiosk_text_and_kv_literal_has_glyphs(missing: Callable[[str], set[str]]) -> None:
    for folder in ("zh_CN", "en"):
        with (LOCALES / folder / "LC_MESSAGES" / "kiosk.po").open("rb") as f:
            catalog = read_po(f)
        for message in catalog:
            if message.id and isinstance(message.string, str):
                assert missing(message.string) == set(), (folder, message.id)
    for kv in KV:
        literals = re.findall(r"'([^']*)'", kv.read_text(encoding="utf-8"))
        assert missing("".join(literals)) == set(), kv.name
