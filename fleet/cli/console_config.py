"""``fleet console``'s configuration: a TOML file (``--config``) whose keys mirror the options.

The file has ``version = 1`` and one section, ``[console]``, with one key per option of ``fleet
console``, named as the option with underscores (``--session-expiry`` is ``session_expiry``); an
option that takes several values has one key per value, named by its metavar (``--tls CA CERT
KEY`` is ``tls_ca``, ``tls_cert``, ``tls_key``). An option given on the command line wins over the
file, the file over the defaults. The documented example is
``assets/config/console.example.toml``; a test keeps it and the options in step.

The validation follows the kiosk's (``kiosk/config.py``, which fleet may not import): pydantic
models that forbid unknown keys and take TOML's types strictly, every mistake reported at once,
one line each, naming the file, the line when it is found, the key, what is allowed and what was
found; a value given as an option is named by its option instead. Files the console reads at
start (passwords, TLS, the fleet CA) must exist and the time zone must be known, so a wrong path
or name stops it before it connects. This module is the command line's (it needs nothing of the
console's stack, so a mistake is said before SQLAlchemy or the web application is loaded).
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from fleet.errors import FleetError

ENV = "FLEET_CONSOLE_CONFIG"  # the file when --config is not given

HOSTPORT = r"^[\w.:\[\]-]+:\d{1,5}$"
HOSTPORT_FORM = "`HOST:PORT`, e.g. `broker.fleet.example:8883`"


class ConsoleConfigProblems(FleetError):
    """Every mistake found in the console's configuration, one line each."""

    translation_key = "error.console_config"

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(self.problems))


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class ConsoleSection(_Section):
    """One key per option of ``fleet console``; "" stands for an option not given."""

    broker: Annotated[str, Field(pattern=r"^$|" + HOSTPORT, description=HOSTPORT_FORM)] = ""
    http: Annotated[str, Field(pattern=HOSTPORT, description=HOSTPORT_FORM)] = "127.0.0.1:8080"
    password_file: str = ""
    db: str = ""
    admin_password_file: str = ""
    insecure_cookies: bool = False
    webhook: Annotated[
        str, Field(pattern=r"^$|^https?://\S+$", description="empty or an `http(s)://` address")
    ] = ""
    followup_due_hours: Annotated[float, Field(gt=0, le=24 * 365)] = 24.0
    offline_alert_after: Annotated[float, Field(gt=0, le=86400)] = 300.0
    timezone: str = ""  # empty: $FLEET_TIMEZONE, else Asia/Shanghai
    fleet_ca_cert: str = ""
    fleet_ca_key: str = ""
    tls_ca: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    token_keys: str = ""
    crl: str = ""
    metrics_token_file: str = ""
    share_group: str = "console"
    client_id: Annotated[str, Field(max_length=64)] = ""
    session_expiry: Annotated[int, Field(ge=0, le=2**32 - 1)] = 3600
    catalog_repo: str = ""
    catalog_url: Annotated[
        str, Field(pattern=r"^$|^https?://\S+$", description="empty or an `http(s)://` address")
    ] = ""
    ice_servers_file: str = ""  # calls (issue 22): the browsers' STUN/TURN servers, JSON
    call_recording: bool = False  # record calls, with the resident's consent (call_records)
    call_recording_days: Annotated[int, Field(ge=1, le=3650)] = 30  # then deleted
    call_recordings_dir: str = ""  # "": "recordings" in the user data folder; made, mode 0700

    @model_validator(mode="after")
    def _all_or_none(self) -> ConsoleSection:
        for keys in (("tls_ca", "tls_cert", "tls_key"), ("fleet_ca_cert", "fleet_ca_key")):
            given = [getattr(self, key) for key in keys]
            if any(given) and not all(given):
                raise ValueError(f"{', '.join(keys)}: set all of them or none")
        return self


class ConsoleConfig(_Section):
    version: Literal[1] = 1
    console: ConsoleSection = ConsoleSection()


# files read when the console starts: a wrong path is a configuration mistake, said at once
# (not admin_password_file: the console writes it, with a random password, when it is missing)
FILES = (
    *("password_file", "metrics_token_file", "ice_servers_file"),
    *("tls_ca", "tls_cert", "tls_key", "fleet_ca_cert", "fleet_ca_key"),
)
FOLDERS = ("token_keys", "catalog_repo")


@dataclass(frozen=True)
class ConsoleOptions:
    """What ``fleet console`` runs with: the file's values under the options given."""

    section: ConsoleSection
    timezone: str  # resolved: the option or key, else $FLEET_TIMEZONE, else Asia/Shanghai
    source: str  # the file, or "the command line"

    @property
    def broker(self) -> tuple[str, int]:
        return _hostport(self.section.broker)

    @property
    def http(self) -> tuple[str, int]:
        return _hostport(self.section.http)

    def path(self, key: str) -> Path | None:
        value = getattr(self.section, key)
        return Path(value) if value else None


