"""``fleet catalog ...`` and ``fleet rollout ...``: their argparse subtrees (see
:mod:`fleet.cli.parser`; the code that runs them is :mod:`fleet.cli.catalog` and
:mod:`fleet.cli.rollout`). The rollout policy's defaults written here are
:class:`fleet.console.rollout.Policy`'s; a test checks they agree.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

Hostport = tuple[str, int]

# fleet.console.rollout.Policy's defaults, as the help shows them (tests/fleet/cli/test_cli_help.py)
POLICY_DEFAULTS = {
    "canary": 1,
    "percent": 50.0,
    "advance_at": 0.9,
    "abort_above": 0.2,
    "min_results": 10,
    "wave_timeout_s": 600.0,
    "soak_s": 300.0,
}


def hostport(value: str) -> Hostport:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host, int(port)


def _command(sub: Any, name: str, text: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(name, help=text, description=text)
    return parser


def add_catalog(sub: Any) -> None:
    """Add ``catalog`` and its subcommands to ``fleet``'s subparsers."""
    catalog = _command(sub, "catalog", "the signed catalog repository (TUF)")
    catalog.set_defaults(run="fleet.cli:run_catalog")
    commands = catalog.add_subparsers(dest="catalog_command", required=True, metavar="COMMAND")

    def command(name: str, text: str) -> argparse.ArgumentParser:
        parser = _command(commands, name, text)
        parser.add_argument("--repo", type=Path, required=True, help="the repository folder")
        return parser

    def keys(parser: argparse.ArgumentParser, option: str = "--key-count") -> None:
        parser.add_argument(
            option, type=int, default=3, help="how many root keys to make (default: 3)"
        )
        parser.add_argument(
            "--threshold",
            type=int,
            default=2,
            help="how many of them must sign a new root (default: 2)",
        )

    name_help = "its target name in the repository (default: catalog.toml)"
    init = command("init", "create a repository and its keys")
    init.add_argument(
        "--root-keys", type=Path, required=True, help="folder for the root keys, to keep offline"
    )
    keys(init, "--root-key-count")
    command("anchor", "print the current root, the trust anchor of new terminals")
    check = _command(
        commands, "validate", "check a catalog as a terminal would, and what it changes"
    )
    check.add_argument("catalog", type=Path, help="the catalog file (TOML)")
    check.add_argument("--repo", type=Path, help="compare with the catalog live in this repository")
    check.add_argument("--name", default="catalog.toml", help=name_help)
    check.add_argument("--json", action="store_true", help="one JSON object instead of text")
    sign = command("sign", "validate a catalog and sign it into the repository")
    sign.add_argument("catalog", type=Path, help="the catalog file (TOML)")
    sign.add_argument("--name", default="catalog.toml", help=name_help)
    publish = command("publish", "send a station the desired catalog (retained, QoS 1)")
    publish.add_argument("--name", default="catalog.toml", help=name_help)
    publish.add_argument("--broker", type=hostport, required=True, help="the MQTT broker HOST:PORT")
    publish.add_argument(
        "--password-file", type=Path, required=True, help="file holding the console's MQTT password"
    )
    publish.add_argument("--site", required=True, help="the station's site")
    publish.add_argument("--station", required=True, help="the station's id")
    publish.add_argument("--rev", type=int, required=True, help="must rise at every publish")
    publish.add_argument(
        "--base-url", required=True, help="where the repository is served, e.g. http://repo/"
    )
    rotate = command("rotate-key", "replace an online key through a new root")
    rotate.add_argument(
        "role", choices=["targets", "snapshot", "timestamp"], help="the role whose key to replace"
    )
    rotate.add_argument(
        "--root-keys", type=Path, required=True, help="the offline folder of root keys"
    )
    root = command("rotate-root", "replace the root keys (signed by the old and the new)")
    root.add_argument("--root-keys", type=Path, required=True, help="the current root keys")
    root.add_argument(
        "--new-root-keys", type=Path, required=True, help="folder for the new root keys (offline)"
    )
    keys(root)
    command("refresh", "sign a fresh timestamp (it expires daily)")
    serve = command("serve", "serve the repository over HTTP")
    serve.add_argument(
        "--http",
        type=hostport,
        default=("127.0.0.1", 8081),
        help="where to serve it, HOST:PORT (default: 127.0.0.1:8081)",
    )


