"""``kiosk``: the terminal's command line (run, agent, doctor and technicians' tools)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import textwrap
from pathlib import Path
from typing import Any, TextIO

from fleet.errors import FleetError
from flows.errors import ConfigError, KioskError
from kiosk.config import Config, load_config

EXIT_CONFIG = 2
"""The exit status when the configuration (or the command line) is wrong: every mistake is on
stderr, one a line. argparse uses the same status for a wrong command line."""

STATUSES = (
    "0 done",
    "1 a check, a device or the work failed (said on stderr)",
    "2 the configuration or the command line is wrong (every mistake on stderr, one a line, "
    "naming the file and the key)",
    "130 interrupted (Ctrl-C)",
)
RUN_STATUSES = (
    "0 stopped (SIGTERM or Ctrl-C)",
    "1 the catalog cannot be loaded (said on stderr before the window opens)",
    "2 the configuration or the command line is wrong, or the state directory cannot be used",
    "3 a technician left to the desktop (the systemd unit does not restart it)",
    "4 a restart was asked for: the console's restart_ui or the nightly restart",
    "70 errors kept reaching the UI loop",
)
"""``kiosk run``'s exit statuses (kiosk.shell.maintenance, kiosk.shell.remote, kiosk.ui.app)."""

ENVIRONMENT = {
    "KIOSK_CONFIG": "the configuration file when --config is not given",
    "JOURNAL_STREAM": "set by systemd: log lines go to the journal too, with their priority",
    "NOTIFY_SOCKET": "set by systemd (Type=notify): readiness and watchdog pings go there",
    "WATCHDOG_USEC": "set by systemd (WatchdogSec=): how often to ping, in microseconds",
    "KIOSK_SCREEN_MIRROR": "a PNG file the screen is copied to every 2 s (development)",
    "ESCPOS_CAPABILITIES_PICKLE_DIR": "python-escpos' cache folder (default: escpos-cache/ in "
    "the state directory)",
}


def epilog(statuses: tuple[str, ...], environment: tuple[str, ...] = ("KIOSK_CONFIG",)) -> str:
    """The exit statuses and the environment variables a command reads, for its ``--help``."""
    lines = ["exit statuses:"]
    for status in statuses:
        lines += textwrap.wrap(status, 88, initial_indent="  ", subsequent_indent="      ")
    if environment:
        lines += ["", "environment:"]
    for name in environment:
        lines += [f"  {name}", *textwrap.wrap(ENVIRONMENT[name], 88, initial_indent=" " * 6)]
    return "\n".join(lines)


def _config(args: argparse.Namespace, *, state_dir: bool = False, broker: bool = False) -> Config:
    """The configuration, with every mistake in it reported at once (``load_config``)."""
    path = args.config or os.environ.get("KIOSK_CONFIG")
    return load_config(Path(path) if path else None, state_dir=state_dir, broker=broker)


def say_config_error(err: ConfigError, stderr: TextIO) -> None:
    """One line for one mistake; a heading and one indented line each for several."""
    lines = str(err).splitlines() or ["(no detail)"]
    if len(lines) == 1:
        print(f"kiosk: configuration error: {lines[0]}", file=stderr, flush=True)
        return
    said = "\n".join(f"  {line}" for line in lines)
    print(f"kiosk: {len(lines)} configuration errors:\n{said}", file=stderr, flush=True)


def cmd_run(args: argparse.Namespace) -> int:
    config = _config(args, state_dir=True)
    from kiosk.station import create_station, preflight, setup_logging
    from kiosk.ui.app import configure_kivy

    # said on the terminal (and the journal) before the window opens, never only in a log
    preflight(config)
    log_path = setup_logging(config.state_dir, level=logging.DEBUG if args.debug else logging.INFO)
    configure_kivy(config, config.state_dir / "kivy")
    station = create_station(config)
    print(f"kiosk: state in {config.state_dir}, log in {log_path}", flush=True)
    app = station.build_app()

    def request_stop(_signum: int, _frame: object) -> None:
        from kivy.clock import Clock

        Clock.schedule_once(lambda _dt: app.stop(), 0)

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    app.run()
    return int(app.exit_code or 0)  # 3: a technician left to the desktop (not restarted)


def cmd_agent(args: argparse.Namespace) -> int:
    config = _config(args, state_dir=True, broker=True)  # TLS files: all three or none, too
    from fleet.agent import AgentConfig, run_agent
    from kiosk import version
    from kiosk.station import setup_logging

    setup_logging(config.state_dir, name="agent")
    host, _, port = config.fleet.broker.rpartition(":")
    fleet = config.fleet
    agent_config = AgentConfig(
        site=config.station.site,
        station=config.station.id,
        host=host,
        port=int(port),
        state_dir=config.state_dir / "agent",
        journal_path=config.state_dir / "journal.sqlite3",
        health_interval_s=config.fleet.health_interval_s,
        app_version=version(),
        ca_file=Path(fleet.ca_file) if fleet.ca_file else None,
        cert_file=Path(fleet.cert_file) if fleet.cert_file else None,
        key_file=Path(fleet.key_file) if fleet.key_file else None,
    )
    from kiosk.shell import sdnotify

    return run_agent(agent_config, ready=sdnotify.ready, alive=sdnotify.watchdog)


