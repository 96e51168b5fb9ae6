"""The preview's reading view on the configured screen (issue 20, done-when 3).

The real app on Xvfb, 1600 × 900 at 21.5″ as `make run` configures it, in elder mode: the
retirement bundle's three pages are each read as text at ≥ 6.1 mm, reached with the page
button (each turn said and shown in the caption bar), a page's picture zooms to the panel's
width without cutting a column, and the English session reads the same. Screenshots go to
``test-artifacts/journey/reading-*.png``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from drivers.escpos.simulator import EscposSimulator
from drivers.sam.simulator import SamSimulator
from flows.synthetic import DEMO_RESIDENT
from sandbox.cups import CupsSandbox
from tests.kiosk.ui.test_journey import (  # noqa: F401  (fixtures)
    assert_everything_said_was_shown,
    assert_no_personal_data_left,
    cups,
    sam,
    thermal,
)

HERE = Path(__file__).resolve().parent


def run_reading(
    tmp_path: Path,
    xvfb: str,
    artifacts: Path,
    sam: SamSimulator,  # noqa: F811
    thermal: EscposSimulator,  # noqa: F811
    cups: CupsSandbox,  # noqa: F811
) -> tuple[Path, list[str]]:
    state = tmp_path / "state"
    config = tmp_path / "kiosk.toml"
    config.write_text(
        "version = 1\n"
        f'[state]\ndir = "{state}"\n'
        "[devices]\n"
        f'id_reader = "sam:{sam.port}"\n'
        f'a4_printer = "cups:{cups.queue}@{cups.server}"\n'
        f'thermal_printer = "{thermal.url}"\n'
        'audio_player_args = ["-D", "null"]\n'
        "[ui]\nwidth = 1600\nheight = 900\nscreen_diagonal_in = 21.5\n",
        encoding="utf-8",
    )
    shots = artifacts / "journey"
    shots.mkdir(exist_ok=True)
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "reading_app.py"), "--config", str(config)]
        + ["--artifacts", str(shots)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, DISPLAY=xvfb),
    )
    seen: list[str] = []
    assert proc.stdout is not None
    for raw in proc.stdout:
        line = raw.strip()
        seen.append(line)
        if line == "AT identify":
            sam.insert(DEMO_RESIDENT)
        elif line == "AT take_card":
            sam.remove()
    _, err = proc.communicate(timeout=240)
    log = state / "logs" / "kiosk.log"
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
    assert proc.returncode == 0, err[-2000:] + tail + "\n".join(seen[-20:])
    return state, seen


@pytest.mark.gui
@pytest.mark.slow
def test_the_bundles_pages_read_at_elder_size_on_the_configured_screen(
    tmp_path: Path,
    xvfb: str,
    artifacts: Path,
    sam: SamSimulator,  # noqa: F811
    thermal: EscposSimulator,  # noqa: F811
    cups: CupsSandbox,  # noqa: F811
) -> None:
    state, seen = run_reading(tmp_path, xvfb, artifacts, sam, thermal, cups)
    measures = {
        m[1]: (int(m[2]), float(m[3]), float(m[4]))
        for m in (
            re.match(r"MEASURE (\S+) values=(\d+) cap_mm=([\d.]+) hanzi_mm=([\d.]+)", line)
            for line in seen
        )
        if m
    }
    assert set(measures) == {"zh-1", "zh-2", "zh-3", "en-1"}, seen
    for name, (values, cap_mm, hanzi_mm) in measures.items():
        assert values >= 4, name  # the name, the ID number, and what the page certifies
        assert cap_mm >= 6.1 and hanzi_mm >= 6.1, (name, cap_mm, hanzi_mm)
    pages = [line.split(" ", 2)[2] for line in seen if line.startswith("PAGE zh-")]
    assert pages == ["社会保险参保证明", "城乡居民医疗保险缴费记录", "养老金领取资格认证状态"]
    assert "PAGE en-1 Social Insurance Participation Certificate" in seen
    headings = [line for line in seen if line.startswith("HEADING ")]
    assert headings == [
        "HEADING zh-1 第 1 页，共 3 页 True",
        "HEADING zh-2 第 2 页，共 3 页 True",
        "HEADING zh-3 第 3 页，共 3 页 True",
        "HEADING en-1 Page 1 of 3 True",
    ]
    assert "LAST 回到第 1 页" in seen  # from the last page, the one page button goes back
    assert "STANDARD prev=True page=0" in seen  # standard mode went back; page 1 has no previous
    [zoom] = [line for line in seen if line.startswith("ZOOM ")]
    z = dict(part.split("=") for part in zoom.split()[1:])
    assert float(z["image_w"]) <= float(z["view_w"])  # the page's whole width shows
    assert float(z["image_w"]) >= float(z["view_w"]) * 0.95  # and fills the panel
    assert z["scroll_x"] == "False" and float(z["image_h"]) > float(z["view_h"])  # scrolls down
    width, height = (int(v) for v in z["tex"].split("x"))
    assert abs(height / width - 297 / 210) < 0.01  # the whole A4 page, uncut
    targets = [line for line in seen if line.startswith("TARGETS ")]
    assert all("screen=3" in line for line in targets), targets  # page, picture, print
    assert not [line for line in seen if line.startswith("PROBLEM ")]
    assert_everything_said_was_shown(seen, keys={"preview.page"})
    assert_no_personal_data_left(state, cups)
