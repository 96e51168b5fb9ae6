"""The ``fleet`` command line's argparse tree, and nothing that is slow to import.

Every subcommand is defined here with its one-line description and every option with its help
(units and defaults); the code that runs a subcommand lives in its own module and is imported
only once the command line has been parsed (``run`` names it as ``"module:function"``), so
``fleet --help`` and a mistyped option answer without loading SQLAlchemy, the console's web
application or argon2 (docs/performance.md, "fleet --help start-up").
``tests/fleet/cli/test_cli_help.py`` walks this tree: an option or subcommand without help text
fails it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from fleet.cli.parser_catalog import add_catalog, add_rollout, hostport

# the console's station states and follow-up states (fleet.console.views.STATUSES,
# fleet.console.followups.STATES), here so that parsing needs no database code; a test checks
# they agree
STATION_STATUSES = ("online", "stale", "offline", "out_of_order")
FOLLOWUP_STATES = ("open", "contacted", "unreachable", "resolved")

EPILOG = """\
exit statuses:
  0   done
  1   refused or failed: a check did not pass, a file or the database could not be used,
      a forged QR token (fleet verify), a rollout request refused
  2   usage: a wrong option or argument, an invalid catalog, a token signed by an unknown key
      (fleet verify), an unknown $FLEET_TIMEZONE
  3   fleet rollout: the console did not take the request up within --timeout

environment:
  FLEET_TIMEZONE  the stations' time zone the commands print times in, and fleet console's
                  default for --timezone (default: Asia/Shanghai)
  FLEET_CONSOLE_CONFIG
                  fleet console's TOML configuration file when --config is not given

Each subcommand has its own help: fleet COMMAND --help."""


class _Version(argparse.Action):
    """``--version``: the installed distribution's version, looked up only when asked for."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kw: Any):
        super().__init__(option_strings, dest=dest, nargs=0, default=argparse.SUPPRESS, **kw)

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        from fleet.version import version

        print(f"{parser.prog} {version()}")
        parser.exit()


def command(sub: Any, name: str, text: str, **kw: Any) -> argparse.ArgumentParser:
    """A subcommand whose one line shows in its parent's list and heads its own --help."""
    parser: argparse.ArgumentParser = sub.add_parser(name, help=text, description=text, **kw)
    return parser


