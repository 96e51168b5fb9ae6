"""``fleet``'s command line as a reader meets it: help on every subcommand and option (units and
defaults), an epilog with exit statuses and environment, ``--version`` from the installed
metadata, and ``--help`` that loads no database or web code (the figure: docs/performance.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import version

import pytest

from fleet.cli import main
from fleet.cli.parser import FOLLOWUP_STATES, STATION_STATUSES, build_parser
from fleet.cli.parser_catalog import POLICY_DEFAULTS


def walk(
    parser: argparse.ArgumentParser, path: str = "fleet"
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from walk(child, f"{path} {name}")


def missing_help(parser: argparse.ArgumentParser, path: str) -> list[str]:
    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        if isinstance(action, argparse._SubParsersAction):
            described = {a.dest: a.help for a in action._choices_actions}
            for name, child in action.choices.items():
                if not described.get(name) or not child.description:
                    missing.append(f"{path} {name}: no one-line description")
            continue
        if not action.help or action.help == argparse.SUPPRESS:
            missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
    return missing


def test_every_subcommand_and_option_has_help() -> None:
    parser = build_parser("sqlite:///console.sqlite3")
    tree = list(walk(parser))
    assert len(tree) > 30  # the walk reaches the nested subcommands
    names = {path for path, _ in tree}
    for path in (
        "fleet ca init",
        "fleet ca issue-broker",
        "fleet rollout start",
        "fleet enroll revoke",
        "fleet alerts ack",
        "fleet user set-password",
        "fleet keys rotate",
    ):
        assert path in names
    missing = [m for path, p in tree for m in missing_help(p, path)]
    assert missing == []


def test_the_walk_notices_an_option_without_help() -> None:
    parser = argparse.ArgumentParser(prog="x")
    sub = parser.add_subparsers()
    child = sub.add_parser("y", help="why")
    child.add_argument("--z")
    sub.add_parser("w")
    found = [m for path, p in walk(parser, "x") for m in missing_help(p, path)]
    assert found == ["x y: no one-line description", "x w: no one-line description", "x y --z"]


def test_the_epilog_names_exit_statuses_and_environment(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "exit statuses:" in out and "FLEET_TIMEZONE" in out
    for status in ("0", "1", "2", "3"):
        assert f"\n  {status}   " in out


def test_version_comes_from_the_installed_metadata(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out == f"fleet {version('station-kiosk')}\n"


def test_help_shows_the_defaults_its_code_uses() -> None:
    from fleet.console.followups import STATES
    from fleet.console.rollout import Policy
    from fleet.console.views import STATUSES

    assert STATION_STATUSES == STATUSES
    assert FOLLOWUP_STATES == STATES
    defaults = {f.name: f.default for f in dataclasses.fields(Policy)}
    assert {k: defaults[k] for k in POLICY_DEFAULTS} == POLICY_DEFAULTS


def test_help_loads_no_database_web_or_password_code() -> None:
    code = (
        "import sys\n"
        "from fleet.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ('sqlalchemy', 'argon2', 'starlette', 'fleet.console', 'tuf', 'cryptography')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy or\n"
        "             m.startswith('fleet.console')), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stderr.strip() == "[]"
