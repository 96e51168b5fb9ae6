"""The catalog's longest names fit the choose screen's buttons in elder mode, in both languages
(issue 17: text lengths bounded in the schema, with limits that still fit the screens).

The demo catalog's services are renamed with ``NAME_ZH`` Chinese and ``NAME_EN`` English
characters — realistic words, not one repeated glyph — and the real app (``finder_app.py``)
walks every list of the choose screen in elder mode on the smallest screen we configure
(1600x900), measuring every page (:func:`kiosk.ui.audit.audit`: text inside its widget).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from flows.catalog import NAME_EN, NAME_ZH, load_catalog
from tests.kiosk.ui.test_finder_gui import walk_choose_screen

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
    shots = artifacts / "long-names"
    data = walk_choose_screen(tmp_path, xvfb, shots, catalog, ("zh-elder", "en-elder"), taps="")
    assert data["problems"] == [], "\n".join(data["problems"][:40])
    # every service was looked at, in its list, in both languages
    seen = {combo: set(codes) for combo, codes in data["taps"].items()}
    assert seen["zh-elder"] == seen["en-elder"] >= {s.code for s in services}
