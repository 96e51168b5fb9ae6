"""``fleet``: the centre's command line (``console``, ``catalog``, ``verify``, ``simulate``)."""

from __future__ import annotations

import argparse
import logging
import socket
import sys
from pathlib import Path


def _hostport(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host, int(port)


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
    parser = argparse.ArgumentParser(prog="fleet", description="Station kiosk fleet (centre side)")
    sub = parser.add_subparsers(dest="command", required=True)
    console = sub.add_parser("console", help="run the web console")
    console.add_argument("--broker", type=_hostport, required=True, help="MQTT broker HOST:PORT")
    console.add_argument(
        "--http",
        type=_hostport,
        default=("127.0.0.1", 8080),
        help="where to serve the web console (HOST:PORT)",
    )
    console.add_argument(
        "--password-file", type=Path, help="file holding the console's MQTT password"
    )
    _console_options(console)
    user = sub.add_parser("user", help="add a console user (technician, operator, admin)")
    user.add_argument("--db", default=default_db_url(), help="console database URL")
    user.add_argument("--name", required=True)
    user.add_argument("--role", required=True, choices=["technician", "operator", "admin"])
    user.add_argument("--password-file", type=Path, required=True, help="file with the password")
    from fleet.cli import ops as ops_cli

    ops_cli.add_parsers(sub, default_db_url())  # fleet stations, fleet alerts
    from fleet.cli import keys as keys_cli
    from fleet.cli import rollout as rollout_cli

    rollout_cli.add_parser(sub, default_db_url())  # fleet rollout start/status/list/pause/...
    keys_cli.add_parser(sub, default_db_url())  # fleet keys list
    from fleet.cli import enroll as enroll_cli

    enroll_cli.add_parser(sub, default_db_url())  # fleet enroll, --revoke, --write-crl, --list
    from fleet.cli import followups as followups_cli

    followups_cli.add_parser(sub, default_db_url())  # fleet followups [--set ID STATE --note]
    verify = sub.add_parser("verify", help="check a certificate's QR token offline")
    verify.add_argument("token")
    verify.add_argument(
        "--key",
        type=Path,
        action="append",
        default=[],
        help="a station's document-signing public key (PEM); repeat for several",
    )
    verify.add_argument("--keys", type=Path, help="a folder of *.pub station keys")
    verify.add_argument("--db", help="also the keys recorded at enrolment (console database URL)")
    simulate = sub.add_parser("simulate", help="simulated terminals, one MQTT connection each")
    simulate.add_argument("--kiosks", type=int, default=100, help="how many terminals")
    simulate.add_argument(
        "--broker", type=_hostport, help="MQTT broker HOST:PORT (default: a private mosquitto)"
    )
    simulate.add_argument("--sites", type=int, default=10)
    simulate.add_argument("--health-interval", type=float, default=60.0, metavar="S")
    simulate.add_argument("--event-interval", type=float, default=300.0, metavar="S")
    simulate.add_argument("--failure-fraction", type=float, default=0.0)
    simulate.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    simulate.add_argument("--seed", type=int, default=0)
    from fleet.cli import catalog as catalog_cli

    catalog_cli.add_parser(sub)  # fleet catalog init/sign/publish/rotate-key/...
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.command == "catalog":
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
    if args.command == "verify":
        return verify_token(args.token, args.key, args.keys, args.db)
    if args.command == "stations":
        return ops_cli.run_stations(args)
    if args.command == "alerts":
        return ops_cli.run_alerts(args)
    if args.command in ("rollout", "keys", "enroll", "followups"):
        return int(args.run(args))
    if args.command == "simulate":
        from fleet.simulate.process import simulate_command

        return simulate_command(args)
    if args.command == "console":
        return run_console(args)
    if args.command == "user":
        from fleet.console import Console

        Console("127.0.0.1", 0, db_url=args.db).add_user(
            args.name, args.password_file.read_text().strip(), args.role
        )
        print(f"user {args.name} ({args.role}) added")
        return 0
    return 2


def default_db_url() -> str:
    from platformdirs import user_data_dir

    folder = Path(user_data_dir("station-kiosk"))
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'console.sqlite3'}"


def _console_options(console: argparse.ArgumentParser) -> None:
    add = console.add_argument
    add("--db", default=None, help="database URL (default: SQLite in the user data folder)")
    add("--admin-password-file", type=Path, help="with no user yet, make 'admin' with this")
    add("--insecure-cookies", action="store_true", help="plain HTTP on loopback (development)")
    add("--webhook", help="URL that new alerts are POSTed to (JSON)")
    add("--followup-due-hours", type=float, default=24.0, help="a bad review is settled within")
    add("--offline-alert-after", type=float, default=300.0, help="seconds offline before alerting")
    add(
        "--timezone",
        "--duty-timezone",  # the old name: duty hours are in the stations' zone too
        dest="timezone",
        help="the stations' time zone: duty hours, times on pages, statistics' days "
        "(default: $FLEET_TIMEZONE, else Asia/Shanghai)",
    )
    add("--fleet-ca", type=Path, nargs=2, metavar=("CERT", "KEY"), help="signs renewal CSRs")
    add("--tls", type=Path, nargs=3, metavar=("CA", "CERT", "KEY"), help="TLS to the broker")
    add("--token-keys", type=Path, help="folder of station *.pub keys for the verify page")
    add("--crl", type=Path, help="the CRL file a revocation on the Enrolment page rewrites")
    add("--metrics-token-file", type=Path, help="bearer token Prometheus uses for /metrics")
    add("--share-group", default="console", help="MQTT shared-subscription group ('' = none)")
    add("--client-id", help="the ingest's MQTT client id (default: console-HOST-HTTPPORT)")
    add(
        "--session-expiry",
        type=int,
        default=3600,
        metavar="S",
        help="how long the broker keeps this console's share while it is away (0: not at all)",
    )
    add(
        "--catalog-repo", type=Path, help="the catalog repository (fleet catalog init) to sign into"
    )
    add("--catalog-url", help="where that repository is served, e.g. http://repo.example/")


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