def cmd_doctor(args: argparse.Namespace) -> int:
    from kiosk.tools.doctor import Options, run_doctor

    fonts = tuple(args.font_path) if args.font_path else None
    return run_doctor(args.config or os.environ.get("KIOSK_CONFIG"), Options(font_paths=fonts))


def cmd_read_card(args: argparse.Namespace) -> int:
    from kiosk.tools import print_card, read_card

    result = read_card(args.reader, baud=args.baud, timeout_s=args.timeout, profile=args.profile)
    print_card(result, as_json=args.json)
    return 0


def cmd_say(args: argparse.Namespace) -> int:
    """Speak (or write) a text with the configured engine; print what was used."""
    import shutil
    import wave

    from drivers.speech.voice import Pyttsx3Speech

    config = _config(args, state_dir=True)
    cache = config.state_dir / "voice-cache"
    speech = Pyttsx3Speech(
        cache,
        player=config.devices.audio_player,
        player_args=tuple(config.devices.audio_player_args),
    )
    try:
        wav = speech.wav_for(args.text, args.lang, elder=args.elder)
        with wave.open(str(wav), "rb") as w:
            seconds = w.getnframes() / w.getframerate()
        info = speech.describe(args.lang, elder=args.elder)
        if args.out:
            shutil.copyfile(wav, args.out)
            where = f"written to {args.out}"
        else:
            speech.speak(args.text, lang=args.lang, elder=args.elder)
            speech.wait_idle(seconds + 10)
            health = speech.health()
            where = "played" if health.usable else f"not played: {', '.join(health.reasons)}"
        print(
            f"engine   {info['engine']}\nvoice    {info['voice']}\n"
            f"rate     {info['rate_wpm']} words/min\nduration {seconds:.2f} s\n{where}"
        )
        return 0 if args.out or speech.health().usable else 1
    finally:
        speech.close()


def cmd_print_test(args: argparse.Namespace) -> int:
    from kiosk.tools import print_test

    if not args.a4 and not args.thermal:
        raise ConfigError("print-test needs --a4 QUEUE[@HOST:PORT] and/or --thermal URL")
    return print_test(args.a4, args.thermal, timeout_s=args.timeout)


def cmd_pin_hash(args: argparse.Namespace) -> int:
    """Ask for a maintenance PIN twice and print the line for ``[maintenance]``."""
    import getpass

    from kiosk.shell.maintenance import hash_pin

    if args.stdin:
        pin = sys.stdin.readline().strip()
    else:
        pin = getpass.getpass("new maintenance PIN (4-12 digits): ")
        if getpass.getpass("again: ") != pin:
            raise ConfigError("the two PINs differ")
    try:
        print(f'[maintenance]\npin_hash = "{hash_pin(pin)}"')
    except ValueError as err:
        raise ConfigError(str(err)) from err
    return 0


def cmd_doc_key(args: argparse.Namespace) -> int:
    """Print the public half of the station's document-signing key, which ``fleet enroll
    --doc-key-pub`` records so that the console can verify this station's QR tokens."""
    from flows.tokens import Signer, public_pem

    # only --create writes: reading a key makes no folder (as root it would belong to root)
    key = _config(args, state_dir=args.create).state_dir / "document-signing.key"
    if not key.exists() and not args.create:
        raise ConfigError(
            f"{key} does not exist yet: the kiosk makes it when it first starts; "
            "or run this as the kiosk's user with --create"
        )
    signer = Signer.load_or_create(key)
    pem = public_pem(signer.public)
    if args.out:
        args.out.write_bytes(pem)
        print(f"key id {signer.key_id}: written to {args.out}")
    else:
        sys.stdout.write(pem.decode())
        print(f"key id {signer.key_id}", file=sys.stderr)
    return 0