def build_parser(default_db: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fleet",
        description="Station kiosk fleet, the centre's side: the console, its database, the "
        "fleet CA, the signed catalog and its rollouts.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version", action=_Version, help="print the installed version of fleet and exit"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    db_help = f"the console's database URL (default: {default_db})"
    _console(sub)
    _user(sub, db_help, default_db)
    _ops(sub, db_help, default_db)
    add_rollout(sub, db_help, default_db)
    _keys(sub, default_db)
    _enroll(sub, default_db)
    _ca(sub, default_db)
    _followups(sub, db_help, default_db)
    _calls(sub, db_help, default_db)
    _verify(sub)
    _document(sub, db_help, default_db)
    _simulate(sub)
    add_catalog(sub)
    return parser


CONSOLE_EPILOG = """\
configuration file:
  --config FILE (or $FLEET_CONSOLE_CONFIG) names a TOML file with version = 1 and a [console]
  section holding one key per option, named as the option with underscores (--session-expiry:
  session_expiry); --tls CA CERT KEY is tls_ca, tls_cert, tls_key and --fleet-ca CERT KEY is
  fleet_ca_cert, fleet_ca_key. An option given here wins over the file. Every key is described
  in assets/config/console.example.toml.

exit statuses:
  0   stopped
  2   usage: a wrong option, or a wrong configuration: every mistake is printed at once, naming
      the file, line and key (or the option), and nothing is started

environment:
  FLEET_CONSOLE_CONFIG  the configuration file when --config is not given
  FLEET_TIMEZONE        the default for --timezone when neither it nor the file sets one"""


def console_parser() -> argparse.ArgumentParser:
    """``fleet console``'s parser on its own: the options its configuration file mirrors."""
    sub = argparse.ArgumentParser(prog="fleet").add_subparsers()
    _console(sub)
    parser: argparse.ArgumentParser = sub.choices["console"]
    return parser


def _console(sub: Any) -> None:
    # options default to absent, so that the file's values stand where no option was given; the
    # defaults are the file's (fleet.console.config), the help says them
    console = command(
        sub,
        "console",
        "run the web console (and the ingest of station messages)",
        epilog=CONSOLE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        argument_default=argparse.SUPPRESS,
    )
    console.set_defaults(run="fleet.cli:run_console")
    console.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="the console's TOML configuration; options given here win over it "
        "(default: $FLEET_CONSOLE_CONFIG, else none)",
    )
    add = console.add_argument
    add(
        "--broker", type=hostport, help="the MQTT broker, HOST:PORT (required, here or in the file)"
    )
    add(
        "--http",
        type=hostport,
        help="where to serve the web console, HOST:PORT (default: 127.0.0.1:8080)",
    )
    add("--password-file", type=Path, help="file holding the console's MQTT password (no TLS)")
    add("--db", help="database URL (default: SQLite in the user data folder)")
    add(
        "--admin-password-file",
        type=Path,
        help="with no user yet, make the user 'admin' with the password in this file",
    )
    add("--insecure-cookies", action="store_true", help="plain HTTP on loopback (development)")
    add("--webhook", help="URL that new alerts are POSTed to, as JSON (default: none)")
    add(
        "--followup-due-hours",
        type=float,
        metavar="HOURS",
        help="hours within which a bad review is to be followed up (default: 24)",
    )
    add(
        "--offline-alert-after",
        type=float,
        metavar="S",
        help="seconds a station is offline before it is alerted (default: 300)",
    )
    add(
        "--timezone",
        "--duty-timezone",  # the old name: duty hours are in the stations' zone too
        dest="timezone",
        help="the stations' time zone: duty hours, times on pages, statistics' days "
        "(default: $FLEET_TIMEZONE, else Asia/Shanghai)",
    )
    add(
        "--fleet-ca",
        type=Path,
        nargs=2,
        metavar=("CERT", "KEY"),
        help="the fleet CA's certificate and key: sign renewal CSRs, enrol (default: neither)",
    )
    add(
        "--tls",
        type=Path,
        nargs=3,
        metavar=("CA", "CERT", "KEY"),
        help="TLS to the broker: the CA's certificate, the console's certificate and key",
    )
    add("--token-keys", type=Path, help="folder of station *.pub keys for the verify page")
    add("--crl", type=Path, help="the CRL file a revocation on the Enrolment page rewrites")
    add("--metrics-token-file", type=Path, help="bearer token Prometheus uses for /metrics")
    add(
        "--share-group",
        help="MQTT shared-subscription group, '' for none (default: console)",
    )
    add("--client-id", help="the ingest's MQTT client id (default: console-HOST-HTTPPORT)")
    add(
        "--session-expiry",
        type=int,
        metavar="S",
        help="seconds the broker keeps this console's share while it is away, 0: not at all "
        "(default: 3600)",
    )
    add("--catalog-repo", type=Path, help="the catalog repository (fleet catalog init) to sign")
    add("--catalog-url", help="where that repository is served, e.g. http://repo.example/")
    add(
        "--ice-servers-file",
        type=Path,
        help="JSON list of STUN/TURN servers for the call page's browsers (RTCIceServer: urls, "
        "username, credential); default: none (direct connections only)",
    )
    add(
        "--call-recording",
        action="store_true",
        help="record calls, each only after the resident agreed on the station's screen "
        "(default: nothing is recorded)",
    )
    add(
        "--call-recording-days",
        type=int,
        metavar="DAYS",
        help="days a call's recording is kept, 1 to 3650 (default: 30)",
    )
    add(
        "--call-recordings-dir",
        type=Path,
        metavar="DIR",
        help="where recordings are kept, shared by every console process (default: "
        "'recordings' in the user data folder)",
    )


USER_ROLES = ("technician", "operator", "admin")  # fleet.console.store.ROLES; a test checks


def _user(sub: Any, db_help: str, default_db: str) -> None:
    user = command(sub, "user", "console users: add, list, disable, enable, set a password")
    user.set_defaults(run="fleet.cli.users:run")
    commands = user.add_subparsers(dest="user_command", required=True, metavar="COMMAND")

    def verb(name: str, text: str, *, named: bool = True) -> argparse.ArgumentParser:
        parser = command(commands, name, text)
        parser.add_argument("--db", default=default_db, help=db_help)
        if named:
            parser.add_argument("name", metavar="NAME", help="the user's login name")
        return parser

    def password(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--password-file",
            type=Path,
            metavar="FILE",
            help="file holding the password, at least 10 characters (default: asked for twice "
            "on the terminal, not echoed)",
        )

    add = verb("add", "add a console user (technician, operator or admin)")
    add.add_argument(
        "--role",
        required=True,
        choices=USER_ROLES,
        help="what they may do: technician (alerts, station commands), operator (catalogs, "
        "rollouts), admin (everything, users and keys too)",
    )
    password(add)
    listing = verb("list", "every console user: name, role, enabled or disabled", named=False)
    listing.add_argument("--json", action="store_true", help="one JSON array instead of a table")
    verb("disable", "stop a user logging in; their open sessions end (the last admin stays)")
    verb("enable", "let a disabled user log in again")
    password(verb("set-password", "set a user's password; their open sessions end"))


