"""``fleet``: the centre's command line (``console``, ``ca``, ``enroll``, ``catalog``, ...).

The argparse tree is :mod:`fleet.cli.parser` (fast to import: ``fleet --help`` loads no database
or web code); each subcommand names the function that runs it, imported after parsing.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fleet.cli.console_config import ConsoleOptions
    from fleet.console.call_records import RecordingPolicy


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
    from fleet.cli.legacy import translate
    from fleet.cli.parser import build_parser

    argv, deprecated = translate(sys.argv[1:] if argv is None else list(argv))
    if deprecated:  # an old form (enroll --revoke, alerts --ack, ...): it still works, for now
        print(deprecated, file=sys.stderr)
    default_db = default_db_url()
    args = build_parser(default_db).parse_args(argv)  # --help and --version end here
    if default_db in vars(args).values():  # the command may open the default database
        default_db_folder().mkdir(parents=True, exist_ok=True)
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


def default_db_folder() -> Path:
    """Where the console's default SQLite database lives (the user's data folder)."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("station-kiosk"))


def default_db_url() -> str:
    """The default database's URL. Naming it creates nothing: ``fleet --help`` shows it and
    writes nothing; the folder is made when a command that may open it runs."""
    return f"sqlite:///{default_db_folder() / 'console.sqlite3'}"


def default_db_url_made() -> str:
    """The default database's URL, its folder made."""
    default_db_folder().mkdir(parents=True, exist_ok=True)
    return default_db_url()


def ice_servers(path: Path | None) -> list[dict[str, Any]] | None:
    """The call page's STUN/TURN servers (``--ice-servers-file``): a JSON list of RTCIceServer
    objects (``urls``, ``username``, ``credential``), handed to the browser as written."""
    if path is None:
        return None
    servers = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(servers, list) or not all(
        isinstance(s, dict) and "urls" in s for s in servers
    ):
        raise SystemExit(f"{path}: a JSON list of objects with urls (RTCIceServer)")
    return servers


def run_console(args: argparse.Namespace) -> int:
    from fleet.cli.console_config import ConsoleConfigProblems, console_options
    from fleet.cli.parser import console_parser

    try:  # the file under the options given, every mistake at once, before anything starts
        options = console_options(args, console_parser())
    except ConsoleConfigProblems as err:
        say_config_problems(err.problems)
        return 2
    return start_console(options)


def say_config_problems(problems: tuple[str, ...]) -> None:
    """One line for one mistake; a heading and one indented line each for several."""
    if len(problems) == 1:
        print(f"fleet console: configuration error: {problems[0]}", file=sys.stderr)
        return
    said = "\n".join(f"  {line}" for line in problems)
    print(f"fleet console: {len(problems)} configuration errors:\n{said}", file=sys.stderr)


def recording_policy(options: ConsoleOptions) -> RecordingPolicy:
    """Calls recorded with consent (``call_recording``, ``call_recording_days``), kept in
    ``call_recordings_dir`` or ``recordings`` in the user data folder."""
    from fleet.console.call_records import RecordingPolicy

    c = options.section
    folder = options.path("call_recordings_dir") or default_db_folder() / "recordings"
    return RecordingPolicy(c.call_recording, c.call_recording_days, folder)


def start_console(options: ConsoleOptions) -> int:
    from fleet.console import Console, Settings, WebSettings
    from fleet.mqtt.client import TlsFiles
    from fleet.trust.pki import CertificateAuthority

    c = options.section
    host, port = options.broker
    http_host, http_port = options.http
    tls = (c.tls_ca, c.tls_cert, c.tls_key)
    password_file, metrics_token_file = (
        options.path("password_file"),
        options.path("metrics_token_file"),
    )
    console = Console(
        host,
        port,
        password=password_file.read_text().strip() if password_file else "",
        db_url=c.db or default_db_url_made(),
        tls=TlsFiles(*(Path(p) for p in tls)) if all(tls) else None,
        ca=(
            CertificateAuthority.load(Path(c.fleet_ca_cert), Path(c.fleet_ca_key))
            if c.fleet_ca_cert
            else None
        ),
        settings=Settings(
            offline_alert_after_s=c.offline_alert_after,
            webhook_url=c.webhook or None,
            timezone=options.timezone,
            share_group=c.share_group or None,
            client_id=c.client_id or f"console-{socket.gethostname()}-{http_port}"[:64],
            session_expiry_s=c.session_expiry,
            followup_due_s=c.followup_due_hours * 3600.0,
            console_url=f"http://{http_host}:{http_port}",
            recording=recording_policy(options),
        ),
        web=WebSettings(
            secure_cookies=not c.insecure_cookies,
            metrics_token=(metrics_token_file.read_text().strip() if metrics_token_file else None),
            token_keys_dir=options.path("token_keys"),
            crl_file=options.path("crl"),
            catalog_repo=options.path("catalog_repo"),
            catalog_url=c.catalog_url or None,
            ice_servers=ice_servers(options.path("ice_servers_file")),
        ),
    )
    admin_password_file = options.path("admin_password_file")
    if admin_password_file:
        console.ensure_admin(admin_password_file)
    return console.serve(http_host, http_port)
