"""``kiosk``'s command line follows the conventions: ``--version`` from the package metadata, help
on every subcommand and option (with its default), exit statuses and environment variables in
each ``--help``, and the global options accepted after the subcommand as well as before."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator
from importlib import metadata

import pytest

import kiosk
from kiosk.cli import build_parser, cmd_doc_key, cmd_run


def parsers(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every parser of the tree, with the command line that reaches it."""
    yield parser.prog, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from parsers(sub)


def test_every_subcommand_has_a_one_line_description() -> None:
    for prog, parser in parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                described = {choice.dest for choice in action._choices_actions}
                assert described == set(action.choices), f"{prog}: subcommands without help"
                for choice in action._choices_actions:
                    assert choice.help and "\n" not in choice.help, f"{prog} {choice.dest}"


def test_every_option_has_help_and_says_its_default() -> None:
    missing = []
    for prog, parser in parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            name = "/".join(action.option_strings) or action.dest
            if not action.help or action.help == argparse.SUPPRESS:
                missing.append(f"{prog} {name}: no help")
                continue
            valued = action.option_strings and action.nargs != 0 and not action.required
            if valued and action.default is not None and "default" not in action.help:
                missing.append(f"{prog} {name}: help does not say the default")
    assert missing == []


@pytest.mark.parametrize("option", ["--timeout", "--baud"])
def test_numbers_say_their_unit(option: str) -> None:
    for prog, parser in parsers(build_parser()):
        for action in parser._actions:
            if option in action.option_strings:
                assert action.help and (" s)" in action.help or "bit/s" in action.help), prog


def test_every_help_has_exit_statuses_and_environment() -> None:
    for prog, parser in parsers(build_parser()):
        assert parser.epilog and "exit statuses:" in parser.epilog, prog
        reads_config = any("--config" in a.option_strings for a in parser._actions)
        assert ("KIOSK_CONFIG" in parser.epilog) == reads_config, prog
    run_help = dict(parsers(build_parser()))["kiosk run"].format_help()
    for status in ("0 stopped", "3 a technician", "4 a restart", "70 errors"):
        assert status in run_help


@pytest.mark.parametrize(
    "argv",
    [
        ["--config", "F", "run"],
        ["run", "--config", "F"],
        ["run", "--debug", "--config", "F"],
        ["--config", "other.toml", "run", "--config", "F"],  # the later one, as for any option
    ],
)
def test_config_is_accepted_before_and_after_the_subcommand(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    assert args.config == "F" and args.func is cmd_run


def test_without_config_it_stays_unset() -> None:
    args = build_parser().parse_args(["doc-key", "--create"])
    assert args.config is None and args.func is cmd_doc_key and args.create


def test_run_help_after_config_answers_without_starting() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "kiosk.cli", "run", "--config", "/nonexistent.toml", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "usage: kiosk run" in result.stdout and "KIOSK_CONFIG" in result.stdout


@pytest.mark.parametrize("where", [["--version"], ["doctor", "--version"]])
def test_version_comes_from_the_package_metadata(where: list[str]) -> None:
    installed = metadata.version(kiosk.DISTRIBUTION)
    result = subprocess.run(
        [sys.executable, "-m", "kiosk.cli", *where],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"kiosk {installed}\n"
    assert kiosk.__version__ == kiosk.version() == installed


def test_the_version_is_written_once() -> None:
    """In ``pyproject.toml`` only: the package reads its metadata."""
    from pathlib import Path

    source = Path(kiosk.__file__).read_text(encoding="utf-8")
    assert "__version__ =" not in source