def _ops(sub: Any, db_help: str, default_db: str) -> None:
    st = command(sub, "stations", "every station with its state, devices and versions")
    st.set_defaults(run="fleet.cli.ops:run_stations")
    st.add_argument("--db", default=default_db, help=db_help)
    st.add_argument("--site", default="", help="only this site (default: every site)")
    st.add_argument("--status", choices=STATION_STATUSES, help="only stations in this state")
    st.add_argument("--json", action="store_true", help="one JSON array instead of a table")
    al = command(sub, "alerts", "alerts: list them, acknowledge one (and answer a help request)")
    al.set_defaults(run="fleet.cli.ops:run_alerts")
    commands = al.add_subparsers(dest="alerts_command", required=True, metavar="COMMAND")
    listing = command(commands, "list", "open alerts, help requests and faults first")
    listing.add_argument("--db", default=default_db, help=db_help)
    listing.add_argument("--all", action="store_true", help="resolved alerts too")
    listing.add_argument("--json", action="store_true", help="one JSON array instead of a table")
    ack = command(commands, "ack", "acknowledge an alert as a console user, as its page does")
    ack.add_argument("alert_id", type=int, metavar="ID", help="the alert's id (fleet alerts list)")
    ack.add_argument(
        "--as", dest="actor", required=True, help="console user who acknowledges (technician)"
    )
    ack.add_argument("--db", default=default_db, help=db_help)
    reply = ack.add_mutually_exclusive_group()  # an answer to a help request
    reply.add_argument("--on-the-way", type=int, metavar="MIN", help="answer: coming, in MIN min")
    reply.add_argument("--call", metavar="NUMBER", help="answer: please call NUMBER")
    reply.add_argument("--say", metavar="TEXT", help="answer: a short text (60 characters)")


def _keys(sub: Any, default_db: str) -> None:
    keys = command(sub, "keys", "the keys trust rests on: list them and their expiry, rotate one")
    keys.set_defaults(run="fleet.cli.keys:run", default_db=default_db)
    commands = keys.add_subparsers(dest="keys_command", required=True, metavar="COMMAND")
    listing = command(commands, "list", "every key with its expiry")
    listing.add_argument("--repo", type=Path, help="the catalog repository (fleet catalog init)")
    listing.add_argument(
        "--db", help=f"the console's database URL (default without --repo/--token-keys: "
        f"{default_db})",
    )  # fmt: skip
    listing.add_argument("--token-keys", type=Path, help="folder of station *.pub keys")
    listing.add_argument(
        "--within",
        type=float,
        default=30.0,
        metavar="DAYS",
        help="flag what expires within this many days (default: 30)",
    )
    listing.add_argument("--json", action="store_true", help="one JSON object instead of text")
    rotate = command(
        commands,
        "rotate",
        "replace a catalog role's online signing key, through a new root the root keys sign "
        "(as fleet catalog rotate-key)",
    )
    rotate.add_argument(
        "role",
        choices=["targets", "snapshot", "timestamp"],
        help="the role whose key to replace (root keys: fleet catalog rotate-root)",
    )
    rotate.add_argument(
        "--repo", type=Path, required=True, help="the catalog repository (fleet catalog init)"
    )
    rotate.add_argument(
        "--root-keys", type=Path, required=True, help="the offline folder of root keys"
    )
    rotate.add_argument(
        "--db",
        help="also record the rotation in this console database's audit log (default: not "
        "recorded)",
    )
    rotate.add_argument("--json", action="store_true", help="one JSON object instead of text")


