"""``make run``: a complete simulated station on this machine, stopped cleanly by Ctrl-C.

Starts a private mosquitto on a free local port, the fleet console, the fleet agent, and the kiosk
app in a window with every device simulated (the kiosk starts its own simulated peers: the GA 467
reader on a pseudo-terminal, an ESC/POS printer on TCP, a private cupsd with a simulated network
printer).
Without a screen, the kiosk runs on a virtual screen (Xvfb) and says so.
Everything lives in ``station-data/`` in the working directory.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from drivers.simtools import free_port
from fleet.broker import MosquittoBroker
from kiosk.maintenance import hash_pin

DATA = Path("station-data")


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
    )
    os.close(write_fd)
    with os.fdopen(read_fd) as f:
        number = f.readline().strip()
    if not number:
        proc.kill()
        raise RuntimeError("Xvfb did not start")
    return proc, f":{number}"


def write_config(path: Path, broker: str, state: Path, pin_hash: str = "") -> None:
    path.write_text(
        "# written by `make run`; see assets/config/kiosk.example.toml for every key\n"
        "version = 1\n"
        "[state]\n"
        f'dir = "{state.resolve()}"\n'
        "[ui]\nwidth = 1600\nheight = 900\nscreen_diagonal_in = 21.5\n"
        "[fleet]\n"
        f'broker = "{broker}"\n'
        "health_interval_s = 10\n"
        f'[maintenance]\npin_hash = "{pin_hash}"\n',
        encoding="utf-8",
    )


def main() -> int:
    DATA.mkdir(exist_ok=True)
    state = DATA / "state"
    procs: list[tuple[str, subprocess.Popen[bytes]]] = []
    broker = MosquittoBroker(DATA / "broker")
    stopping = False

    def stop_all(*_args: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop_all)
    signal.signal(signal.SIGTERM, stop_all)
    env = dict(os.environ)
    py = sys.executable
    try:
        broker.start()
        broker_addr = f"{broker.host}:{broker.port}"
        print(f"station: MQTT broker (mosquitto) on {broker_addr}", flush=True)
        config = DATA / "kiosk.toml"
        pin = f"{secrets.randbelow(10**6):06d}"  # a new technicians' PIN every time
        write_config(config, broker_addr, state, hash_pin(pin))
        print(
            f"station: maintenance mode: tap the station's name five times, PIN {pin}",
            flush=True,
        )

        http_port = free_port()
        procs.append(
            (
                "console",
                subprocess.Popen(
                    [
                        py,
                        "-m",
                        "fleet.cli",
                        "console",
                        "--broker",
                        broker_addr,
                        "--http",
                        f"127.0.0.1:{http_port}",
                        "--password-file",
                        str(broker.root / "console.secret"),
                        "--db",
                        f"sqlite:///{DATA / 'console.sqlite3'}",
                        "--admin-password-file",
                        str(DATA / "console-admin.secret"),
                    ],
                    env=env,
                    start_new_session=True,
                ),
            )
        )
        print(
            f"station: fleet console on http://127.0.0.1:{http_port}/ (user admin, password in"
            f" {DATA / 'console-admin.secret'})",
            flush=True,
        )
        procs.append(
            (
                "agent",
                subprocess.Popen(
                    [py, "-m", "kiosk.cli", "--config", str(config), "agent"],
                    env=env,
                    start_new_session=True,
                ),
            )
        )
        print("station: fleet agent started", flush=True)

        kiosk_env = dict(env)
        if not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
            xvfb, display = start_xvfb(1600, 900)
            procs.insert(0, ("Xvfb", xvfb))
            kiosk_env["DISPLAY"] = display
            mirror = (DATA / "screen.png").resolve()
            kiosk_env["KIOSK_SCREEN_MIRROR"] = str(mirror)
            print(
                f"station: no screen found, so the kiosk runs on a virtual screen ({display}); "
                f"a picture of it is saved every 2 s in {mirror}",
                flush=True,
            )
        procs.append(
            (
                "kiosk",
                subprocess.Popen(
                    [py, "-m", "kiosk.cli", "--config", str(config), "run"],
                    env=kiosk_env,
                    start_new_session=True,
                ),
            )
        )
        print(
            f"station: kiosk app started. Printed certificates: {state / 'cups' / 'printed'}/, "
            f"receipts: {state / 'receipts'}/, log: {state / 'logs' / 'kiosk.log'}\n"
            "station: press Ctrl-C to stop everything",
            flush=True,
        )
        while not stopping:
            for name, proc in procs:
                if proc.poll() is not None and name != "Xvfb":
                    print(f"station: {name} exited with {proc.returncode}; stopping", flush=True)
                    stopping = True
                    break
            time.sleep(0.5)
    finally:
        print("station: stopping…", flush=True)
        # the kiosk first (it needs its screen while it shuts down), Xvfb last
        for name, proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                print(f"station: {name} did not stop in time; killing it", flush=True)
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        broker.stop()
        print("station: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
