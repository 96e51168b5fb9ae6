"""The fault suite's runner on two cheap scenarios, so CI exercises it (``make faults``: all)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_runner_runs_a_process_kill_and_a_device_fault() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "faults",
            "--only",
            "sqlite",
            "--only",
            "cover",
            "--no-doc",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    out = result.stdout
    assert "| kill -9 during an SQLite write | yes | nothing |" in out, out + result.stderr
    assert "| thermal cover open | yes | nothing |" in out, out + result.stderr
    assert result.returncode == 0
