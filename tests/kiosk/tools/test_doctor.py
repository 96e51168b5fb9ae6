"""`kiosk doctor` prints a table of what the station needs, and a fix for each failure.

"Missing" is made for real, never pretended: a font path and a fontconfig configuration that
hold no font, an espeak-ng data folder that does not exist or lacks the Mandarin voice (built
from the real one), a queue that the private cupsd does not have, a station certificate about
to expire presented to a real TLS broker.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiosk.config import parse_config
from kiosk.tools.doctor import Options, check_a4
from sandbox.cups import CupsSandbox
from sandbox.mosquitto import MosquittoBroker

WQY_DIR = Path("/usr/share/fonts/truetype/wqy")


def doctor(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kiosk.cli", *args],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
        env={**os.environ, **(env or {})},
    )


def row(out: str, name: str) -> str:
    """The table row of ``name`` and its fix line (if any)."""
    lines = out.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(name + " "):
            nxt = lines[i + 1] if i + 1 < len(lines) else ""
            return line + ("\n" + nxt if nxt.strip().startswith("fix:") else "")
    raise AssertionError(f"no row {name!r} in:\n{out}")


def write_config(tmp_path: Path, body: str = "") -> Path:
    config = tmp_path / "kiosk.toml"
    config.write_text(f'[state]\ndir = "{tmp_path / "state"}"\n{body}')
    return config


def fontconfig_with(tmp_path: Path, font_dir: Path) -> Path:
    """A fontconfig configuration whose only font folder is ``font_dir``."""
    conf = tmp_path / "fonts.conf"
    conf.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig>\n'
        f"  <dir>{font_dir}</dir>\n  <cachedir>{tmp_path / 'fc-cache'}</cachedir>\n"
        "</fontconfig>\n"
    )
    return conf


def espeak_data_without_mandarin(tmp_path: Path) -> Path:
    """A copy of the real espeak-ng data with the Mandarin voice and dictionary taken out."""
    out = subprocess.run(
        ["espeak-ng", "--version"], capture_output=True, text=True, check=True
    ).stdout
    real = Path(out.partition("Data at:")[2].strip())
    root = tmp_path / "espeak"
    data = root / "espeak-ng-data"
    data.mkdir(parents=True)
    for entry in real.iterdir():
        if entry.name == "lang":
            shutil.copytree(entry, data / "lang")
        elif entry.name != "cmn_dict":
            (data / entry.name).symlink_to(entry)
    for voice in (data / "lang" / "sit").glob("cmn*"):
        voice.unlink()
    return root


@pytest.fixture(scope="module")
def cups(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CupsSandbox]:
    box = CupsSandbox(tmp_path_factory.mktemp("cups"))
    box.start()
    yield box
    box.stop()


def recording_sound_card(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """A home whose ALSA default device is ALSA's own file plugin: whatever the kiosk plays
    through the real ALSA library lands in ``audio.raw`` (the test machines have no card)."""
    home = tmp_path / "home"
    home.mkdir()
    recording = home / "audio.raw"
    (home / ".asoundrc").write_text(
        f'pcm.!default {{\n  type file\n  slave.pcm "null"\n  file "{recording}"\n'
        '  format "raw"\n}\n'
    )
    return {"HOME": str(home)}, recording


def test_simulated_station_is_healthy(tmp_path: Path) -> None:
    env, recording = recording_sound_card(tmp_path)
    result = doctor("--config", str(write_config(tmp_path)), "doctor", env=env)
    assert result.returncode == 0, result.stdout
    for name in ("config", "catalog", "font", "voice", "id reader", "A4 printer", "broker"):
        assert "  ok  " in row(result.stdout, name)
    assert "queue enabled and accepting" in row(result.stdout, "A4 printer")
    assert recording.stat().st_size > 0  # the voice check played through the device


@pytest.mark.parametrize(
    ("args", "said", "fix"),
    [
        (
            '["-D", "plughw:99"]',
            "FAIL  no audio device — prompts are silent (aplay: main:",
            "fix: connect the speaker or sound card and check it is seen (aplay -l)",
        ),
        (
            '["-D", "null"]',
            "prompts go to ALSA's null device (aplay -q -D null): the station is silent",
            "fix: connect a speaker and remove -D null",
        ),
    ],
    ids=["no-audio-device", "null-sink"],
)
def test_a_station_that_cannot_speak_fails_with_the_fix(
    tmp_path: Path, args: str, said: str, fix: str
) -> None:
    """Done-when (4): a sound card that is gone, or prompts sent to nowhere, is no voice."""
    config = write_config(tmp_path, f"[devices]\naudio_player_args = {args}\n")
    result = doctor("--config", str(config), "doctor")
    assert result.returncode == 1
    voice = row(result.stdout, "voice")
    assert said in voice and fix in voice


def test_a_headphone_output_that_does_not_open_fails_with_the_fix(tmp_path: Path) -> None:
    """Issue 23: plugged-in headphones must be heard; the jack's device is probed as well."""
    env, _ = recording_sound_card(tmp_path)
    devices = '[devices]\nheadphones = "alsa:0"\nheadphone_player_args = '
    bad = write_config(tmp_path, devices + '["-D", "plughw:99"]\n')
    voice = row(doctor("--config", str(bad), "doctor", env=env).stdout, "voice")
    assert "FAIL  no headphone output — headphones would hear nothing (aplay: main:" in voice
    assert "fix: set [devices] headphone_player_args to the jack's device" in voice
    good = write_config(tmp_path, devices + '["-D", "default"]\n')
    voice = row(doctor("--config", str(good), "doctor", env=env).stdout, "voice")
    assert "  ok  " in voice and "headphones: aplay -q -D default" in voice


