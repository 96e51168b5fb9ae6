"""``kiosk``: the terminal's command line (run, agent, doctor and technicians' tools)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path
from typing import TextIO

from fleet.errors import FleetError
from flows.errors import ConfigError, KioskError
from kiosk.config import Config, load_config

EXIT_CONFIG = 2
"""The exit status when the configuration (or the command line) is wrong: every mistake is on
stderr, one a line. argparse uses the same status for a wrong command line."""

EXIT_STATUSES = """exit statuses: 0 done; 1 a check or a device failed; 2 the configuration or the
command line is wrong (every mistake on stderr, one a line, naming the file and the key);
kiosk run also: 3 a technician left to the desktop, 4 a restart was asked for, 70 errors kept
reaching the UI loop"""


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="kiosk",
        description="Station kiosk terminal",
        epilog=EXIT_STATUSES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", help="TOML configuration (default: the simulated station)")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the kiosk app")
    run.add_argument("--debug", action="store_true", help="log at debug level (wire logs too)")
    run.set_defaults(func=cmd_run)
    sub.add_parser("agent", help="run the fleet agent").set_defaults(func=cmd_agent)
    doctor = sub.add_parser("doctor", help="check what this station needs, with a fix for each")
    doctor.add_argument(
        "--font-path",
        type=Path,
        action="append",
        help="font file tried before fontconfig (repeatable; default: Debian's WenQuanYi paths)",
    )
    doctor.set_defaults(func=cmd_doctor)
    say = sub.add_parser("say", help="speak a text with the configured voice (or write a WAV)")
    say.add_argument("text")
    say.add_argument("--lang", choices=["zh", "en"], default="zh")
    say.add_argument("--elder", action="store_true", help="elder mode: slower")
    say.add_argument("--out", type=Path, help="write the WAV here instead of playing it")
    say.set_defaults(func=cmd_say)
    test = sub.add_parser("print-test", help="print a test page and/or receipt, say how it ended")
    test.add_argument("--a4", help="CUPS queue, optionally @HOST:PORT of the CUPS server")
    test.add_argument(
        "--thermal", help="ESC/POS printer: tcp:HOST:PORT, serial:/dev/… (9600 8N1) or usb:/dev/…"
    )
    test.add_argument("--timeout", type=float, default=60.0)
    test.set_defaults(func=cmd_print_test)
    card = sub.add_parser("read-card", help="wait for one ID card, read it, print it masked")
    card.add_argument(
        "--reader", required=True, help="sam:/dev/ttyUSB0, pcsc (any reader) or pcsc:NAME PREFIX"
    )
    card.add_argument("--baud", type=int, default=115200)
    card.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for a card")
    card.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    card.add_argument("--profile", type=Path, help="a TOML card profile (PC/SC; default: SSC)")
    card.set_defaults(func=cmd_read_card)
    pin = sub.add_parser("pin-hash", help="hash a maintenance PIN for the configuration")
    pin.add_argument("--stdin", action="store_true", help="read the PIN from standard input")
    pin.set_defaults(func=cmd_pin_hash)
    doc_key = sub.add_parser(
        "doc-key", help="print the station's document-signing public key, for fleet enroll"
    )
    doc_key.add_argument("--out", type=Path, help="write the PEM here instead of printing it")
    doc_key.add_argument("--create", action="store_true", help="make the key if there is none")
    doc_key.set_defaults(func=cmd_doc_key)
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