def _hostport(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    return host, int(port)


# --- the options and their keys -------------------------------------------------------------------


def option_keys(action: argparse.Action) -> list[str]:
    """The file's keys for one option: its dest, or one per value (``tls_ca`` ...)."""
    if isinstance(action.nargs, int) and isinstance(action.metavar, tuple):
        return [f"{action.dest}_{part.lower()}" for part in action.metavar]
    return [action.dest]


def console_actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """``fleet console``'s options that the file mirrors (not --help, not --config)."""
    return [
        a
        for a in parser._actions
        if a.option_strings and a.dest not in ("help", "config") and a.dest != argparse.SUPPRESS
    ]


def given_options(
    args: argparse.Namespace, parser: argparse.ArgumentParser
) -> dict[str, tuple[str, Any]]:
    """The options given on the command line: key -> (option as written, value for the file's
    model). ``fleet console``'s options default to absent (argparse.SUPPRESS), so only what was
    typed is here."""
    given: dict[str, tuple[str, Any]] = {}
    for action in console_actions(parser):
        if not hasattr(args, action.dest):
            continue
        value = getattr(args, action.dest)
        option = max(action.option_strings, key=len) if action.dest != "timezone" else "--timezone"
        keys = option_keys(action)
        values = list(value) if len(keys) > 1 else [value]
        for key, one in zip(keys, values, strict=True):
            if isinstance(one, tuple):  # HOST:PORT as parsed
                one = f"{one[0]}:{one[1]}"
            elif isinstance(one, Path):
                one = str(one)
            given[key] = (option, one)
    return given


# --- mistakes, in words ---------------------------------------------------------------------------

TYPES = {
    "string_type": "must be text in quotes",
    "int_type": "must be a whole number",
    "float_type": "must be a number",
    "bool_type": "must be `true` or `false`",
    "model_type": "must be a section (a table)",
    "dict_type": "must be a section (a table)",
}
RANGES = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if value == "":
        return "an empty text"
    text = str(value)
    cut = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text[:60])
    return f"`{cut}…`" if len(text) > 60 else f"`{cut}`"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _range(key: str) -> str:
    field = ConsoleSection.model_fields.get(key)
    low = high = ""
    for rule in field.metadata if field is not None else ():
        if getattr(rule, "ge", None) is not None:
            low = f"at least {_number(rule.ge)}"
        elif getattr(rule, "gt", None) is not None:
            low = f"more than {_number(rule.gt)}"
        elif getattr(rule, "le", None) is not None:
            high = f"at most {_number(rule.le)}"
    return " and ".join(part for part in (low, high) if part)


def _rule(err: Mapping[str, Any], key: str) -> tuple[str, bool]:
    """What is allowed, and whether the value was a number or truth value written in quotes."""
    kind, value = err["type"], err.get("input")
    field = ConsoleSection.model_fields.get(key)
    if kind == "string_pattern_mismatch" and field is not None and field.description:
        return f"must be {field.description}", False
    if kind == "literal_error":
        return "must be `1`", isinstance(value, str)
    if kind in RANGES and _range(key):
        return f"must be {_range(key)}", False
    if kind in TYPES:
        return TYPES[kind], isinstance(value, str) and kind != "string_type"
    return str(err["msg"]).lower(), False


class _Where:
    """Names a place: ``FILE:LINE: [console] KEY`` for the file, ``--option`` for an option."""

    def __init__(self, source: str, text: str, given: Mapping[str, tuple[str, Any]]) -> None:
        self.source, self.lines, self.given = source, text.splitlines(), given

    def line(self, table: str, key: str) -> int | None:
        """The line ``key`` is set on in ``[table]`` ("" the top), found by reading the text."""
        current = ""
        pattern = re.compile(
            rf"""^\s*(?:{re.escape(key)}|"{re.escape(key)}"|'{re.escape(key)}')\s*="""
        )
        for number, line in enumerate(self.lines, 1):
            header = re.match(r"^\s*\[\s*([^\]\s]+)\s*\]", line)
            if header:
                current = header.group(1).strip("\"'")
            elif current == table and pattern.match(line):
                return number
        return None

    def file(self, loc: tuple[int | str, ...]) -> str:
        if len(loc) >= 2:
            table, key = str(loc[0]), str(loc[1])
            number = self.line(table, key)
            name = f"[{table}] {key}"
        elif loc:
            number = self.line("", str(loc[0])) or self._header(str(loc[0]))
            name = f"[{loc[0]}]" if self._header(str(loc[0])) else f"`{loc[0]}`"
        else:
            number, name = None, "the file"
        return f"{self.source}:{number}: {name}" if number else f"{self.source}: {name}"

    def _header(self, table: str) -> int | None:
        for number, line in enumerate(self.lines, 1):
            if re.match(rf"^\s*\[\s*{re.escape(table)}\s*\]", line):
                return number
        return None

    def __call__(self, loc: tuple[int | str, ...]) -> str:
        if len(loc) >= 2 and loc[0] == "console" and str(loc[1]) in self.given:
            return self.given[str(loc[1])][0]
        return self.file(loc)


