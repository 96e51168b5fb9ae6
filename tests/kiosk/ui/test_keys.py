"""Usable without sight (issue 23): the keypad drives whole journeys, everything focused is said.

``keys_app.py`` runs the real app on Xvfb and presses real X keys through XTEST (never a touch):
a certificate and a notice, in Chinese and in English, in one app start. The speech log (what
the voice was given, the captions' history) must hold, after every up or down key, the focused
control's role, label and position, in the session's language; the help key says the page and
the matter in focus; the still-there warning is answered by a key.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent


@pytest.mark.gui
@pytest.mark.slow
def test_a_certificate_and_a_notice_by_keys_alone_in_both_languages(
    tmp_path: Path, xvfb: str, artifacts: Path
) -> None:
    state = tmp_path / "state"
    config = tmp_path / "kiosk.toml"
    config.write_text(
        "version = 1\n"
        f'[state]\ndir = "{state}"\n'
        '[devices]\nspeech = "off"\n'
        "[ui]\nwidth = 1920\nheight = 1080\nshow_simulator_controls = false\n",
        encoding="utf-8",
    )
    shots = artifacts / "keys"
    shots.mkdir(exist_ok=True)
    report = tmp_path / "report.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(HERE / "keys_app.py"),
            "--config",
            str(config),
            "--artifacts",
            str(shots),
            "--display",
            xvfb,
            "--report",
            str(report),
        ],
        capture_output=True,
        text=True,
        env=dict(os.environ, DISPLAY=xvfb),
        timeout=600,
        check=False,
    )
    log = state / "logs" / "kiosk.log"
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:] + tail
    data = json.loads(report.read_text())
    presses = data["presses"]
    (artifacts / "keys" / "speech-log.json").write_text(json.dumps(presses, ensure_ascii=False))

    moves = [p for p in presses if p["key"] in ("up", "down") and "expected" in p]
    assert len(moves) > 40
    wrong = [p for p in moves if not p["ok"]]
    assert wrong == [], wrong[:5]
    for lang in ("zh", "en"):
        assert any(p["lang"] == lang for p in moves), lang
    zh = [p["said"] for p in moves if p["lang"] == "zh"]
    en = [p["said"] for p in moves if p["lang"] == "en"]
    assert any(s.startswith("按钮：") and "，第 " in s and " 项，共 " in s for s in zh), zh[:5]
    assert any(s.startswith("事项：社会保险参保证明，第 ") for s in zh), zh
    assert any(s.startswith("Button: ") and " of " in s for s in en), en[:5]
    # the language button is said in the voice's language, never as the other's script
    assert any(s.startswith("按钮：English，改用英文，第 ") for s in zh), zh
    assert not any("中文" in s for s in en), en
    # every screen of both journeys was walked by keys
    walked = {p["screen"] for p in moves}
    assert {"idle", "identify", "choose", "preview", "notice", "rate"} <= walked, walked
    # the help key: the page's summary and the matter's description, in both languages
    helps = [p for p in presses if p["key"] == "help"]
    assert {p["lang"] for p in helps} == {"zh", "en"}
    assert all(p["said_key"] == "focus.summary" for p in helps), helps
    assert any("本页有 " in p["said"] and "个事项" in p["said"] for p in helps), helps
    assert any("This page has " in p["said"] for p in helps), helps
    # the volume keys turn the voice up and down
    volume = [p["said_key"] for p in presses if p["key"].startswith("volume")]
    assert volume == ["prompt.louder", "prompt.softer"] * 2, volume
    # back went up a list and select pressed; the warning was answered by a key
    assert any(p["key"] == "back" for p in presses)
    assert sum(1 for p in presses if p.get("answered_warning")) == 2
    # no ID number or name was said on the loudspeaker (no headphones here)
    from flows.models import mask_name
    from flows.synthetic import DEMO_RESIDENT

    for p in presses:
        assert DEMO_RESIDENT.id_number[-4:] not in p["spoken"], p
        assert DEMO_RESIDENT.name not in p["spoken"], p
        assert mask_name(DEMO_RESIDENT.name) not in p["spoken"] + p["said"], p
    assert_the_document_was_read_in_order(data["documents"])
    for document in data["documents"]:
        assert_the_field_is_marked_and_its_neighbours_readable(shots, document["field_shot"])


def assert_the_field_is_marked_and_its_neighbours_readable(
    shots: Path, found: dict[str, Any]
) -> None:
    """The field in focus has the ring's yellow under its text; the rows above and below it
    carry none of the mark: no yellow, no black line across them (the ring used to cover
    their text)."""
    from PIL import Image

    from kiosk.ui.focus import RING_LIGHT

    image = Image.open(shots / found["shot"]).convert("RGB")
    yellow = tuple(round(c * 255) for c in RING_LIGHT)

    def box(rect: list[float]) -> Image.Image:
        x0, y0, x1, y1 = (round(v) for v in rect)
        return image.crop((x0, y0, x1, y1))

    focused = box(found["focused"])
    ground = sum(1 for p in focused.get_flattened_data() if p == yellow)
    assert ground > focused.width * focused.height // 2, "the field in focus is not marked"
    assert found["neighbours"], "no row around the field to check"
    for rect in found["neighbours"]:
        row = box(rect)
        pixels = row.get_flattened_data()
        assert not any(p == yellow for p in pixels), ("yellow on a neighbour", rect)
        for y in range(row.height):
            line = [row.getpixel((x, y)) for x in range(row.width)]
            dark = sum(1 for p in line if max(p) < 40)
            assert dark < row.width * 0.9, ("a line across a neighbour", rect, y)


WITHHELD = {
    "zh": ("字段：姓名，您的姓名（", "字段：公民身份号码，您的身份证号码（"),
    "en": ("Field: Name, your name (", "Field: ID number, your ID number ("),
}


def assert_the_document_was_read_in_order(documents: list[dict[str, Any]]) -> None:
    """The preview's reading view, walked by the down key from the top of the page: its title,
    every field (label and value), the table's title and each row, the notes, in the document's
    order, each said as it was reached; the name and ID number withheld on the loudspeaker."""
    assert [d["lang"] for d in documents] == ["zh", "en"]
    for document in documents:
        lang, page, said = document["lang"], document["page"], document["said"]
        lines = [p["said"] for p in said]
        assert all(p["ok"] for p in said), [p for p in said if not p["ok"]][:3]
        assert all(p["screen"] == "preview" and p["lang"] == lang for p in said)
        assert all(p["said_key"] in ("focus.field", "focus.text") for p in said), said[:3]
        total = len(said)
        role = {"zh": ("标题：", "字段：", "表格行：", "说明："), "en": ("Heading: ", "Field: ")}
        role["en"] += ("Table row: ", "Note: ")
        heading, field, row, note = role[lang]
        expected = [heading + page["title"]]
        name, number = WITHHELD[lang]
        for label, value in page["rows"]:
            if "*" in value:  # the name and the number: masked on screen, not said aloud
                expected.append(name if len(value) < 10 else number)
            else:
                expected.append(f"{field}{label}{'，' if lang == 'zh' else ', '}{value}")
        if page["headers"]:
            expected.append(heading + page["table_title"])
            for cells in page["table"]:
                expected.append(f"{row}{page['headers'][0]} {cells[0]}")
        expected += [note + n for n in page["notes"]]
        assert len(lines) == len(expected), (lines, expected)
        for got, want in zip(lines, expected, strict=True):
            assert got.startswith(want), (got, want)
        # each line says where it is, one after the other (the top bar's buttons come first)
        pattern = r"，第 (\d+) 项，共 (\d+) 项$" if lang == "zh" else r", (\d+) of (\d+)$"
        places = [re.search(pattern, line) for line in lines]
        assert all(places), lines
        numbers = [int(m.group(1)) for m in places if m]
        assert numbers == list(range(numbers[0], numbers[0] + total)), numbers
        assert 1 < numbers[0] <= 5, numbers  # after the top bar, before the page's buttons
        assert total >= 8
        assert len(page["rows"]) >= 5 and page["headers"], page  # the certificate's fields
        # the help key counts the document's parts
        parts = f"文件内容共 {total} 项" if lang == "zh" else f"The document has {total} parts"
        assert parts in document["help"], document["help"]
