"""``kiosk doctor``: the ID reader, the A4 printer (CUPS) and the thermal printer."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from flows.errors import KioskError
from kiosk.config import Config
from kiosk.tools.doctor.base import (
    SYSTEM_CUPS,
    Check,
    Options,
    _run,
    _tcp,
)

# --- devices --------------------------------------------------------------------------------------


def check_id_reader(config: Config, _opts: Options) -> Check:
    spec = config.devices.id_reader
    if spec == "sim":
        return Check("id reader", True, "simulated GA 467 reader on a pseudo-terminal")
    port = spec.removeprefix("sam:")
    problem = _device_node(
        "id reader",
        port,
        plug="plug in the reader; check udev rules (deploy/udev/70-station-kiosk.rules makes "
        "/dev/kiosk-id-reader; udevadm info -a -n /dev/ttyUSB0 shows its ids)",
        group="dialout",
    )
    return problem or Check("id reader", True, port)


def _device_node(name: str, path: str, *, plug: str, group: str) -> Check | None:
    """A device node that must be there and ours to open; the failing row, or None."""
    if not os.path.exists(path):
        return Check(name, False, f"{path} does not exist", plug)
    if not os.access(path, os.R_OK | os.W_OK):
        return Check(
            name,
            False,
            f"no access to {path}",
            f"add the kiosk user to group {group} (the udev rules give the device to it)",
        )
    return None


def check_a4(config: Config, opts: Options) -> Check:
    spec = config.devices.a4_printer
    if spec == "sim":
        return _check_private_cups()
    local_config = _check_system_cups_config(spec, opts)
    if local_config is not None:
        return local_config
    if not shutil.which("lpstat"):
        return Check("A4 printer", False, "lpstat missing", "apt-get install cups-client")
    queue, _, server = spec.removeprefix("cups:").partition("@")
    host = ["-h", server] if server else []
    at = f" -h {server}" if server else ""
    sched = _run(["lpstat", *host, "-r"], env=opts.env)
    if "is running" not in sched.stdout or "not running" in sched.stdout:
        return Check(
            "A4 printer",
            False,
            f"CUPS scheduler {server or '(local)'} does not answer",
            "systemctl start cups" if not server else f"start CUPS on {server}, check the network",
        )
    result = _run(["lpstat", *host, "-p", queue, "-a", queue], env=opts.env)
    out = result.stdout
    if result.returncode != 0:
        return Check(
            "A4 printer",
            False,
            f"queue {queue} does not exist on {server or 'the local CUPS'}",
            f"create it: lpadmin{at} -p {queue} -v ipp://PRINTER/ipp/print -m everywhere -E "
            f"(or set [devices] a4_printer to an existing queue: lpstat{at} -p)",
        )
    if "disabled" in out:
        reason = next((ln.strip() for ln in out.splitlines()[1:] if ln.strip()), "")
        return Check(
            "A4 printer",
            False,
            f"queue {queue} is disabled{': ' + reason if reason else ''}",
            f"fix the printer (paper, cover, power), then cupsenable{at} {queue}",
        )
    if "not accepting" in out:
        return Check("A4 printer", False, f"queue {queue} rejects jobs", f"cupsaccept{at} {queue}")
    return Check(
        "A4 printer", True, f"queue {queue} on {server or 'local CUPS'}: enabled, accepting"
    )


def _check_private_cups() -> Check:
    """The simulated station's A4 peer, started for real: cupsd accepts its configuration
    (``cupsd -t``), the scheduler answers and the queue is enabled and accepting."""
    from sandbox.cups import CupsSandbox

    missing = [p for p in ("cupsd", "lpadmin", "lpstat") if not shutil.which(p)]
    if missing:
        return Check(
            "A4 printer", False, f"missing {', '.join(missing)}", "apt-get install cups cups-client"
        )
    with tempfile.TemporaryDirectory(prefix="kiosk-doctor-cups-") as tmp:
        sandbox = CupsSandbox(Path(tmp))
        try:
            sandbox.start(timeout_s=30)
        except KioskError as err:
            detail = " ".join(str(err).split())
            return Check(
                "A4 printer",
                False,
                f"the private cupsd does not serve: {detail}"[:240],
                "cupsd names the directive it refuses: correct it in sandbox/cups.py "
                "(cupsd -t -c cupsd.conf -s cups-files.conf checks a configuration)",
            )
        finally:
            sandbox.stop()
    return Check(
        "A4 printer",
        True,
        "private cupsd (configuration accepted by cupsd -t), queue enabled and accepting",
    )


def _check_system_cups_config(spec: str, opts: Options) -> Check | None:
    """This machine's cupsd configuration, checked by cupsd (``cupsd -t``), when the queue is
    on this machine and the files can be read; None when there is nothing to check here."""
    from sandbox.cups import cupsd_check

    server = spec.removeprefix("cups:").partition("@")[2]
    if server not in SYSTEM_CUPS:
        return None  # another machine's scheduler, or a private one on another port
    cupsd_conf, files_conf = opts.cups_dir / "cupsd.conf", opts.cups_dir / "cups-files.conf"
    if not (os.access(cupsd_conf, os.R_OK) and os.access(files_conf, os.R_OK)):
        return None  # not readable as this user: the scheduler's answer below still counts
    refused = cupsd_check(cupsd_conf, files_conf)
    if not refused:
        return None
    return Check(
        "A4 printer",
        False,
        f"cupsd refuses its configuration: {refused}"[:240],
        f"correct the line it names in {opts.cups_dir}, check with "
        f"cupsd -t -c {cupsd_conf} -s {files_conf}, then systemctl restart cups",
    )


def check_thermal(config: Config, _opts: Options) -> Check:
    spec = config.devices.thermal_printer
    if spec.startswith("sim"):
        return Check("thermal printer", True, f"simulated ESC/POS printer on TCP ({spec})")
    if spec.startswith(("serial:", "usb:")):
        return _check_thermal_device(config)
    host, _, port = spec.removeprefix("tcp:").rpartition(":")
    if _tcp(host, int(port)):
        return Check("thermal printer", True, spec)
    return Check(
        "thermal printer", False, f"{spec} does not answer", "check power, paper cover, network"
    )


def _check_thermal_device(config: Config) -> Check:
    """A printer on a device node: there, ours to open, and answering its status queries."""
    from drivers.escpos.printer import EscposPrinter
    from drivers.escpos.profiles import load_profile
    from flows.models import DeviceState

    dev = config.devices
    path = dev.thermal_printer.partition(":")[2]
    problem = _device_node(
        "thermal printer",
        path,
        plug="plug in and switch on the printer; check udev rules (deploy/udev/"
        "70-station-kiosk.rules makes /dev/kiosk-thermal)",
        group="lp",
    )
    if problem is not None:
        return problem
    health = EscposPrinter(
        dev.thermal_printer,
        baud=dev.thermal_printer_baud,
        flow=dev.thermal_printer_flow,
        profile=load_profile(
            dev.thermal_printer_model,
            width_mm=dev.thermal_printer_width,
            status=dev.thermal_printer_status,
        ),
    ).health()
    if health.detail.get("status_support") == "declared":
        return Check("thermal printer", True, f"{path}: there; reports no status (its profile)")
    if health.state is DeviceState.UNKNOWN:
        return Check(
            "thermal printer",
            False,
            f"{path} does not answer status queries",
            "set [devices] thermal_printer_baud and thermal_printer_flow as the printer's "
            "self-test page says (serial:); a usb: printer must be bidirectional; a model "
            'that never answers DLE EOT prints all the same: thermal_printer_status = "none"',
        )
    if not health.usable:
        return Check("thermal printer", False, f"{path}: {', '.join(health.reasons)}")
    return Check("thermal printer", True, f"{path}: {health.state.value}")