def test_a_cups_configuration_cupsd_refuses_fails_with_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Done-when (4): the private scheduler with the old bare Printcap line, and this machine's
    scheduler (``Options.cups_dir``) with the same line; cupsd's own words in both rows."""
    import sandbox.cups as sandbox

    old = sandbox._CUPS_FILES_CONF.replace("Printcap {root}/printcap", "Printcap")
    monkeypatch.setattr(sandbox, "_CUPS_FILES_CONF", old)
    check = check_a4(parse_config({}, source="test"), Options())
    assert not check.ok
    assert "the private cupsd does not serve: cupsd refuses its configuration" in check.detail
    assert "Missing value for Printcap on line" in check.detail
    assert "cupsd -t -c cupsd.conf -s cups-files.conf" in check.fix
    monkeypatch.undo()

    etc = tmp_path / "etc-cups"
    etc.mkdir()
    (etc / "cupsd.conf").write_text("Listen localhost:631\n")
    (etc / "cups-files.conf").write_text(f"ServerRoot {etc}\nPrintcap\n")
    system = parse_config({"devices": {"a4_printer": "cups:kiosk-a4"}}, source="test")
    check = check_a4(system, Options(cups_dir=etc))
    assert not check.ok
    assert "cupsd refuses its configuration: Missing value for Printcap on line 2" in check.detail
    assert f"cupsd -t -c {etc}/cupsd.conf -s {etc}/cups-files.conf" in check.fix
    (etc / "cups-files.conf").write_text(f"ServerRoot {etc}\nPrintcap {etc}/printcap\n")
    check = check_a4(system, Options(cups_dir=etc))
    assert "refuses" not in check.detail  # accepted: the scheduler's own answer is what counts


def test_missing_devices_are_named_with_a_fix(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        "[devices]\n"
        'id_reader = "sam:/dev/ttyNOPE0"\n'
        'thermal_printer = "tcp:127.0.0.1:9"\n'
        "[fleet]\n"
        'broker = "127.0.0.1:9"\n',
    )
    result = doctor("--config", str(config), "doctor")
    assert result.returncode == 1
    out = result.stdout
    assert "/dev/ttyNOPE0 does not exist" in row(out, "id reader")
    assert "fix: plug in the reader" in row(out, "id reader")
    assert "thermal printer  FAIL" in out
    assert "FAIL" in row(out, "broker") and "fix: check the network" in row(out, "broker")


def test_missing_font_voice_and_queue_each_named_with_its_fix(
    tmp_path: Path, cups: CupsSandbox
) -> None:
    """Done-when (2): one machine missing all three; each row says what and how to fix it."""
    config = write_config(tmp_path, f'[devices]\na4_printer = "cups:kiosk-nope@{cups.server}"\n')
    empty = tmp_path / "no-fonts"
    result = doctor(
        "--config",
        str(config),
        "doctor",
        "--font-path",
        str(empty / "wqy-microhei.ttc"),
        env={
            "FONTCONFIG_FILE": str(fontconfig_with(tmp_path, empty)),
            "ESPEAK_DATA_PATH": str(espeak_data_without_mandarin(tmp_path)),
        },
    )
    assert result.returncode == 1
    out = result.stdout
    font = row(out, "font")
    assert "FAIL" in font and "WenQuanYi Micro Hei not found" in font
    assert "fix: apt-get install fonts-wqy-microhei" in font
    voice = row(out, "voice")
    assert "FAIL" in voice and "cmn-latn-pinyin missing" in voice
    assert "en-us" not in voice.splitlines()[0]  # the English voice is there, and not blamed
    assert "fix: apt-get install --reinstall espeak-ng-data" in voice
    a4 = row(out, "A4 printer")
    assert "FAIL" in a4 and "queue kiosk-nope does not exist" in a4
    assert f"fix: create it: lpadmin -h {cups.server} -p kiosk-nope" in a4
    # and the rest of the machine is still checked and fine
    assert "  ok  " in row(out, "catalog") and "  ok  " in row(out, "id reader")


def test_the_font_is_found_through_fontconfig_alone(tmp_path: Path) -> None:
    if not (WQY_DIR / "wqy-microhei.ttc").is_file():
        pytest.skip("fonts-wqy-microhei is not installed here")
    result = doctor(
        "--config",
        str(write_config(tmp_path)),
        "doctor",
        "--font-path",
        str(tmp_path / "nowhere.ttc"),
        env={"FONTCONFIG_FILE": str(fontconfig_with(tmp_path, WQY_DIR))},
    )
    font = row(result.stdout, "font")
    assert "  ok  " in font and "wqy-microhei.ttc (fontconfig)" in font


