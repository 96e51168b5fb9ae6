"""``fleet console --config FILE``: the file's values reach the console's settings, an option
given on the command line wins, every mistake is said at once with the file, line and key, and
the documented example keeps a key for every option."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from fleet.cli.console_config import (
    ENV,
    ConsoleConfigProblems,
    ConsoleOptions,
    ConsoleSection,
    console_actions,
    console_options,
    option_keys,
)
from fleet.cli.parser import build_parser, console_parser

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "assets/config/console.example.toml"


def options(argv: list[str], environ: dict[str, str] | None = None) -> ConsoleOptions:
    args = build_parser("sqlite:///unused.sqlite3").parse_args(["console", *argv])
    return console_options(args, console_parser(), environ or {})


def problems(argv: list[str], environ: dict[str, str] | None = None) -> tuple[str, ...]:
    with pytest.raises(ConsoleConfigProblems) as err:
        options(argv, environ)
    return err.value.problems


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "console.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_files_values_reach_the_settings(tmp_path: Path) -> None:
    for name in ("ca.crt", "console.crt", "console.key"):
        (tmp_path / name).write_text("x")
    path = write(
        tmp_path,
        f"""version = 1
[console]
broker = "broker.fleet.example:8883"
http = "127.0.0.1:9090"
db = "postgresql+psycopg://fleet@db/fleet"
tls_ca = "{tmp_path / "ca.crt"}"
tls_cert = "{tmp_path / "console.crt"}"
tls_key = "{tmp_path / "console.key"}"
share_group = ""
client_id = "console-a"
session_expiry = 0
timezone = "UTC"
offline_alert_after = 120
followup_due_hours = 4.5
insecure_cookies = true
catalog_url = "http://repo.example/"
""",
    )
    got = options(["--config", str(path)], {"FLEET_TIMEZONE": "Europe/Berlin"})
    c = got.section
    assert got.broker == ("broker.fleet.example", 8883) and got.http == ("127.0.0.1", 9090)
    assert c.db == "postgresql+psycopg://fleet@db/fleet"
    assert (c.tls_ca, c.tls_key) == (str(tmp_path / "ca.crt"), str(tmp_path / "console.key"))
    assert (c.share_group, c.client_id, c.session_expiry) == ("", "console-a", 0)
    assert got.timezone == "UTC"  # the file's, over $FLEET_TIMEZONE
    assert (c.offline_alert_after, c.followup_due_hours, c.insecure_cookies) == (120, 4.5, True)
    assert c.catalog_url == "http://repo.example/" and got.source == str(path)


def test_without_a_file_the_options_and_defaults_stand() -> None:
    got = options(["--broker", "b:1883"], {"FLEET_TIMEZONE": "UTC"})
    assert got.broker == ("b", 1883) and got.http == ("127.0.0.1", 8080)
    assert got.section.session_expiry == 3600 and got.section.share_group == "console"
    assert got.timezone == "UTC" and got.source == "the command line"
    assert options(["--broker", "b:1883"]).timezone == "Asia/Shanghai"


def test_an_option_wins_over_the_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'version = 1\n[console]\nbroker = "a:1883"\nsession_expiry = 60\nshare_group = "g"\n'
        'timezone = "UTC"\n',
    )
    got = options(
        ["--config", str(path), "--broker", "b:8883", "--session-expiry", "0", "--share-group", "",
         "--duty-timezone", "Asia/Tokyo"],
    )  # fmt: skip
    assert got.broker == ("b", 8883)
    assert (got.section.session_expiry, got.section.share_group) == (0, "")
    assert got.timezone == "Asia/Tokyo"
    # what the command line does not give stays the file's
    assert options(["--config", str(path)]).section.share_group == "g"


def test_the_environment_names_the_file_and_config_wins(tmp_path: Path) -> None:
    path = write(tmp_path, '[console]\nbroker = "env:1883"\n')
    other = tmp_path / "other.toml"
    other.write_text('[console]\nbroker = "flag:1883"\n')
    assert options([], {ENV: str(path)}).broker == ("env", 1883)
    assert options(["--config", str(other)], {ENV: str(path)}).broker == ("flag", 1883)


def test_an_unknown_key_names_the_file_line_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, 'version = 1\n\n[console]\nbroker = "b:1"\nsesion_expiry = 5\n')
    assert problems(["--config", str(path)]) == (
        f"{path}:5: [console] sesion_expiry is not a known key (did you mean `session_expiry`?)",
    )
    path.write_text('[consol]\nbroker = "b:1"\n')
    said = problems(["--config", str(path)])
    assert f"{path}:1: [consol] is not a known section (did you mean `console`?)" in said


def test_wrong_types_and_values_are_said_all_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "version = 2\n[console]\n"
        'broker = "no-port"\n'
        'session_expiry = "3600"\n'
        "insecure_cookies = 1\n"
        "offline_alert_after = 0\n"
        'tls_ca = "/no/such/ca.crt"\n'
        'timezone = "Mars/Base"\n',
    )
    said = problems(["--config", str(path)])
    at = f"{path}:"
    assert sorted(said) == sorted(
        [
            f"{at}1: `version` must be `1`; got `2`",
            f"{at}3: [console] broker must be `HOST:PORT`, e.g. `broker.fleet.example:8883`; "
            "got `no-port`",
            f'{at}4: [console] session_expiry must be a whole number, without quotes; got `"3600"`',
            f"{at}5: [console] insecure_cookies must be `true` or `false`; got `1`",
            f"{at}6: [console] offline_alert_after must be more than 0 and at most 86400; got `0`",
            f"{at}7: [console] tls_ca must name a file; `/no/such/ca.crt` is not one",
            f"{at}8: [console] timezone must be an IANA time zone name such as `Asia/Shanghai` or "
            "`UTC`; got `Mars/Base`",
        ]
    )


def test_a_wrong_option_is_named_as_the_option(tmp_path: Path) -> None:
    path = write(tmp_path, '[console]\nbroker = "b:1"\ntls_ca = "/no/ca.crt"\n')
    said = problems(["--config", str(path), "--session-expiry", "-1", "--tls", "a", "b", "c"])
    assert "--session-expiry must be at least 0 and at most 4294967295; got `-1`" in said
    assert "--tls must name a file; `a` is not one" in said  # the option's, not the file's
    assert not any("/no/ca.crt" in line for line in said)


def test_some_but_not_all_tls_files_is_a_mistake(tmp_path: Path) -> None:
    (tmp_path / "ca.crt").write_text("x")
    path = write(tmp_path, f'[console]\nbroker = "b:1"\ntls_ca = "{tmp_path / "ca.crt"}"\n')
    said = problems(["--config", str(path)])
    assert said == (f"{path}:1: [console] tls_ca, tls_cert, tls_key: set all of them or none",)


def test_a_missing_file_and_a_missing_broker(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    assert problems(["--config", str(missing)]) == (
        f"{missing}: cannot be read: No such file or directory",
    )
    assert problems([]) == ("no broker: give --broker HOST:PORT, or --config FILE",)
    path = write(tmp_path, "version = 1\n")
    assert problems(["--config", str(path)]) == (
        f"{path}: no broker: set [console] broker or give --broker",
    )
    path.write_text("[console\n")
    (said,) = problems(["--config", str(path)])
    assert said.startswith(f"{path}: is not valid TOML")


def test_the_example_loads_and_has_a_key_for_every_option() -> None:
    got = options(["--config", str(EXAMPLE)])
    assert got.section == ConsoleSection(broker="127.0.0.1:8883")  # the documented defaults
    keys = set(tomllib.loads(EXAMPLE.read_text())["console"])
    wanted = {key for action in console_actions(console_parser()) for key in option_keys(action)}
    assert wanted == set(ConsoleSection.model_fields)  # every option has a key, and no more
    assert wanted == keys
    assert {"tls_ca", "tls_cert", "tls_key", "fleet_ca_cert", "fleet_ca_key"} <= keys


def test_every_console_option_defaults_to_absent() -> None:
    """So that a value from the file is never hidden by an argparse default."""
    args = build_parser("sqlite:///x").parse_args(["console"])
    given = set(vars(args)) - {"command", "run"}
    assert given == set()
    assert all(isinstance(a, argparse.Action) for a in console_actions(console_parser()))


def test_a_bad_file_exits_2_naming_file_and_key_and_starts_nothing(tmp_path: Path) -> None:
    path = write(tmp_path, '[console]\nbroker = "127.0.0.1:1"\nlisten = "0.0.0.0:80"\n')
    db = tmp_path / "console.sqlite3"
    done = subprocess.run(
        [sys.executable, "-m", "fleet.cli", "console", "--config", str(path), "--db",
         f"sqlite:///{db}"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2
    assert f"{path}:3: [console] listen is not a known key" in done.stderr
    assert not db.exists()  # no database made, nothing served
    assert "uvicorn" not in done.stderr.lower()
