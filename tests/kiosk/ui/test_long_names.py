"""The catalog's longest names fit the choose screen's buttons in elder mode, in both languages
(issue 17: text lengths bounded in the schema, with limits that still fit the screens).

The demo catalog's services are renamed with ``NAME_ZH`` Chinese and ``NAME_EN`` English
characters — realistic words, not one repeated glyph — and the real app (``longnames_app.py``)
walks every page of services in elder mode on the smallest screen we configure (1600x900).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from flows.catalog import NAME_EN, NAME_ZH, load_catalog

HERE = Path(__file__).resolve().parent
DEMO = HERE.parents[2] / "assets" / "catalog" / "demo.toml"
ZH = "城乡居民基本养老保险待遇领取资格认证暨社会保障卡信息变更与补换领办理申请"
EN = (
    "Urban and rural residents' basic pension: yearly proof of entitlement, with social "
    "security card changes and replacement, and the forms a window will ask for"
)


def long_names_catalog(path: Path) -> int:
    """The demo catalog with every service named as long as allowed; how many were renamed."""
    text = DEMO.read_text(encoding="utf-8")
    zh, en = ZH[:NAME_ZH], EN[:NAME_EN]
    assert len(zh) == NAME_ZH and len(en) == NAME_EN
    lines = text.splitlines()
    renamed = 0
    in_service = False
    for i, line in enumerate(lines):
        if line.startswith("["):
            in_service = line.strip() == "[[services]]"
        elif in_service and re.match(r"^name\s*=", line):
            lines[i] = f'name = {{ zh = "{zh}", en = "{en}" }}'
            renamed += 1
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return renamed


@pytest.mark.gui
@pytest.mark.slow
def test_the_longest_names_fit_the_service_buttons_in_elder_mode(
    tmp_path: Path, xvfb: str, artifacts: Path
) -> None:
    catalog = tmp_path / "catalog.toml"
    renamed = long_names_catalog(catalog)
    services = load_catalog(catalog).services
    assert renamed == len(services) and {s.name.zh for s in services} == {ZH[:NAME_ZH]}
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
    shots = artifacts / "long-names"
    shots.mkdir(exist_ok=True)
    report = tmp_path / "report.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(HERE / "longnames_app.py"),
            *("--config", str(config), "--artifacts", str(shots), "--report", str(report)),
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
    assert proc.returncode == 0, str(data["error"]) + proc.stderr[-3000:] + tail
    assert data["problems"] == [], "\n".join(data["problems"])
    # every service was looked at, on its page, in both languages
    seen = {
        lang: {c.split(":")[1] for c in data["checked"] if c.startswith(lang)}
        for lang in ("zh", "en")
    }
    assert seen["zh"] == seen["en"] >= {s.code for s in services}
