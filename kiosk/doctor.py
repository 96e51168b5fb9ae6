"""``kiosk doctor``: a table of what this station needs and the state of each, with a fix.

Every check asks the real thing: ``fc-list`` for the font, ``espeak-ng`` synthesising each voice
the kiosk speaks with, ``lpstat`` against the CUPS server of the configured queue, a TCP (and, with
the station's certificate, a TLS and MQTT) connection to the broker. Nothing is assumed installed
because a package is.

Where it looks can be moved, for stations built differently and for tests:
``--font-path`` (the font files the app tries first, before fontconfig) and the environment the
kiosk itself runs with: ``FONTCONFIG_FILE`` (fontconfig) and ``ESPEAK_DATA_PATH`` (espeak-ng's
data folder; a folder that does not exist makes espeak-ng fall back to the system's data without
a word, which the doctor reports).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flows.errors import KioskError
from kiosk.config import Config, load_config

CJK_FAMILY = "WenQuanYi Micro Hei"
CERT_WARN_DAYS = 7
"""A station certificate this close to expiry means the automatic renewal (30 days ahead) failed."""
SYSTEM_CUPS = (
    "",
    "localhost",
    "localhost:631",
    "127.0.0.1",
    "127.0.0.1:631",
    "/run/cups/cups.sock",
)
"""How a queue on this machine's own cupsd (configured in ``Options.cups_dir``) is named."""
LOW_DISK_MIB = 500  # kiosk.diskguard.DiskPolicy.low_mib: below it the station logs less


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class Options:
    font_paths: tuple[Path, ...] | None = None  # None: kiosk.fonts.KNOWN_PATHS
    cert_warn_days: int = CERT_WARN_DAYS
    cups_dir: Path = Path("/etc/cups")  # the system scheduler's configuration
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))


