"""Configuration: defaults give the simulated station; mistakes name the file, key and rule."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from flows.errors import ConfigError
from kiosk.config import load_config

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_are_the_simulated_station() -> None:
    config = load_config(None)
    assert config.devices.id_reader == "sim"
    assert config.devices.a4_printer == "sim" and config.devices.thermal_printer == "sim"


def test_the_thermal_printer_profile_comes_from_devices(tmp_path: Path) -> None:
    from kiosk.shell.devices import thermal_profile

    default = thermal_profile(load_config(None).devices)
    assert (default.model, default.columns, default.qr, default.status) == (
        "default",
        32,
        "native",
        "auto",
    )
    path = tmp_path / "kiosk.toml"
    path.write_text(
        "[devices]\nthermal_printer = 'sim:budget-58'\nthermal_printer_model = 'NT-5890K'\n"
        "thermal_printer_width = 80\nthermal_printer_status = 'none'\n"
    )
    profile = thermal_profile(load_config(path).devices)
    assert (profile.model, profile.columns, profile.qr, profile.status, profile.cutter) == (
        "NT-5890K",
        48,
        "raster",
        "none",
        False,
    )


def test_documented_example_is_valid_and_equals_the_defaults() -> None:
    assert load_config(ROOT / "assets" / "config" / "kiosk.example.toml") == load_config(None)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[devices]\nprinter = 'x'\n", "[devices] printer is not a known key"),
        ("[devices]\nspeech = 'loud'\n", "[devices] speech must be `espeak` or `off`; got `loud`"),
        (
            "[devices]\nthermal_printer = 'lpt1'\n",
            "[devices] thermal_printer must be `sim`, `sim:PROFILE`, `tcp:HOST:PORT`, "
            "`serial:/dev/…` or `usb:/dev/…`; got `lpt1`",
        ),
        (
            "[devices]\nthermal_printer_model = 'POS5890'\n",
            "[devices] thermal_printer_model must be a model of python-escpos' capabilities "
            "database, e.g. `default`, `TM-T20II`, `NT-5890K`, `POS-5890` (did you mean "
            "`POS-5890`",
        ),
        (
            "[devices]\nthermal_printer = 'sim:tiny'\n",
            "[devices] thermal_printer must be `sim` or one of `sim:escpos-58`",
        ),
        (
            "[devices]\nthermal_printer_width = 76\n",
            "[devices] thermal_printer_width must be `0`, `58` or `80`; got `76`",
        ),
        ("[ui]\nwidth = 10\n", "[ui] width must be from 640 to 7680; got `10`"),
        ("[stations]\nid = 'a'\n", "[stations] is not a known section (did you mean `station`?)"),
        ("version = 2\n", "`version` must be `1`; got `2`"),
        ("[station\n", "is not valid TOML"),
    ],
)
def test_mistakes_name_file_key_and_rule(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "kiosk.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value)
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("body", "status", "said"),
    [
        (
            "[devices]\nid_reader = 'usb'\n",
            2,
            "{tmp}/kiosk.toml: [devices] id_reader must be `sim` or `sam:/dev/…`",
        ),
        ('[station]\ncatalog = "{tmp}/nope.toml"\n', 1, "{tmp}/nope.toml: 1 problem(s)"),
        ('[state]\ndir = "/proc/no-such-dir"\n', 2, "dir `/proc/no-such-dir` cannot be made"),
    ],
    ids=["bad-key", "missing-catalog", "state-dir-not-writable"],
)
def test_kiosk_run_says_what_stops_it_on_the_terminal(
    tmp_path: Path, body: str, status: int, said: str
) -> None:
    """Before the window opens, on stderr (not only in a log file Kivy took over)."""
    path = tmp_path / "kiosk.toml"
    state = "" if "[state]" in body else f'[state]\ndir = "{tmp_path / "state"}"\n'
    path.write_text(state + body.format(tmp=tmp_path))
    result = subprocess.run(
        [sys.executable, "-m", "kiosk.cli", "--config", str(path), "run"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == status, result.stderr
    assert said.format(tmp=tmp_path) in result.stderr


def test_under_systemd_the_log_also_goes_to_the_journal(tmp_path: Path) -> None:
    """Each line on stderr starts with its syslog priority (sd-daemon(3)), so journald stores
    it with that priority and ``journalctl -p warning`` finds warnings; nothing below INFO."""
    import os

    code = (
        "import logging, sys; from pathlib import Path; from kiosk.station import setup_logging;"
        "setup_logging(Path(sys.argv[1])); log = logging.getLogger('kiosk.test');"
        "log.debug('polling'); log.info('home screen ready'); log.warning('hello journal')\n"
        "try:\n    1 / 0\nexcept ZeroDivisionError:\n    log.exception('it broke')"
    )
    env = dict(os.environ, JOURNAL_STREAM="8:1234")
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], env=env, capture_output=True, text=True
    )
    lines = out.stderr.splitlines()
    assert "<6>INFO kiosk.test: home screen ready" in lines
    assert "<4>WARNING kiosk.test: hello journal" in lines  # journald adds the time
    assert "<3>ERROR kiosk.test: it broke" in lines
    assert "<3>ZeroDivisionError: division by zero" in lines  # each traceback line too
    assert all(line.startswith(("<3>", "<4>", "<6>")) for line in lines), lines
    log = (tmp_path / "logs" / "kiosk.log").read_text()
    assert "hello journal" in log and "polling" not in log and "polling" not in out.stderr


def test_without_systemd_nothing_goes_to_stderr(tmp_path: Path) -> None:
    code = (
        "import logging, sys; from pathlib import Path; from kiosk.station import setup_logging;"
        "setup_logging(Path(sys.argv[1]), name='agent');"
        "logging.getLogger('kiosk.agent').warning('to the file only')"
    )
    import os

    env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], env=env, capture_output=True, text=True
    )
    assert out.stderr == ""
    assert "WARNING kiosk.agent: to the file only" in (tmp_path / "logs" / "agent.log").read_text()