def _enroll(sub: Any, default_db: str) -> None:
    p = command(sub, "enroll", "terminals' certificates: enrol, revoke, write the CRL, list")
    p.set_defaults(run="fleet.cli.enroll:run", default_db=default_db)
    commands = p.add_subparsers(dest="enroll_command", required=True, metavar="COMMAND")

    def verb(name: str, text: str, *, named: bool = False) -> argparse.ArgumentParser:
        parser = command(commands, name, text)
        if named:
            parser.add_argument("site", metavar="SITE", help="the terminal's site, e.g. zibo-gx")
            parser.add_argument(
                "station", metavar="STATION", help="the terminal's station id, e.g. st-0001"
            )
        parser.add_argument("--db", help=f"the console's database URL (default: {default_db})")
        parser.add_argument("--json", action="store_true", help="one JSON object instead of text")
        return parser

    def ca(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--ca-cert", type=Path, help="the fleet CA's certificate, ca.crt (required)"
        )
        parser.add_argument("--ca-key", type=Path, help="the fleet CA's private key (required)")

    def crl(parser: argparse.ArgumentParser, required: bool) -> None:
        also = "(required)" if required else "(default: none written)"
        parser.add_argument(
            "--crl", type=Path, help=f"the CRL file mosquitto's crlfile names, rewritten {also}"
        )

    doc_key_help = "the terminal's document-signing.pub (kiosk doc-key)"
    add = verb("add", "enrol a terminal: its certificate and key, files to copy to it", named=True)
    ca(add)
    add.add_argument("--out", type=Path, help="an empty folder for the terminal's files (required)")
    add.add_argument("--doc-key-pub", type=Path, help=f"{doc_key_help} (default: none yet)")
    add.add_argument(
        "--days", type=float, default=365.0, help="certificate validity in days (default: 365)"
    )
    crl(add, required=False)
    revoke = verb("revoke", "revoke a terminal's certificate and rewrite the CRL", named=True)
    revoke.add_argument("--reason", default="", help="why, in words (required; audited)")
    ca(revoke)
    crl(revoke, required=True)
    written = verb("crl", "(re)write the CRL from the console's database")
    ca(written)
    crl(written, required=True)
    verb("list", "every enrolment: state, certificate expiry, document key")
    doc = verb("set-doc-key", "record a terminal's document-signing key", named=True)
    doc.add_argument("--doc-key-pub", type=Path, help=f"{doc_key_help} (required)")


def _ca(sub: Any, default_db: str) -> None:
    ca = command(
        sub, "ca", "the fleet CA: create it, issue the broker's and console's certificates"
    )
    ca.set_defaults(run="fleet.cli.ca:run")
    commands = ca.add_subparsers(dest="ca_command", required=True, metavar="COMMAND")

    def step(name: str, text: str) -> argparse.ArgumentParser:
        parser = command(commands, name, text)
        parser.add_argument(
            "--dir",
            type=Path,
            default=Path("."),
            help="the CA's folder: ca.crt and ca.key, 0600 (default: the current folder)",
        )
        return parser

    def out(parser: argparse.ArgumentParser, days: int, what: str) -> None:
        parser.add_argument(
            "--out", type=Path, help=f"folder for {what}, keys 0600 (default: the CA's folder)"
        )
        parser.add_argument(
            "--days", type=int, default=days, help=f"validity in days (default: {days})"
        )
        parser.add_argument(
            "--force", action="store_true", help="replace a key and certificate already there"
        )

    init = step("init", "create the fleet CA (its key stays here, never on the broker)")
    init.add_argument(
        "--name",
        default="station kiosk fleet CA",
        help="the CA's common name (default: station kiosk fleet CA)",
    )
    init.add_argument(
        "--days", type=int, default=3650, help="validity in days (default: 3650, ten years)"
    )
    init.add_argument("--force", action="store_true", help="replace a CA already in --dir")
    broker = step("issue-broker", "the broker's server certificate: server.crt, server.key")
    broker.add_argument(
        "--host",
        action="append",
        required=True,
        metavar="NAME|ADDRESS",
        help="a DNS name or IP address clients reach the broker by (its subjectAltName); "
        "repeat for several, the first is also its common name",
    )
    out(broker, 825, "server.crt and server.key")
    console = step("issue-console", "the console's client certificate: console.crt, console.key")
    out(console, 365, "console.crt, console.key and a copy of ca.crt")
    revoke = step("revoke", "revoke certificates: record them and rewrite the broker's CRL")
    revoke.add_argument("cert", nargs="+", type=Path, help="certificate file(s) to revoke (PEM)")
    revoke.add_argument(
        "--reason", required=True, help="why, in words (audited, at most 200 characters)"
    )
    revoke.add_argument(
        "--crl", type=Path, required=True, help="the CRL file mosquitto's crlfile names"
    )
    revoke.add_argument("--db", help=f"the console's database URL (default: {default_db})")
    revoke.set_defaults(default_db=default_db)
    for parser in (init, broker, console, revoke):
        parser.add_argument("--json", action="store_true", help="one JSON object instead of text")


