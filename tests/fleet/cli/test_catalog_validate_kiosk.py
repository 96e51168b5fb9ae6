"""``fleet catalog validate`` knows the kiosk (issue 25, done-when 5): it rejects a template and
an icon the kiosk does not have, and warns on a name that cannot fit its button at elder size."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fleet.cli import main

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "assets" / "catalog" / "demo.toml"
VILLAGE = ROOT / "assets" / "catalog" / "village120.toml"


def test_an_unknown_template_is_refused_with_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = DEMO.read_text(encoding="utf-8")
    source = tmp_path / "town.toml"
    source.write_text(
        text.replace('template = "record_certificate"', 'template = "land_deed"', 1),
        encoding="utf-8",
    )
    assert main(["catalog", "validate", str(source)]) == 1
    err = capsys.readouterr().err
    line = text.splitlines().index('template = "record_certificate"') + 1
    assert f"line {line}:" in err and "'land_deed' is not a template the kiosk has" in err


def test_an_unknown_icon_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "town.toml"
    source.write_text(
        DEMO.read_text(encoding="utf-8").replace('icon = "heart"', 'icon = "hearts"', 1),
        encoding="utf-8",
    )
    assert main(["catalog", "validate", str(source)]) == 1
    assert "'hearts' is not an icon the kiosk has" in capsys.readouterr().err


def test_a_name_that_cannot_fit_is_warned_and_the_catalog_stays_valid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    long_en = "Withdrawal " * 8  # 88 characters, within the schema's 96, in very long words
    source = tmp_path / "town.toml"
    source.write_text(
        DEMO.read_text(encoding="utf-8").replace(
            'en = "Social and medical insurance"', f'en = "{long_en.strip()}"', 1
        ),
        encoding="utf-8",
    )
    assert main(["catalog", "validate", str(source)]) == 0
    out = capsys.readouterr()
    assert "valid" in out.out
    assert "warning: category social: name (en)" in out.err and "cannot fit" in out.err
    assert main(["catalog", "validate", "--json", str(source)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["valid"] and any("category social" in w for w in result["warnings"])


def test_the_village_catalog_validates_without_warnings(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["catalog", "validate", "--json", str(VILLAGE)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["services"] == 120 and result["warnings"] == []


def test_make_run_keeps_a_catalog_given_on_its_command_line(tmp_path: Path) -> None:
    from kiosk.config import load_config
    from kiosk.tools.devstation import write_config

    config = tmp_path / "kiosk.toml"
    write_config(config, "127.0.0.1:1883", tmp_path / "state", catalog=VILLAGE)
    assert Path(load_config(config).station.catalog) == VILLAGE
