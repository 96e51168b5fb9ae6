"""``kiosk doctor``: the configuration, the state directory, the catalog, the font and the voice."""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path

from flows.errors import KioskError
from kiosk.config import Config
from kiosk.tools.doctor.base import (
    CJK_FAMILY,
    LOW_DISK_MIB,
    Check,
    Options,
    _run,
)

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
    from kiosk.shell.catalog_watch import active_catalog, store_dir
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
    if config.devices.headphones:  # the jack's own device: the private voice (issue 23)
        phones = player_args(player, config.devices.headphone_player_args)
        refused = probe_output(player, phones)
        if refused:
            return Check(
                "voice",
                False,
                f"no headphone output — headphones would hear nothing ({refused})"[:200],
                "set [devices] headphone_player_args to the jack's device (aplay -l), e.g. "
                '["-D", "plughw:0,1"]',
            )
        shown += f"; headphones: {' '.join([player, *phones])}"
    return Check("voice", True, f"{voices}, played by {shown}")