def describe(err: Mapping[str, Any], where: _Where) -> str:
    """One validation error in words: where, what is allowed and what was found."""
    loc, kind, value = tuple(err["loc"]), err["type"], err.get("input")
    if kind == "extra_forbidden":
        known = list(ConsoleSection.model_fields) if len(loc) > 1 else ["version", "console"]
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        hint = f" (did you mean `{close[0]}`?)" if close else ""
        if len(loc) == 1 and isinstance(value, dict):
            return f"{where(loc)} is not a known section{hint}"
        return f"{where(loc)} is not a known key{hint}"
    if kind == "value_error":  # a rule across keys: its own words
        return f"{where(loc)} {err.get('ctx', {}).get('error', err['msg'])}"
    rule, quoted = _rule(err, str(loc[-1]) if loc else "")
    if quoted:
        return f'{where(loc)} {rule}, without quotes; got `"{_shown(value)[1:-1]}"`'
    return f"{where(loc)} {rule}; got {_shown(value)}"


# --- reading and merging --------------------------------------------------------------------------


def read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise ConsoleConfigProblems([f"{path}: cannot be read: {err.strerror or err}"]) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise ConsoleConfigProblems(
            [f"{path}: is not UTF-8 text: byte 0x{raw[err.start]:02x} at line {line}"]
        ) from None


def parse_toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConsoleConfigProblems([f"{source}: is not valid TOML: {err}"]) from None
    except RecursionError:
        raise ConsoleConfigProblems([f"{source}: is not valid TOML: nested too deeply"]) from None


def config_path(args: argparse.Namespace, environ: Mapping[str, str]) -> Path | None:
    """``--config``, else ``$FLEET_CONSOLE_CONFIG``, else none (options only)."""
    value = getattr(args, "config", None) or environ.get(ENV) or None
    return Path(value) if value else None


def console_options(
    args: argparse.Namespace,
    parser: argparse.ArgumentParser,
    environ: Mapping[str, str] | None = None,
) -> ConsoleOptions:
    """The file's values (``--config`` or ``$FLEET_CONSOLE_CONFIG``) under the options given.

    Raises :class:`ConsoleConfigProblems` with every mistake at once: the file's keys and types,
    options out of range, no broker, files the console reads that are not there, an unknown time
    zone."""
    environ = os.environ if environ is None else environ
    path = config_path(args, environ)
    source = str(path) if path is not None else "the command line"
    text = read_text(path) if path is not None else ""
    data = parse_toml(text, source) if path is not None else {}
    given = given_options(args, parser)
    where = _Where(source, text, given)
    merged = dict(data)
    section = merged.get("console", {})
    if isinstance(section, dict):
        merged["console"] = {**section, **{key: value for key, (_, value) in given.items()}}
    problems: list[str] = []
    config: ConsoleConfig | None = None
    try:
        config = ConsoleConfig.model_validate(merged)
    except ValidationError as err:
        problems = [describe(e, where) for e in err.errors(include_url=False)]
    # these read the values themselves, so they are said even when other keys are wrong
    values = merged.get("console", {})
    problems += _checks(values if isinstance(values, dict) else {}, where, path is not None)
    named = values.get("timezone") if isinstance(values, dict) else None
    timezone = named if isinstance(named, str) and named else environ.get("FLEET_TIMEZONE", "")
    timezone = timezone or "Asia/Shanghai"
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = where(("console", "timezone")) if named else "$FLEET_TIMEZONE"
        problems.append(
            f"{zone} must be an IANA time zone name such as `Asia/Shanghai` or `UTC`; "
            f"got `{timezone}`"
        )
    if problems or config is None:
        raise ConsoleConfigProblems(problems)
    return ConsoleOptions(config.console, timezone, source)


def _checks(values: Mapping[str, Any], where: _Where, from_file: bool) -> list[str]:
    problems = []
    if not values.get("broker"):
        if from_file:
            problems.append(f"{where.source}: no broker: set [console] broker or give --broker")
        else:
            problems.append("no broker: give --broker HOST:PORT, or --config FILE")
    for key in FILES:
        value = values.get(key)
        if isinstance(value, str) and value and not Path(value).is_file():
            problems.append(f"{where(('console', key))} must name a file; `{value}` is not one")
    for key in FOLDERS:
        value = values.get(key)
        if isinstance(value, str) and value and not Path(value).is_dir():
            problems.append(f"{where(('console', key))} must name a folder; `{value}` is not one")
    return problems