def add_rollout(sub: Any, db_help: str, default_db: str) -> None:
    """Add ``rollout`` and its subcommands to ``fleet``'s subparsers."""
    rollout = _command(sub, "rollout", "catalog rollouts: start, status, list, pause, ...")
    rollout.set_defaults(run="fleet.cli.rollout:run")
    commands = rollout.add_subparsers(dest="rollout_command", required=True, metavar="COMMAND")

    def command(name: str, text: str, *, steer: bool = False) -> argparse.ArgumentParser:
        parser = _command(commands, name, text)
        parser.add_argument("--db", default=default_db, help=db_help)
        parser.add_argument("--json", action="store_true", help="JSON instead of text")
        if steer:
            parser.add_argument("--as", dest="actor", required=True, help="console user")
            parser.add_argument(
                "--timeout",
                type=float,
                default=30.0,
                metavar="S",
                help="seconds to wait for the console to take the request up (default: 30)",
            )
        return parser

    d = POLICY_DEFAULTS
    start = command("start", "roll a signed catalog out (canary → percent → all)", steer=True)
    scope = start.add_mutually_exclusive_group(required=True)
    scope.add_argument("--all", action="store_true", help="every station the console knows")
    scope.add_argument("--site", help="every station of this site")
    scope.add_argument("--stations", nargs="+", metavar="SITE/STATION", help="these stations")
    catalog = start.add_argument_group("the catalog: from a repository, or given field by field")
    catalog.add_argument("--repo", help="the catalog repository (fleet catalog init)")
    catalog.add_argument(
        "--name", default="catalog.toml", help="its target name in --repo (default: catalog.toml)"
    )
    catalog.add_argument("--base-url", help="where --repo is served, e.g. http://repo.example/")
    catalog.add_argument("--target", help="the TUF target name")
    catalog.add_argument("--version", help="the catalog version (a whole number from 1)")
    catalog.add_argument("--sha256", help="the catalog file's SHA-256, 64 hex digits")
    catalog.add_argument("--length", help="the catalog file's length in bytes")
    catalog.add_argument("--metadata-url", help="where the terminals fetch TUF metadata")
    catalog.add_argument("--targets-url", help="where they fetch targets (optional)")
    policy = start.add_argument_group("policy")
    policy.add_argument(
        "--canary",
        metavar="N",
        help=f"this many canary stations, from the head of the list (default: {d['canary']})",
    )
    policy.add_argument(
        "--canary-stations",
        nargs="+",
        metavar="SITE/STATION",
        help="these canary stations instead (default: the head of the list)",
    )
    policy.add_argument(
        "--percent",
        help=f"the middle wave: this share (%%) of all stations (default: {d['percent']:g})",
    )
    policy.add_argument(
        "--advance-at",
        dest="advance_at_pct",
        metavar="PCT",
        help=f"success %% that starts the next wave (default: {d['advance_at'] * 100:g})",
    )
    policy.add_argument(
        "--abort-above",
        dest="abort_above_pct",
        metavar="PCT",
        help=f"failure %% that aborts the rollout (default: {d['abort_above'] * 100:g})",
    )
    policy.add_argument(
        "--min-results",
        help=f"results needed before the failure rate counts (default: {d['min_results']})",
    )
    policy.add_argument(
        "--wave-timeout",
        dest="wave_timeout_s",
        metavar="S",
        help="seconds after which a station with no result counts as failed "
        f"(default: {d['wave_timeout_s']:g})",
    )
    policy.add_argument(
        "--soak",
        dest="soak_s",
        metavar="S",
        help=f"seconds to watch a wave before the next (default: {d['soak_s']:g})",
    )
    _follow_options(start)
    status = command("status", "a rollout's state, wave and counts")
    status.add_argument("rollout_id", metavar="ID", help="the rollout's id")
    _follow_options(status)
    listing = command("list", "recent rollouts, newest first")
    listing.add_argument(
        "--limit", type=int, default=20, help="at most this many rollouts (default: 20)"
    )
    for name in ("pause", "resume", "abort", "retry"):
        text = "retry only the failed stations of" if name == "retry" else name
        steer = command(name, f"{text} a rollout", steer=True)
        steer.add_argument("rollout_id", metavar="ID", help="the rollout's id")
        if name == "abort":
            steer.add_argument("--reason", default="", help="why (shown with the rollout)")


def _follow_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--wait", action="store_true", help="follow the rollout until completed or aborted"
    )
    parser.add_argument(
        "--wait-timeout",
        type=float,
        metavar="S",
        help="give up following after S seconds (default: never)",
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=0.5,
        metavar="S",
        help="seconds between looks while following (default: 0.5)",
    )
