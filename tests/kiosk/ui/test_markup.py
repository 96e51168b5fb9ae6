"""Catalog text is data: markup in a service's name or notice is shown, never obeyed.

Kivy labels with ``markup: True`` read ``[size=…]``, ``[color=…]``, ``[b]`` and ``[ref=…]`` in
their text. The notice and the maintenance screen use markup for their headings; what they show
from the catalog, the configuration, a device or the log is escaped (``kiosk.present.literal``).
The real app runs on Xvfb (``markup_app.py``) with a catalog full of such text and reads back what
each label laid out.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk.shell.maintenance import hash_pin

HERE = Path(__file__).resolve().parent
DEMO = HERE.parents[2] / "assets" / "catalog" / "demo.toml"
PIN = "246810"
BIG = "[size=400]大[/size]"  # within the catalog's 32-character names with what surrounds it

# (what the demo catalog says, what this test's catalog says instead)
CHANGES = {
    "station": ("高新区四宝山街道", "[ref=x]站[/ref]"),
    "station_en": ("Sibaoshan Street 24-Hour", "[ref=x]S[/ref] [b]x[/b]"),
    "name": ('zh = "残疾人证申领一次性告知"', f'zh = "残疾人证{BIG}告知"'),
    "name_en": ("Disability certificate: what to bring", "Disability [b]x[/b] [size=400]big"),
    "material": ("近期二寸免冠白底彩色照片", "照片[b]x[/b][ref=x]链接[/ref]"),
    "material_en": ("Recent 2-inch colour photos", "Photos [ref=x]link[/ref]"),
    "place": ("街道便民服务中心 3 号窗口", "[size=abc]3号窗口&amp;[color=ff0000]红"),
    "place_en": ("Street service centre, window 3", "Window [b]3[/b] &bl;"),
    "certificate": ('zh = "社会保险参保证明"', f'zh = "社会保险{BIG}证明"'),
}


def markup_catalog(path: Path) -> dict[str, list[str]]:
    """The demo catalog with texts that look like markup; returns them by language."""
    text = DEMO.read_text(encoding="utf-8")
    for old, new in CHANGES.values():
        assert old in text, old
        text = text.replace(old, new)
    path.write_text(text, encoding="utf-8")

    def shown(key: str) -> str:
        return CHANGES[key][1].removeprefix('zh = "').removesuffix('"')

    return {
        "zh": [shown(k) for k in ("station", "name", "material", "place")],
        "en": [shown(k) for k in ("station_en", "name_en", "material_en", "place_en")],
        "certificate": [shown("certificate")],
    }


@pytest.mark.gui
@pytest.mark.slow
def test_catalog_text_that_looks_like_markup_is_shown_as_written(
    tmp_path: Path, xvfb: str, artifacts: Path
) -> None:
    texts = markup_catalog(tmp_path / "catalog.toml")
    state = tmp_path / "state"
    config = tmp_path / "kiosk.toml"
    config.write_text(
        "version = 1\n"
        f'[station]\ncatalog = "{tmp_path / "catalog.toml"}"\n'
        f'[state]\ndir = "{state}"\n'
        '[devices]\naudio_player_args = ["-D", "null"]\n'
        "[ui]\nwidth = 1920\nheight = 1080\nshow_simulator_controls = false\n"
        f'[maintenance]\npin_hash = "{hash_pin(PIN)}"\n',
        encoding="utf-8",
    )
    shots = artifacts / "markup"
    shots.mkdir(exist_ok=True)
    report = tmp_path / "report.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(HERE / "markup_app.py"),
            "--config",
            str(config),
            "--artifacts",
            str(shots),
            "--pin",
            PIN,
            "--texts",
            json.dumps(texts),
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
    assert report.exists(), proc.stderr[-3000:] + tail
    data = json.loads(report.read_text())
    assert data["problems"] == [], "\n".join(data["problems"])
    assert data["escape"] == [], "\n".join(data["escape"])
    assert proc.returncode == 0, data["error"] + proc.stderr[-3000:] + tail
    assert data["checked"] == [
        "home",
        "choose",
        "notice-zh",
        "notice-en",
        "preview",
        "maintenance",
    ]
    assert "error in the UI loop" not in log.read_text(errors="replace")
