"""Asking for help writes nothing: ``fleet --help`` (and every subcommand's, and ``--version``)
leaves an empty home folder, while a command that opens the default database still makes its
folder (the user's data folder, through platformdirs) and the database in it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fleet.cli.parser import build_parser
from tests.fleet.cli.test_cli_help import walk


def fleet(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XDG_")}
    env["HOME"] = str(home)  # platformdirs: ~/.local/share/station-kiosk
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[3])
    return subprocess.run(
        [sys.executable, "-m", "fleet.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def written(home: Path) -> list[str]:
    return sorted(str(p.relative_to(home)) for p in home.rglob("*"))


def every_help() -> list[list[str]]:
    """``fleet --help``, ``fleet --version`` and ``--help`` of every subcommand, however deep."""
    commands = [path.split()[1:] for path, _ in walk(build_parser("sqlite://"))]
    return [[*words, "--help"] for words in commands] + [["--version"]]


def test_help_and_version_write_nothing(tmp_path: Path) -> None:
    asked = every_help()
    assert len(asked) > 30  # the whole tree, not only the top
    for argv in asked:
        done = fleet(tmp_path, *argv)
        assert done.returncode == 0, (argv, done.stderr)
        assert written(tmp_path) == [], f"fleet {' '.join(argv)} wrote {written(tmp_path)}"


@pytest.mark.parametrize("argv", [["user", "list"]], ids=["user-list"])
def test_a_command_on_the_default_database_still_makes_its_folder(
    tmp_path: Path, argv: list[str]
) -> None:
    done = fleet(tmp_path, *argv)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "no console users"
    assert ".local/share/station-kiosk/console.sqlite3" in written(tmp_path)