class _Version(argparse.Action):
    """``--version``: the installed package's version (read only when asked), on stdout."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: object) -> None:
        super().__init__(
            option_strings,
            dest,
            nargs=0,
            default=argparse.SUPPRESS,
            help="print the installed version and exit",
        )

    def __call__(self, parser: argparse.ArgumentParser, *_args: object) -> None:
        from kiosk import version

        print(f"kiosk {version()}", flush=True)
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    """The whole command line; the global options are accepted after the subcommand too."""
    text = argparse.RawDescriptionHelpFormatter
    config_help = (
        "the station's TOML configuration (default: $KIOSK_CONFIG, else the simulated station's "
        "defaults); before or after the subcommand"
    )
    parser = argparse.ArgumentParser(
        prog="kiosk",
        description="The station's kiosk terminal: the UI, the fleet agent, a check of the "
        "station and technicians' tools.",
        epilog=epilog(STATUSES, tuple(ENVIRONMENT)),
        formatter_class=text,
    )
    parser.add_argument("--version", action=_Version)
    parser.add_argument("--config", metavar="FILE", help=config_help)
    # the same options after the subcommand; SUPPRESS: absent there, the value above stands
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--version", action=_Version)
    configured = argparse.ArgumentParser(add_help=False, parents=[common])
    configured.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS, help=config_help)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        name: str,
        summary: str,
        *,
        statuses: tuple[str, ...] = STATUSES,
        config: bool = True,
        env: tuple[str, ...] = (),
    ) -> Any:
        """A subcommand; ``config``: it reads the configuration (takes ``--config``); ``env``:
        the variables it reads besides ``KIOSK_CONFIG``."""
        environment = ("KIOSK_CONFIG", *env) if config else env
        return sub.add_parser(
            name,
            parents=[configured if config else common],
            help=summary,
            description=summary[0].upper() + summary[1:] + ".",
            epilog=epilog(statuses, environment),
            formatter_class=text,
        )

    systemd = ("JOURNAL_STREAM", "NOTIFY_SOCKET", "WATCHDOG_USEC")
    run = command(
        "run",
        "run the kiosk's UI full screen until it is stopped",
        statuses=RUN_STATUSES,
        env=(*systemd, "KIOSK_SCREEN_MIRROR", "ESCPOS_CAPABILITIES_PICKLE_DIR"),
    )
    run.add_argument(
        "--debug", action="store_true", help="log at debug level, wire logs too (default: info)"
    )
    run.set_defaults(func=cmd_run)
    agent = command(
        "agent",
        "run the fleet agent: health reports and the console's commands over MQTT",
        env=systemd,
    )
    agent.set_defaults(func=cmd_agent)
    doctor = command("doctor", "check what this station needs, with a fix for each")
    doctor.add_argument(
        "--font-path",
        type=Path,
        action="append",
        metavar="FILE",
        help="font file tried before fontconfig (repeatable; default: Debian's WenQuanYi paths)",
    )
    doctor.set_defaults(func=cmd_doctor)
    say = command("say", "speak a text with the configured voice (or write a WAV)")
    say.add_argument("text", help="the text to speak")
    say.add_argument(
        "--lang",
        choices=["zh", "en"],
        default="zh",
        help="the text's language, which picks the voice (default: %(default)s)",
    )
    say.add_argument(
        "--elder",
        action="store_true",
        help="elder mode: slower, by [devices] speech_elder_factor (default: normal speed)",
    )
    say.add_argument(
        "--out", type=Path, metavar="FILE", help="write the WAV here instead of playing it"
    )
    say.set_defaults(func=cmd_say)
    test = command(
        "print-test",
        "print a test page and/or receipt, say how it ended",
        config=False,
    )
    test.add_argument(
        "--a4", metavar="QUEUE[@HOST:PORT]", help="CUPS queue, optionally @HOST:PORT of its server"
    )
    test.add_argument(
        "--thermal",
        metavar="URL",
        help="ESC/POS printer: tcp:HOST:PORT, serial:/dev/… (9600 8N1) or usb:/dev/…",
    )
    test.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how long each printer may take to finish (default: %(default)g s)",
    )
    test.set_defaults(func=cmd_print_test)
    card = command("read-card", "wait for one ID card, read it, print it masked", config=False)
    card.add_argument(
        "--reader",
        required=True,
        metavar="SPEC",
        help="sam:/dev/ttyUSB0, pcsc (any reader) or pcsc:NAME PREFIX",
    )
    card.add_argument(
        "--baud",
        type=int,
        default=115200,
        help="a sam: reader's serial speed in bit/s (default: %(default)s; pcsc: unused)",
    )
    card.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how long to wait for a card (default: %(default)g s)",
    )
    card.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    card.add_argument(
        "--profile",
        type=Path,
        metavar="FILE",
        help="a TOML card profile (PC/SC; default: the social security card's)",
    )
    card.set_defaults(func=cmd_read_card)
    pin = command(
        "pin-hash", "hash a maintenance PIN for the configuration's [maintenance]", config=False
    )
    pin.add_argument(
        "--stdin",
        action="store_true",
        help="read the PIN from standard input (default: ask twice on the terminal)",
    )
    pin.set_defaults(func=cmd_pin_hash)
    doc_key = command(
        "doc-key", "print the station's document-signing public key, for fleet enroll"
    )
    doc_key.add_argument(
        "--out", type=Path, metavar="FILE", help="write the PEM here instead of printing it"
    )
    doc_key.add_argument(
        "--create", action="store_true", help="make the key if there is none (as the kiosk's user)"
    )
    doc_key.set_defaults(func=cmd_doc_key)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # the terminal's own stream, even where a library has replaced sys.stderr by now
    stderr = sys.__stderr__ or sys.stderr
    try:
        result: int = args.func(args)
        return result
    except ConfigError as err:
        say_config_error(err, stderr)
        return EXIT_CONFIG
    except (KioskError, FleetError) as err:
        print(f"kiosk: {err}", file=stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