def test_an_espeak_data_folder_that_does_not_exist(tmp_path: Path) -> None:
    result = doctor(
        "--config",
        str(write_config(tmp_path)),
        "doctor",
        env={"ESPEAK_DATA_PATH": str(tmp_path / "nope")},
    )
    voice = row(result.stdout, "voice")
    assert (
        "FAIL" in voice and f"ESPEAK_DATA_PATH={tmp_path / 'nope'} has no espeak-ng-data" in voice
    )
    assert "fix: unset ESPEAK_DATA_PATH" in voice
    assert result.returncode == 1


def test_queue_states_on_a_real_cupsd(cups: CupsSandbox) -> None:
    def a4(spec: str) -> tuple[bool, str, str]:
        config = parse_config({"devices": {"a4_printer": spec}}, source="test")
        c = check_a4(config, Options())
        return c.ok, c.detail, c.fix

    ok, detail, _ = a4(f"cups:{cups.queue}@{cups.server}")
    assert ok and "enabled, accepting" in detail

    subprocess.run(
        ["cupsdisable", "-h", cups.server, "-r", "paper jam in tray 2", cups.queue], check=True
    )
    try:
        ok, detail, fix = a4(f"cups:{cups.queue}@{cups.server}")
        assert not ok and "is disabled" in detail and "paper jam in tray 2" in detail
        assert fix.endswith(f"cupsenable -h {cups.server} {cups.queue}")
    finally:
        subprocess.run(["cupsenable", "-h", cups.server, cups.queue], check=True)

    subprocess.run(["cupsreject", "-h", cups.server, cups.queue], check=True)
    try:
        ok, detail, fix = a4(f"cups:{cups.queue}@{cups.server}")
        assert (
            not ok
            and "rejects jobs" in detail
            and fix == f"cupsaccept -h {cups.server} {cups.queue}"
        )
    finally:
        subprocess.run(["cupsaccept", "-h", cups.server, cups.queue], check=True)

    ok, detail, fix = a4(f"cups:{cups.queue}@127.0.0.1:9")  # nothing listens there
    assert not ok and "scheduler 127.0.0.1:9 does not answer" in detail


@pytest.mark.slow
def test_certificate_about_to_expire_on_a_real_tls_broker(tmp_path: Path) -> None:
    broker = MosquittoBroker(tmp_path / "broker", tls=True)
    broker.start()
    try:
        creds = broker.issue_client("st-0001", tmp_path / "tls", valid_for=dt.timedelta(days=3))
        fleet = (
            '[station]\nid = "st-0001"\n'
            f'[fleet]\nbroker = "{broker.address}"\nca_file = "{creds.ca_file}"\n'
            f'cert_file = "{creds.cert_file}"\nkey_file = "{creds.key_file}"\n'
        )
        result = doctor("--config", str(write_config(tmp_path, fleet)), "doctor")
        cert = row(result.stdout, "certificate")
        assert "FAIL" in cert and "expires in 2 days" in cert
        assert "automatic renewal did not happen" in cert and "fix: check the agent's log" in cert
        link = row(result.stdout, "broker")
        assert "  ok  " in link and "TLS and MQTT ok" in link
        assert "broker certificate valid until" in link
        assert result.returncode == 1

        other = broker.issue_client("st-0002", tmp_path / "tls2")
        wrong = fleet.replace(str(creds.cert_file), str(other.cert_file)).replace(
            str(creds.key_file), str(other.key_file)
        )
        result = doctor("--config", str(write_config(tmp_path, wrong)), "doctor")
        assert "issued to st-0002, but this station is st-0001" in row(result.stdout, "certificate")
    finally:
        broker.stop()


def test_an_installed_catalog_must_still_be_the_one_the_agent_verified(tmp_path: Path) -> None:
    import hashlib
    import json

    from assets import ASSETS_DIR
    from kiosk.shell.catalog_watch import store_dir
    from kiosk.tools.doctor import check_catalog
    from statedir.catalog_store import CatalogStore

    config = parse_config({"state": {"dir": str(tmp_path / "state")}}, source="test")
    store = CatalogStore(store_dir(config.state_dir))
    store.dir.mkdir(parents=True)
    body = (ASSETS_DIR / "catalog" / "demo.toml").read_bytes()
    store.active.write_bytes(body)
    record = {"rev": 3, "catalog_version": 1, "sha256": hashlib.sha256(body).hexdigest()}
    store.applied_file.write_text(json.dumps(record))
    check = check_catalog(config, Options())
    assert check.ok and "verified by the agent" in check.detail

    store.active.write_bytes(body.replace(b"version = 1", b"version = 1 ", 1))
    check = check_catalog(config, Options())
    assert not check.ok and "is not the catalog the agent verified" in check.detail
    assert "resend the catalog from the console" in check.fix