def _followups(sub: Any, db_help: str, default_db: str) -> None:
    fu = command(sub, "followups", "bad reviews to follow up; --set ID STATE moves one on")
    fu.set_defaults(run="fleet.cli.followups:run")
    fu.add_argument("--db", default=default_db, help=db_help)
    fu.add_argument("--site", default="", help="only this site (default: every site)")
    fu.add_argument("--station", default="", help="only this station (default: every station)")
    fu.add_argument(
        "--state",
        default="pending",
        choices=["pending", "all", *FOLLOWUP_STATES],
        help="which ones (default: pending, i.e. not resolved)",
    )
    fu.add_argument("--set", nargs=2, metavar=("ID", "STATE"), help="move follow-up ID to STATE")
    fu.add_argument("--note", default="", help="what was done or said (required with --set)")
    fu.add_argument("--as", dest="actor", help="console user who does it (with --set)")
    fu.add_argument("--json", action="store_true", help="one JSON array instead of a table")


def _calls(sub: Any, db_help: str, default_db: str) -> None:
    calls = command(sub, "calls", "staff members' calls: recordings kept with consent")
    verbs = calls.add_subparsers(dest="calls_command", required=True, metavar="COMMAND")
    purge = command(
        verbs,
        "purge-recordings",
        "delete recordings past their retention now, each audited (the console does it hourly)",
    )
    purge.set_defaults(run="fleet.cli.calls:run_purge")
    purge.add_argument("--db", default=default_db, help=db_help)
    purge.add_argument(
        "--dir",
        type=Path,
        metavar="DIR",
        help="the console's call_recordings_dir (default: 'recordings' in the user data folder)",
    )
    purge.add_argument(
        "--days",
        type=int,
        default=30,
        metavar="DAYS",
        help="the console's call_recording_days: keep recordings this many days (default: 30)",
    )


def _verify(sub: Any) -> None:
    verify = command(sub, "verify", "check a certificate's QR token offline")
    verify.set_defaults(run="fleet.cli:run_verify")
    verify.add_argument("token", help="the token or the URL, as read from the QR code")
    verify.add_argument(
        "--key",
        type=Path,
        action="append",
        default=[],
        help="a station's document-signing public key (PEM); repeat for several",
    )
    verify.add_argument("--keys", type=Path, help="a folder of *.pub station keys")
    verify.add_argument("--db", help="also the keys recorded at enrolment (console database URL)")


def _document(sub: Any, db_help: str, default_db: str) -> None:
    doc = command(sub, "document", "printed documents: check one as its page does, withdraw one")
    doc.set_defaults(run="fleet.cli.documents:run")
    doc_sub = doc.add_subparsers(dest="document_command", required=True, metavar="ACTION")
    check = command(doc_sub, "check", "what the verification page says of a token or its URL")
    check.add_argument("token", help="the token, or the URL, as read from the QR code")
    check.add_argument("--keys", type=Path, help="also a folder of *.pub station keys")
    withdraw = command(doc_sub, "withdraw", "withdraw a document: its page says so (audited)")
    withdraw.add_argument("doc_id", help="the document number printed under the QR code")
    withdraw.add_argument("--reason", required=True, help="why (kept in the audit log)")
    withdraw.add_argument("--as", dest="actor", default="cli", help="who does it (audit log)")
    listing = command(doc_sub, "list", "the documents withdrawn, newest first")
    listing.add_argument("--json", action="store_true", help="one JSON array")
    for action in (check, withdraw, listing):
        action.add_argument("--db", default=default_db, help=db_help)


def _simulate(sub: Any) -> None:
    simulate = command(sub, "simulate", "simulated terminals, one MQTT connection each")
    simulate.set_defaults(run="fleet.simulate.process:simulate_command")
    add = simulate.add_argument
    add("--kiosks", type=int, default=100, help="how many terminals (default: 100)")
    add("--broker", type=hostport, help="MQTT broker HOST:PORT (default: a private mosquitto)")
    add("--sites", type=int, default=10, help="sites the terminals are spread over (default: 10)")
    add(
        "--health-interval",
        type=float,
        default=60.0,
        metavar="S",
        help="seconds between a terminal's health reports (default: 60)",
    )
    add(
        "--event-interval",
        type=float,
        default=300.0,
        metavar="S",
        help="mean seconds between a terminal's events, 0: none (default: 300)",
    )
    add(
        "--failure-fraction",
        type=float,
        default=0.0,
        metavar="FRACTION",
        help="share of terminals, 0 to 1, that fail to apply a catalog (default: 0)",
    )
    add("--duration", type=float, metavar="S", help="stop after S seconds (default: run on)")
    add("--seed", type=int, default=0, help="random seed, for a repeatable run (default: 0)")
