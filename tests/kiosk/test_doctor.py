"""`kiosk doctor` prints a table of what the station needs, and a fix for each failure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def doctor(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kiosk.cli", *args, "doctor"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_simulated_station_is_healthy(tmp_path: Path) -> None:
    config = tmp_path / "kiosk.toml"
    config.write_text(f'[state]\ndir = "{tmp_path / "state"}"\n')
    result = doctor("--config", str(config))
    assert result.returncode == 0, result.stdout
    for row in ("config", "catalog", "font", "voice", "id reader", "A4 printer", "thermal printer"):
        assert any(line.startswith(row) and " ok " in line for line in result.stdout.splitlines())


def test_missing_devices_are_named_with_a_fix(tmp_path: Path) -> None:
    config = tmp_path / "kiosk.toml"
    config.write_text(
        f'[state]\ndir = "{tmp_path / "state"}"\n'
        "[devices]\n"
        'id_reader = "sam:/dev/ttyNOPE0"\n'
        'thermal_printer = "tcp:127.0.0.1:9"\n'
        "[fleet]\n"
        'broker = "127.0.0.1:9"\n'
    )
    result = doctor("--config", str(config))
    assert result.returncode == 1
    out = result.stdout
    assert "id reader" in out and "/dev/ttyNOPE0 does not exist" in out
    assert "fix: plug in the reader" in out
    assert "thermal printer  FAIL" in out and "broker" in out