def _run(cmd: Sequence[str], env: dict[str, str] | None = None, timeout: float = 15.0) -> Any:
    try:
        return subprocess.run(
            list(cmd), capture_output=True, text=True, timeout=timeout, check=False, env=env
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        return subprocess.CompletedProcess(list(cmd), 127, "", str(err))


def _tcp(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2.0):
            return True
    except OSError:
        return False


# --- configuration and files ----------------------------------------------------------------------


def check_state_dir(config: Config, _opts: Options) -> Check:
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
    return Check(
        "state dir",
        free > LOW_DISK_MIB,
        f"{path} ({free} MiB free)",
        f"free disk space: below {LOW_DISK_MIB} MiB the station stops non-essential logging "
        "(journalctl --vacuum-size=100M; remove old files under the state dir's logs/)",
    )


def check_catalog(config: Config, _opts: Options) -> Check:
    """The catalog the kiosk would serve loads; one the agent installed is still the file it
    verified (its SHA-256 in ``applied.json``)."""
    from kiosk.catalog_watch import store_dir
    from kiosk.station import active_catalog
    from statedir.catalog_store import CatalogStore, committed_catalog

    try:
        catalog = active_catalog(config)
    except KioskError as err:
        return Check("catalog", False, str(err).splitlines()[0], "fix the catalog file it names")
    store = CatalogStore(store_dir(config.state_dir))
    active = committed_catalog(store.dir)
    where = "configured file"
    if active is not None and active == store.active and store.applied_file.exists():
        try:
            want = str(json.loads(store.applied_file.read_text())["sha256"])
        except (OSError, ValueError, KeyError) as err:
            return Check(
                "catalog",
                False,
                f"{store.applied_file} is unreadable ({err})",
                "the agent rewrites it at the next catalog update; fleet rollout can resend one",
            )
        have = hashlib.sha256(active.read_bytes()).hexdigest()
        if have != want:
            return Check(
                "catalog",
                False,
                f"{active} is not the catalog the agent verified (sha256 {have[:12]}…, "
                f"committed {want[:12]}…)",
                "something changed it after the update: resend the catalog from the console "
                "(a new rollout) and find out what wrote to the state directory",
            )
        where = "verified by the agent"
    services = len(catalog.services)
    return Check("catalog", True, f"version {catalog.version}, {services} services ({where})")


def check_font(_config: Config, opts: Options) -> Check:
    """The Chinese font: at a known path (what the app tries first), else through fontconfig."""
    from kiosk.fonts import KNOWN_PATHS

    paths = KNOWN_PATHS if opts.font_paths is None else opts.font_paths
    for path in paths:
        if path.is_file():
            return Check("font", True, str(path))
    fix = f"apt-get install fonts-wqy-microhei, then fc-cache -f ({CJK_FAMILY} renders Chinese)"
    if not shutil.which("fc-list"):
        return Check("font", False, "fc-list missing (fontconfig)", "apt-get install fontconfig")
    out = _run(["fc-list", f"{CJK_FAMILY}:style=Regular", "file"], env=opts.env).stdout
    files = [line.strip().rstrip(":") for line in out.splitlines() if line.strip()]
    found = [f for f in files if Path(f).is_file()]
    if found:
        return Check("font", True, f"{found[0]} (fontconfig)")
    where = ", ".join(str(p) for p in paths) or "no known paths"
    config_file = opts.env.get("FONTCONFIG_FILE")
    fc = f"fontconfig ({config_file})" if config_file else "fontconfig"
    return Check("font", False, f"{CJK_FAMILY} not found: not at {where}, unknown to {fc}", fix)


def _espeak_data(opts: Options) -> tuple[Path | None, str]:
    """The espeak-ng-data folder espeak-ng will use, and a problem with it ("" if none)."""
    custom = opts.env.get("ESPEAK_DATA_PATH")
    if custom:
        data = Path(custom) / "espeak-ng-data"
        if not (data / "phontab").is_file():
            return None, (
                f"ESPEAK_DATA_PATH={custom} has no espeak-ng-data/phontab "
                "(espeak-ng silently falls back to the system's data)"
            )
        return data, ""
    out = _run(["espeak-ng", "--version"], env=opts.env).stdout
    _, _, at = out.partition("Data at:")
    system = Path(at.strip()) if at.strip() else None
    if system is None or not (system / "phontab").is_file():
        return None, f"espeak-ng data missing ({system or 'no path reported'})"
    return system, ""


def check_voice(config: Config, opts: Options) -> Check:
    """Each voice the kiosk speaks with is synthesised for real, to a WAV file."""
    from drivers.speech.voice import VOICES

    if config.devices.speech == "off":
        return Check("voice", True, "speech is off in the configuration")
    if not shutil.which("espeak-ng"):
        return Check("voice", False, "espeak-ng is not installed", "apt-get install espeak-ng")
    data, problem = _espeak_data(opts)
    if data is None:
        fix = (
            "unset ESPEAK_DATA_PATH or point it at the folder holding espeak-ng-data/"
            if opts.env.get("ESPEAK_DATA_PATH")
            else "apt-get install --reinstall espeak-ng-data"
        )
        return Check("voice", False, problem, fix)
    missing: list[str] = []
    with tempfile.TemporaryDirectory(prefix="kiosk-doctor-") as tmp:
        for lang, voice in sorted(VOICES.items()):
            wav = Path(tmp) / f"{lang}.wav"
            result = _run(["espeak-ng", "-v", voice, "-w", str(wav), "1 2 3"], env=opts.env)
            if result.returncode != 0 or not wav.is_file() or wav.stat().st_size <= 44:
                missing.append(voice)
    if missing:
        return Check(
            "voice",
            False,
            f"espeak-ng voice {', '.join(missing)} missing in {data}",
            "apt-get install --reinstall espeak-ng-data (it ships cmn-latn-pinyin and en-us)",
        )
    voices = ", ".join(v for _, v in sorted(VOICES.items()))
    return _check_audio_output(config, f"espeak-ng {voices} from {data}")


def _check_audio_output(config: Config, voices: str) -> Check:
    """The prompts' way out: the configured player opens the configured device for real."""
    from drivers.speech.player import null_sink, player_args, probe_output

    player = config.devices.audio_player
    if not shutil.which(player):
        return Check("voice", False, f"player {player} missing", "apt-get install alsa-utils")
    args = player_args(player, config.devices.audio_player_args)
    shown = " ".join([player, *args])
    if null_sink(player, args):
        return Check(
            "voice",
            False,
            f"prompts go to ALSA's null device ({shown}): the station is silent",
            "connect a speaker and remove -D null from [devices] audio_player_args",
        )
    refused = probe_output(player, args)
    if refused:
        return Check(
            "voice",
            False,
            f"no audio device — prompts are silent ({refused})"[:200],
            "connect the speaker or sound card and check it is seen (aplay -l); the kiosk user "
            "needs group audio; a card other than the default goes in [devices] "
            'audio_player_args, e.g. ["-D", "plughw:1"]',
        )
    return Check("voice", True, f"{voices}, played by {shown}")


# --- devices --------------------------------------------------------------------------------------


def check_id_reader(config: Config, _opts: Options) -> Check:
    spec = config.devices.id_reader
    if spec == "sim":
        return Check("id reader", True, "simulated GA 467 reader on a pseudo-terminal")
    port = spec.removeprefix("sam:")
    if not os.path.exists(port):
        return Check(
            "id reader",
            False,
            f"{port} does not exist",
            "plug in the reader; check udev rules (deploy/udev/70-station-kiosk.rules makes "
            "/dev/kiosk-id-reader; udevadm info -a -n /dev/ttyUSB0 shows its ids)",
        )
    if not os.access(port, os.R_OK | os.W_OK):
        return Check(
            "id reader",
            False,
            f"no access to {port}",
            "add the kiosk user to group dialout (the udev rules give the device to it)",
        )
    return Check("id reader", True, port)


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
    from drivers.cups.sandbox import CupsSandbox

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
                "cupsd names the directive it refuses: correct it in drivers/cups/sandbox.py "
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
    from drivers.cups.sandbox import cupsd_check

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
    if spec == "sim":
        return Check("thermal printer", True, "simulated ESC/POS printer on TCP")
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
    from flows.models import DeviceState

    dev = config.devices
    path = dev.thermal_printer.partition(":")[2]
    if not os.path.exists(path):
        return Check(
            "thermal printer",
            False,
            f"{path} does not exist",
            "plug in and switch on the printer; check udev rules (deploy/udev/"
            "70-station-kiosk.rules makes /dev/kiosk-thermal)",
        )
    if not os.access(path, os.R_OK | os.W_OK):
        return Check(
            "thermal printer",
            False,
            f"no access to {path}",
            "add the kiosk user to group lp (the udev rules give the device to it)",
        )
    health = EscposPrinter(
        dev.thermal_printer, baud=dev.thermal_printer_baud, flow=dev.thermal_printer_flow
    ).health()
    if health.state is DeviceState.UNKNOWN:
        return Check(
            "thermal printer",
            False,
            f"{path} does not answer status queries",
            "set [devices] thermal_printer_baud and thermal_printer_flow as the printer's "
            "self-test page says (serial:); a usb: printer must be bidirectional",
        )
    if not health.usable:
        return Check("thermal printer", False, f"{path}: {', '.join(health.reasons)}")
    return Check("thermal printer", True, f"{path}: {health.state.value}")


# --- the fleet ------------------------------------------------------------------------------------


def _tls_files(config: Config) -> Any:
    from fleet.mqtt.client import TlsFiles

    f = config.fleet
    paths = (f.ca_file, f.cert_file, f.key_file)
    if not any(paths):
        return None
    if not all(paths):
        raise ValueError("[fleet] ca_file, cert_file and key_file: set all three or none")
    return TlsFiles(Path(f.ca_file), Path(f.cert_file), Path(f.key_file))


def check_certificate(config: Config, opts: Options) -> Check:
    from fleet.trust.pki import PkiError, common_name, load_cert

    try:
        files = _tls_files(config)
    except ValueError as err:
        return Check("certificate", False, str(err), "set all three in [fleet]")
    if files is None:
        return Check("certificate", True, "no TLS configured (plain MQTT)")
    for path in (files.ca_file, files.cert_file, files.key_file):
        if not os.access(path, os.R_OK):
            return Check(
                "certificate",
                False,
                f"{path} is missing or unreadable",
                "provision the station (fleet CA, its certificate and key); "
                "the key belongs to the kiosk user, mode 0600",
            )
    try:
        cert = load_cert(files.cert_file)
        cn = common_name(cert.subject)
    except PkiError as err:
        return Check("certificate", False, f"{files.cert_file}: {err}", "provision it again")
    left = cert.not_valid_after_utc - dt.datetime.now(dt.UTC)
    until = cert.not_valid_after_utc.strftime("%Y-%m-%d %H:%M UTC")
    if cn != config.station.id:
        return Check(
            "certificate",
            False,
            f"issued to {cn}, but this station is {config.station.id}",
            "issue a certificate for this station id (the broker's ACL uses the CN)",
        )
    if left.total_seconds() <= 0:
        return Check(
            "certificate",
            False,
            f"expired {until}",
            "the broker refuses it: issue a new one on the bench (fleet CA) and install it",
        )
    if left < dt.timedelta(days=opts.cert_warn_days):
        return Check(
            "certificate",
            False,
            f"expires in {left.days} days ({until}): the automatic renewal did not happen",
            "check the agent's log (journalctl -u kiosk-agent) for evt/csr, and the console "
            "for the station's renewal; or issue a new certificate on the bench",
        )
    return Check("certificate", True, f"CN {cn}, valid until {until} ({left.days} days)")


def _mqtt_connect(config: Config, files: Any, host: str, port: int) -> str:
    """Connect as this station over TLS with a client id of the doctor's own; "" if accepted."""

    from fleet.mqtt.client import new_client

    answered = threading.Event()
    reason: list[str] = []

    def on_connect(*args: Any) -> None:
        code = args[3]
        reason.append("" if not code.is_failure else str(code))
        answered.set()

    # never the station id itself: the broker would push the running agent's session off
    client = new_client(f"{config.station.id}-doctor", tls=files)
    client.on_connect = on_connect
    try:
        client.connect(host, port, keepalive=10)
    except (OSError, ValueError) as err:
        return f"TLS: {err}"
    client.loop_start()
    try:
        if not answered.wait(10):
            return "no CONNACK in 10 s"
        return reason[0]
    finally:
        client.disconnect()
        client.loop_stop()


def _peer_expiry(host: str, port: int, files: Any) -> str:
    from cryptography import x509

    from fleet.mqtt.client import client_context

    context = client_context(files)
    with (
        socket.create_connection((host, port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    if der is None:
        return ""
    when = x509.load_der_x509_certificate(der).not_valid_after_utc
    return f"broker certificate valid until {when:%Y-%m-%d}"


def check_broker(config: Config, _opts: Options) -> Check:
    if not config.fleet.broker:
        return Check("broker", True, "no broker configured (no fleet agent)")
    host, _, port_text = config.fleet.broker.rpartition(":")
    port = int(port_text)
    if not _tcp(host, port):
        return Check(
            "broker",
            False,
            f"{config.fleet.broker} does not answer",
            "check the network and the broker (systemctl status mosquitto on the broker)",
        )
    try:
        files = _tls_files(config)
    except ValueError:
        files = None
    if files is None or not all(os.access(p, os.R_OK) for p in (files.cert_file, files.key_file)):
        return Check("broker", True, f"{config.fleet.broker} answers (TCP)")
    try:
        refused = _mqtt_connect(config, files, host, port)
        expiry = "" if refused else _peer_expiry(host, port, files)
    except (OSError, ValueError) as err:
        refused, expiry = f"TLS: {err}", ""
    if refused:
        return Check(
            "broker",
            False,
            f"{config.fleet.broker} refuses this station: {refused}"[:160],
            "check the station's certificate (row above), the fleet CA file, and that the "
            "broker's certificate names the host in [fleet] broker",
        )
    return Check("broker", True, f"{config.fleet.broker}: TLS and MQTT ok, {expiry}")


CHECKS: list[Callable[[Config, Options], Check]] = [
    check_state_dir,
    check_catalog,
    check_font,
    check_voice,
    check_id_reader,
    check_a4,
    check_thermal,
    check_certificate,
    check_broker,
]


def render(rows: Sequence[Check]) -> str:
    width = max(len(r.name) for r in rows)
    lines = []
    for r in rows:
        status = "ok  " if r.ok else "FAIL"
        lines.append(f"{r.name:<{width}}  {status}  {r.detail}")
        if not r.ok and r.fix:
            lines.append(f"{'':<{width}}        fix: {r.fix}")
    return "\n".join(lines)


def run_doctor(config_path: str | None, options: Options | None = None) -> int:
    opts = options or Options()
    try:
        config = load_config(Path(config_path) if config_path else None)
        rows = [Check("config", True, config_path or "defaults (simulated station)")]
    except KioskError as err:
        print(
            render(
                [
                    Check(
                        "config",
                        False,
                        str(err),
                        "correct the key it names (assets/config/kiosk.example.toml documents "
                        "every key)",
                    )
                ]
            )
        )
        return 1
    for check in CHECKS:
        try:
            rows.append(check(config, opts))
        except Exception as err:  # a doctor that crashes on a broken machine helps nobody
            name = check.__name__.removeprefix("check_").replace("_", " ")
            rows.append(Check(name, False, f"the check itself failed: {err!r}"[:160]))
    print(render(rows))
    return 0 if all(r.ok for r in rows) else 1
