"""``fleet``: the centre's command line (``console``, ``ca``, ``enroll``, ``catalog``, ...).

The argparse tree is :mod:`fleet.cli.parser` (fast to import: ``fleet --help`` loads no database
or web code); each subcommand names the function that runs it, imported after parsing.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import socket
import sys
from collections.abc import Callable
from pathlib import Path


def verify_token(
    token: str, key_files: list[Path], folder: Path | None, db_url: str | None = None
) -> int:
    """Print valid / forged / unknown key; exit 0, 1 or 2 accordingly."""
    from fleet.console.enroll import token_keys_at
    from flows.tokens import Verdict, key_id, load_public, verify

    files = list(key_files) + (sorted(folder.glob("*.pub")) if folder else [])
    keys = token_keys_at(db_url) if db_url else {}  # enrolled stations' keys
    for path in files:
        public = load_public(path.read_bytes())
        keys[key_id(public)] = public
    verdict, claims = verify(token, keys)
    if verdict is Verdict.VALID and claims is not None:
        from fleet.cli.timefmt import local_time

        issued = local_time().when(claims.issued)
        print(f"valid: {claims.doc_type} {claims.doc_id}, issued {issued}")
        return 0
    print(verdict.value)
    return 1 if verdict is Verdict.FORGED else 2


def main(argv: list[str] | None = None) -> int:
    from fleet.cli.parser import build_parser

    args = build_parser(default_db_url()).parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    module, _, name = str(args.run).partition(":")
    run: Callable[[argparse.Namespace], int] = getattr(importlib.import_module(module), name)
    return int(run(args))


def run_catalog(args: argparse.Namespace) -> int:
    from fleet.cli import catalog as catalog_cli
    from fleet.trust.catalog_repo import RepositoryError
    from flows.catalog import CatalogError

    try:
        return catalog_cli.run(args)
    except CatalogError as err:  # said plainly, one line per problem, not as a traceback
        for path, rule in err.problems:
            where = f"{err.source}: {path}"
            print(f"fleet catalog {args.catalog_command}: {where}: {rule}", file=sys.stderr)
        return 2
    except RepositoryError as err:
        print(f"fleet catalog {args.catalog_command}: {err}", file=sys.stderr)
        return 2


def run_verify(args: argparse.Namespace) -> int:
    return verify_token(args.token, args.key, args.keys, args.db)


def add_user(args: argparse.Namespace) -> int:
    from fleet.console import Console

    Console("127.0.0.1", 0, db_url=args.db).add_user(
        args.name, args.password_file.read_text().strip(), args.role
    )
    print(f"user {args.name} ({args.role}) added")
    return 0


def default_db_url() -> str:
    from platformdirs import user_data_dir

    folder = Path(user_data_dir("station-kiosk"))
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'console.sqlite3'}"


def run_console(args: argparse.Namespace) -> int:
    from fleet.cli.timefmt import zone_name
    from fleet.console import Console, Settings, WebSettings
    from fleet.console.zone import ZoneError, load
    from fleet.mqtt.client import TlsFiles
    from fleet.trust.pki import CertificateAuthority

    timezone = args.timezone or zone_name()
    try:
        load(timezone)
    except ZoneError as err:
        print(f"fleet console: --timezone: {err}", file=sys.stderr)
        return 2
    password = args.password_file.read_text().strip() if args.password_file else ""
    host, port = args.broker
    http_host, http_port = args.http
    console = Console(
        host,
        port,
        password=password,
        db_url=args.db or default_db_url(),
        tls=TlsFiles(*args.tls) if args.tls else None,
        ca=CertificateAuthority.load(*args.fleet_ca) if args.fleet_ca else None,
        settings=Settings(
            offline_alert_after_s=args.offline_alert_after,
            webhook_url=args.webhook,
            timezone=timezone,
            share_group=args.share_group or None,
            client_id=args.client_id or f"console-{socket.gethostname()}-{http_port}"[:64],
            session_expiry_s=args.session_expiry,
            followup_due_s=args.followup_due_hours * 3600.0,
            console_url=f"http://{http_host}:{http_port}",
        ),
        web=WebSettings(
            secure_cookies=not args.insecure_cookies,
            metrics_token=(
                args.metrics_token_file.read_text().strip() if args.metrics_token_file else None
            ),
            token_keys_dir=args.token_keys,
            crl_file=args.crl,
            catalog_repo=args.catalog_repo,
            catalog_url=args.catalog_url,
        ),
    )
    if args.admin_password_file:
        console.ensure_admin(args.admin_password_file)
    return console.serve(http_host, http_port)
