"""``make run``: a complete simulated station on this machine, stopped cleanly by Ctrl-C.

Starts a private mosquitto on a free local port, the fleet console with a signed catalog repository
and a fleet CA of its own (:mod:`kiosk.tools.devcentre`), the fleet agent, and the kiosk
app in a window with every device simulated (the kiosk starts its own simulated peers: the GA 467
reader on a pseudo-terminal, an ESC/POS printer on TCP, a private cupsd with a simulated network
printer).
Without a screen, the kiosk runs on a virtual screen (Xvfb) and says so.
Everything lives in ``station-data/`` in the working directory.

It behaves like a station, not a demo script (:mod:`kiosk.tools.supervise`): the kiosk, the agent
and
the console are started again when they end, by the restart settings of their systemd units in
``deploy/systemd/``; the reason a process ended is said on the terminal; Ctrl-C (SIGINT to the
whole foreground process group) stops everything this run started, its helpers included; on a
machine without a sound card the prompts go to ALSA's null device, and the terminal says so.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from drivers.simtools import free_port
from drivers.speech.player import player_args, probe_output
from flows.catalog import CatalogError, load_catalog
from kiosk.shell.maintenance import hash_pin
from kiosk.tools import devcentre
from kiosk.tools.supervise import RUN_MARK, Child, RestartPolicy, Supervisor, describe, sweep
from sandbox.mosquitto import MosquittoBroker


def start_xvfb(width: int, height: int) -> tuple[subprocess.Popen[bytes], str]:
    """A private X server on a free display number (Xvfb picks it: ``-displayfd``)."""
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        [
            "Xvfb",
            "-displayfd",
            str(write_fd),
            "-screen",
            "0",
            f"{width}x{height}x24",
            "-nolisten",
            "tcp",
        ],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # a Ctrl-C meant for its parent must not take the screen first
    )
    os.close(write_fd)
    with os.fdopen(read_fd) as f:
        number = f.readline().strip()
    if not number:
        proc.kill()
        raise RuntimeError("Xvfb did not start")
    return proc, f":{number}"


def write_config(
    path: Path,
    broker: str,
    state: Path,
    pin_hash: str = "",
    audio: list[str] | None = None,
    catalog: Path | None = None,
) -> None:
    """``catalog``: the station's catalog (``make run CATALOG=path``); none: the demo's."""
    station = f"[station]\ncatalog = {json.dumps(str(catalog.resolve()))}\n" if catalog else ""
    path.write_text(
        "# written by `make run`; see assets/config/kiosk.example.toml for every key\n"
        "version = 1\n"
        f"{station}"
        "[state]\n"
        f'dir = "{state.resolve()}"\n'
        "[devices]\n"
        f"audio_player_args = {json.dumps(audio or [])}\n"
        "[ui]\nwidth = 1600\nheight = 900\nscreen_diagonal_in = 21.5\n"
        "[fleet]\n"
        f'broker = "{broker}"\n'
        "health_interval_s = 10\n"
        f'[maintenance]\npin_hash = "{pin_hash}"\n',
        encoding="utf-8",
    )


def station_data() -> Path:
    """``station-data/`` in the working directory (``make -f ROOT/Makefile run`` from elsewhere
    keeps a station apart)."""
    return Path("station-data").resolve()


UNITS = Path(__file__).resolve().parents[2] / "deploy" / "systemd"


def policy(unit: str) -> RestartPolicy:
    """The restart policy of a shipped unit; systemd's defaults if the unit is not here (an
    installed package without deploy/)."""
    path = UNITS / unit
    return RestartPolicy.from_unit(path) if path.exists() else RestartPolicy()


def audio_args() -> list[str]:
    """``[devices] audio_player_args``: the default device if it opens, else ALSA's null
    device (said once: prompts are silent on this machine)."""
    refused = probe_output("aplay", player_args("aplay", []))
    if not refused:
        return []
    print(
        f"station: no sound card here ({refused}); voice prompts go to ALSA's null device and "
        "are silent (`kiosk doctor` reports it)",
        flush=True,
    )
    return ["-D", "null"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make run", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--catalog", type=Path, help="run the station on this catalog (make run CATALOG=path)"
    )
    args = parser.parse_args(argv)
    if args.catalog is not None:
        try:
            load_catalog(args.catalog)
        except CatalogError as err:
            print(err, file=sys.stderr)
            return 2
    data = station_data()
    data.mkdir(exist_ok=True)
    state = data / "state"
    # processes of an earlier run of this station that was itself killed
    left = sweep(lambda mark: mark.startswith(f"{data}|"))
    if left:
        print(f"station: ended {len(left)} process(es) of an earlier run: {', '.join(left)}")
    mark = f"{data}|{secrets.token_hex(6)}"
    os.environ[RUN_MARK] = mark  # inherited by everything started from here on
    supervisor = Supervisor(mark)
    say = supervisor.say
    broker = MosquittoBroker(data / "broker")
    xvfb: subprocess.Popen[bytes] | None = None
    signals = 0

    def on_signal(*_args: object) -> None:
        nonlocal signals
        signals += 1
        if signals == 2:
            print("station: stopping at once (second interrupt)", flush=True)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    py = sys.executable
    try:
        broker.start()
        broker_addr = f"{broker.host}:{broker.port}"
        say(f"MQTT broker (mosquitto) on {broker_addr}")
        config = data / "kiosk.toml"
        pin = f"{secrets.randbelow(10**6):06d}"  # a new technicians' PIN every time
        write_config(config, broker_addr, state, hash_pin(pin), audio_args(), args.catalog)
        say(f"maintenance mode: tap the station's name five times, PIN {pin}")

        centre = devcentre.prepare(data, state)
        repo_port = free_port()
        repo_child = Child("catalog-repo", centre.serve_argv("127.0.0.1", repo_port))
        supervisor.start(repo_child)
        catalog_url = f"http://127.0.0.1:{repo_port}/"
        say(f"signed catalog repository {centre.repo} served on {catalog_url}")

        http_port = free_port()
        console = Child(
            "console",
            [
                py, "-m", "fleet.cli", "console",
                "--broker", broker_addr,
                "--http", f"127.0.0.1:{http_port}",
                "--password-file", str(broker.root / "console.secret"),
                "--db", f"sqlite:///{data / 'console.sqlite3'}",
                "--admin-password-file", str(data / "console-admin.secret"),
                *centre.console_options(catalog_url),
            ],
            policy=policy("fleet-console.service"),
        )  # fmt: skip
        supervisor.start(console)
        say(
            f"fleet console on http://127.0.0.1:{http_port}/ (user admin, password in"
            f" {data / 'console-admin.secret'})"
        )

        def kiosk_cli(role: str, name: str, unit: str, **more: Any) -> Child:
            argv = [py, "-m", "kiosk.cli", "--config", str(config), role]
            log = state / "logs" / f"{name}.log"
            return Child(name, argv, policy=policy(unit), log=log, **more)

        supervisor.start(kiosk_cli("agent", "agent", "kiosk-agent.service"))
        say("fleet agent started")

        kiosk_env = dict(os.environ)
        if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
            xvfb, display = start_xvfb(1600, 900)
            kiosk_env["DISPLAY"] = display
            mirror = data / "screen.png"
            kiosk_env["KIOSK_SCREEN_MIRROR"] = str(mirror)
            say(
                f"no screen found, so the kiosk runs on a virtual screen ({display}); "
                f"a picture of it is saved every 2 s in {mirror}"
            )
        kiosk = kiosk_cli("run", "kiosk", "kiosk-ui.service", env=kiosk_env, note=EXIT_MEANINGS)
        supervisor.start(kiosk)
        say(
            f"kiosk app started. Printed certificates: {state / 'cups' / 'printed'}/, "
            f"receipts: {state / 'receipts'}/, logs: {state / 'logs'}/\n"
            "station: press Ctrl-C to stop everything"
        )
        while not signals and not supervisor.gave_up:
            supervisor.poll()
            if xvfb is not None and xvfb.poll() is not None:
                say(f"the virtual screen (Xvfb) {describe(xvfb.returncode)}; stopping")
                break
            time.sleep(0.2)
    finally:
        say("stopping…")
        # the kiosk first (it needs its screen while it shuts down), Xvfb last
        supervisor.stop_all(hurry=lambda: signals > 1)
        if xvfb is not None and xvfb.poll() is None:
            xvfb.terminate()
            xvfb.wait(timeout=10)
        broker.stop()
        left = sweep(lambda value: value == mark)
        if left:
            say(f"ended {len(left)} process(es) left behind: {', '.join(left)}")
        say("stopped")
    return 1 if supervisor.gave_up else 0


EXIT_MEANINGS = {
    3: "a technician left to the desktop",
    4: "a restart was asked for: the console's restart_ui or the nightly restart",
    70: "errors kept reaching the UI loop",
}
"""The kiosk's exit statuses (docs/decisions.md), said with the line that reports one."""


if __name__ == "__main__":
    sys.exit(main())
