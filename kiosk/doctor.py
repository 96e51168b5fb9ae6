"""``kiosk doctor``: a table of what this station needs and the state of each, with a fix."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from flows.errors import KioskError
from kiosk.config import Config, load_config


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def _tcp(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2.0):
            return True
    except OSError:
        return False


def check_catalog(config: Config) -> Check:
    from kiosk.station import active_catalog

    try:
        catalog = active_catalog(config)
    except KioskError as err:
        return Check("catalog", False, str(err).splitlines()[0], "fix the catalog file it names")
    return Check("catalog", True, f"version {catalog.version}, {len(catalog.services)} services")


def check_font(_config: Config) -> Check:
    from kiosk.fonts import FontMissing, find_cjk_font

    try:
        return Check("font", True, str(find_cjk_font()))
    except FontMissing:
        return Check(
            "font", False, "WenQuanYi Micro Hei not found", "apt-get install fonts-wqy-microhei"
        )


def check_voice(config: Config) -> Check:
    if config.devices.speech == "off":
        return Check("voice", True, "speech is off in the configuration")
    if not shutil.which("espeak-ng"):
        return Check("voice", False, "espeak-ng is not installed", "apt-get install espeak-ng")
    out = subprocess.run(
        ["espeak-ng", "--voices=cmn"], capture_output=True, text=True, timeout=10, check=False
    ).stdout
    if "cmn-latn-pinyin" not in out:
        return Check(
            "voice",
            False,
            "Mandarin voice cmn-latn-pinyin missing",
            "apt-get install espeak-ng-data",
        )
    if not shutil.which(config.devices.audio_player):
        return Check(
            "voice",
            False,
            f"player {config.devices.audio_player} missing",
            "apt-get install alsa-utils",
        )
    return Check(
        "voice", True, f"espeak-ng cmn-latn-pinyin, played by {config.devices.audio_player}"
    )


def check_id_reader(config: Config) -> Check:
    spec = config.devices.id_reader
    if spec == "sim":
        return Check("id reader", True, "simulated GA 467 reader on a pseudo-terminal")
    port = spec.removeprefix("sam:")
    if not os.path.exists(port):
        return Check(
            "id reader", False, f"{port} does not exist", "plug in the reader; check udev rules"
        )
    if not os.access(port, os.R_OK | os.W_OK):
        return Check("id reader", False, f"no access to {port}", "add the user to group dialout")
    return Check("id reader", True, port)


def check_a4(config: Config) -> Check:
    spec = config.devices.a4_printer
    if spec == "sim":
        missing = [p for p in ("cupsd", "lpadmin", "lpstat") if not shutil.which(p)]
        if missing:
            return Check(
                "A4 printer",
                False,
                f"missing {', '.join(missing)}",
                "apt-get install cups cups-client",
            )
        return Check("A4 printer", True, "private cupsd with a simulated network printer")
    queue, _, server = spec.removeprefix("cups:").partition("@")
    cmd = ["lpstat", *(["-h", server] if server else []), "-p", queue]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
    if result.returncode != 0:
        return Check(
            "A4 printer",
            False,
            (result.stderr or result.stdout).strip()[:80],
            f"create the queue: lpadmin -p {queue} -v ipp://PRINTER/ipp/print -m everywhere -E",
        )
    return Check("A4 printer", True, result.stdout.strip()[:80])


def check_thermal(config: Config) -> Check:
    spec = config.devices.thermal_printer
    if spec == "sim":
        return Check("thermal printer", True, "simulated ESC/POS printer on TCP")
    host, _, port = spec.removeprefix("tcp:").rpartition(":")
    if _tcp(host, int(port)):
        return Check("thermal printer", True, spec)
    return Check("thermal printer", False, f"{spec} does not answer", "check power and network")


def check_broker(config: Config) -> Check:
    if not config.fleet.broker:
        return Check("broker", True, "no broker configured (no fleet agent)")
    host, _, port = config.fleet.broker.rpartition(":")
    if _tcp(host, int(port)):
        return Check("broker", True, config.fleet.broker)
    return Check("broker", False, f"{config.fleet.broker} does not answer", "check the network")


def check_state_dir(config: Config) -> Check:
    path = config.state_dir
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".doctor"
        probe.write_text("ok")
        probe.unlink()
    except OSError as err:
        return Check(
            "state dir", False, f"{path}: {err.strerror}", "set [state] dir to a writable place"
        )
    free = shutil.disk_usage(path).free // (1024 * 1024)
    return Check("state dir", free > 200, f"{path} ({free} MiB free)", "free disk space")


CHECKS: list[Callable[[Config], Check]] = [
    check_state_dir,
    check_catalog,
    check_font,
    check_voice,
    check_id_reader,
    check_a4,
    check_thermal,
    check_broker,
]


def run_doctor(config_path: str | None) -> int:
    try:
        config = load_config(Path(config_path) if config_path else None)
        rows = [Check("config", True, config_path or "defaults (simulated station)")]
    except KioskError as err:
        print(f"config  FAIL  {err}")
        return 1
    rows += [check(config) for check in CHECKS]
    width = max(len(r.name) for r in rows)
    for r in rows:
        status = "ok  " if r.ok else "FAIL"
        line = f"{r.name:<{width}}  {status}  {r.detail}"
        if not r.ok and r.fix:
            line += f"\n{'':<{width}}        fix: {r.fix}"
        print(line)
    return 0 if all(r.ok for r in rows) else 1
