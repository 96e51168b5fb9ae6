"""A town station's 120 matters on the real app (issue 25): every matter within 4 taps of the
choose screen in elder mode, counted by tapping; every list, the keypad and its results fit, in
both languages and modes; screenshots of the tiles, a list, the keypad and results.

``finder_app.py`` explores the choose screen breadth-first with touches (see there); this test
holds the counts and measurements it reports to the numbers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from flows.catalog import load_catalog

HERE = Path(__file__).resolve().parent
VILLAGE = HERE.parents[2] / "assets" / "catalog" / "village120.toml"
COMBOS = ("zh-elder", "en-elder", "zh-standard", "en-standard")


def walk_choose_screen(
    tmp_path: Path,
    display: str,
    shots: Path,
    catalog: Path,
    combos: tuple[str, ...],
    taps: str = "zh-elder",
) -> dict:
    """Run finder_app.py on ``catalog`` (1600x900, the smallest screen configured); ``taps``:
    the language and mode whose keypad is explored deeply, to count taps ("" for none)."""
    state = tmp_path / "state"
    config = tmp_path / "kiosk.toml"
    config.write_text(
        "version = 1\n"
        f'[station]\ncatalog = "{catalog}"\n'
        f'[state]\ndir = "{state}"\n'
        '[devices]\naudio_player_args = ["-D", "null"]\n'
        "[ui]\nwidth = 1600\nheight = 900\nshow_simulator_controls = false\n",
        encoding="utf-8",
    )
    shots.mkdir(parents=True, exist_ok=True)
    report = tmp_path / "report.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(HERE / "finder_app.py"),
            *("--config", str(config), "--artifacts", str(shots), "--report", str(report)),
            *("--combos", ",".join(combos), "--taps", taps),
        ],
        capture_output=True,
        text=True,
        env=dict(os.environ, DISPLAY=display),
        timeout=900,
        check=False,
    )
    log = state / "logs" / "kiosk.log"
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
    assert report.exists(), proc.stderr[-3000:] + tail
    data: dict = json.loads(report.read_text())
    assert proc.returncode == 0, str(data["error"]) + proc.stderr[-3000:] + tail
    return data


@pytest.mark.gui
@pytest.mark.slow
def test_every_matter_of_a_village_catalog_within_four_taps_and_every_list_fits(
    tmp_path: Path, xvfb: str, artifacts: Path
) -> None:
    catalog = load_catalog(VILLAGE)
    matters = {s.code for s in catalog.enabled_services()} | {
        b.code for b in catalog.enabled_bundles()
    }
    assert len(matters) >= 120
    shots = artifacts / "finder"
    data = walk_choose_screen(tmp_path, xvfb, shots, VILLAGE, COMBOS)
    assert data["problems"] == [], "\n".join(data["problems"][:40])
    taps = data["taps"]["zh-elder"]
    far = {code: n for code, n in taps.items() if n > 4}
    assert set(taps) == matters and not far, (matters - set(taps), far)
    for combo in COMBOS:  # every matter was shown (and measured) in every language and mode
        assert set(data["taps"][combo]) == matters, combo
    for lang in ("zh", "en"):
        for shot in ("tiles", "list", "keypad", "keypad-typed", "results"):
            assert (shots / f"{lang}-elder-{shot}.png").is_file(), (lang, shot)
