"""deploy/: the units pass systemd-analyze verify, the users and the session script work.

``systemd-analyze verify`` refuses a unit whose ``Exec*`` program does not exist. The units name
their installed places (/opt/station-kiosk/venv, /usr/lib/station-kiosk), so the test installs
the files with ``deploy/install --root TMP --venv .venv`` (the real scripts and the project's
real entry points) and verifies copies whose two install prefixes point into TMP; every other
line is verified as shipped. ``--root`` itself is no way out: systemd-analyze then wants the
whole system's units inside the root as well.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kiosk.shell.remote import EXIT_RESTART_UI
from statedir.journal import Journal

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
UNITS = sorted((DEPLOY / "systemd").iterdir())
PREFIXES = ("/opt/station-kiosk/", "/usr/lib/station-kiosk/")

pytestmark = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed"
)


def install(root: Path, role: str) -> None:
    subprocess.run(
        [
            str(DEPLOY / "install"),
            "--role",
            role,
            "--root",
            str(root),
            "--venv",
            str(REPO / ".venv"),
        ],
        check=True,
        capture_output=True,
        text=True,
    )


def rooted(unit_text: str, root: Path) -> str:
    """The unit with its install prefixes moved under ``root``, in Exec* lines only."""
    out = []
    for line in unit_text.splitlines():
        if line.startswith("Exec"):
            for prefix in PREFIXES:
                line = line.replace(prefix, f"{root}{prefix}")
        out.append(line)
    return "\n".join(out) + "\n"


def verify(paths: list[Path]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def unit_settings(path: Path) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("root")
    install(root, "kiosk")
    install(root, "console")
    return root


def test_every_unit_is_installed_by_a_role(installed: Path) -> None:
    assert UNITS, "deploy/systemd is empty"
    for unit in UNITS:
        assert (installed / "etc/systemd/system" / unit.name).read_text() == unit.read_text()


def test_every_unit_passes_systemd_analyze_verify(installed: Path, tmp_path: Path) -> None:
    """Done-when (3): no error, no warning, for every unit in deploy/systemd."""
    copies = []
    for unit in UNITS:
        text = (installed / "etc/systemd/system" / unit.name).read_text()
        copy = tmp_path / unit.name
        copy.write_text(rooted(text, installed))
        copies.append(copy)
        for line in copy.read_text().splitlines():  # what verify will look for is really there
            if line.startswith("Exec") and str(installed) in line:
                program = line.split("=", 1)[1].lstrip("+-@:!").split()[0]
                assert os.access(program, os.X_OK), program
    result = verify(copies)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "" and result.stderr.strip() == "", result.stderr


def test_verify_catches_a_broken_unit(installed: Path, tmp_path: Path) -> None:
    """The check above can fail: a misspelt key and a missing program are both reported."""
    text = rooted((DEPLOY / "systemd/kiosk-ui.service").read_text(), installed)
    broken = tmp_path / "kiosk-ui.service"
    broken.write_text(
        text.replace("WatchdogSec=", "WatchdogSecs=").replace("bin/kiosk", "bin/kiosq")
    )
    result = verify([broken])
    assert "Unknown key name 'WatchdogSecs'" in result.stderr or "WatchdogSecs" in result.stderr
    assert "kiosq is not executable" in result.stderr
    assert result.returncode != 0


def test_the_ui_unit_keeps_the_exit_status_contract() -> None:
    ui = unit_settings(DEPLOY / "systemd/kiosk-ui.service")
    assert ui["Type"] == ["notify"] and ui["NotifyAccess"] == ["main"]
    assert ui["Restart"] == ["always"]
    assert ui["RestartPreventExitStatus"] == ["3"]  # a technician left: stays down
    assert str(EXIT_RESTART_UI) in ui["SuccessExitStatus"][0].split()  # restart_ui: not a failure
    assert "70" not in " ".join(ui["RestartPreventExitStatus"])  # a broken loop is restarted
    assert int(ui["WatchdogSec"][0]) <= 60
    agent = unit_settings(DEPLOY / "systemd/kiosk-agent.service")
    assert agent["Type"] == ["notify"] and agent["Restart"] == ["always"] and agent["WatchdogSec"]
    for name in ("kiosk-ui", "kiosk-agent", "fleet-console"):
        unit = unit_settings(DEPLOY / f"systemd/{name}.service")
        assert unit["User"] != ["root"] and unit["NoNewPrivileges"] == ["yes"]
        assert unit["ProtectSystem"] == ["strict"] and unit["CapabilityBoundingSet"] == [""]


def test_users_are_valid_for_systemd_sysusers(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    for name in ("passwd", "group"):
        shutil.copy(f"/etc/{name}", tmp_path / "etc" / name)
    result = subprocess.run(
        [
            "systemd-sysusers",
            "--dry-run",
            f"--root={tmp_path}",
            str(DEPLOY / "sysusers/station-kiosk.conf"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Unknown" not in result.stderr


UDEV_KEYS = re.compile(
    r"^(ACTION|SUBSYSTEMS?|KERNELS?|DRIVERS?|ATTRS?\{[\w.]+\}|ENV\{\w+\}|TAG|SYMLINK|GROUP|MODE|"
    r"OWNER|GOTO|LABEL|IMPORT\{\w+\}|RUN|NAME)$"
)
UDEV_OPS = ("==", "!=", "+=", "-=", ":=", "=")


def test_udev_rules_parse() -> None:
    """Every clause is KEY OP "VALUE" with a key and operator udev(7) knows; GOTOs have LABELs."""
    for path in (DEPLOY / "udev").iterdir():
        labels, gotos = set(), set()
        for raw in path.read_text().splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            for clause in re.split(r",\s*", line):
                m = re.match(
                    r'^([A-Z_]+(?:\{[\w.]+\})?)\s*(==|!=|\+=|-=|:=|=)\s*"([^"]*)"$', clause
                )
                assert m, f"{path.name}: bad clause {clause!r}"
                key, op, value = m.groups()
                assert UDEV_KEYS.match(key), f"{path.name}: unknown key {key}"
                assert op in UDEV_OPS
                if key == "LABEL":
                    labels.add(value)
                if key == "GOTO":
                    gotos.add(value)
            assert "SYMLINK=" not in line.replace("SYMLINK+=", ""), "SYMLINK= would drop others"
        assert gotos <= labels, f"{path.name}: GOTO without LABEL: {gotos - labels}"
    rules = (DEPLOY / "udev/70-station-kiosk.rules").read_text()
    assert 'SYMLINK+="kiosk-id-reader"' in rules and 'SYMLINK+="kiosk-thermal"' in rules


def test_the_ui_waits_for_a_real_x_server(xvfb: str) -> None:
    script = str(DEPLOY / "session/kiosk-xserver")
    env = {**os.environ, "KIOSK_DISPLAY": xvfb, "KIOSK_X_WAIT_S": "5"}
    started = time.monotonic()
    assert subprocess.run([script, "--wait"], env=env, check=False).returncode == 0
    assert time.monotonic() - started < 2
    env["KIOSK_DISPLAY"] = ":97"
    if Path("/tmp/.X11-unix/X97").exists():
        pytest.skip("display :97 is taken here")
    env["KIOSK_X_WAIT_S"] = "1"
    result = subprocess.run(
        [script, "--wait"], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 1 and "no X server on :97 after 1 s" in result.stderr


def test_the_nightly_restart_queues_one_restart_ui_per_night(tmp_path: Path) -> None:
    config = tmp_path / "kiosk.toml"
    config.write_text(f'[state]\ndir = "{tmp_path / "state"}"\n')
    env = {**os.environ, "KIOSK_CONFIG": str(config), "PYTHONPATH": str(REPO)}
    script = str(DEPLOY / "bin/nightly_restart.py")
    first = subprocess.run([sys.executable, script], env=env, capture_output=True, text=True)
    again = subprocess.run([sys.executable, script], env=env, capture_output=True, text=True)
    assert first.returncode == 0 and "queued" in first.stdout, first.stderr
    assert again.returncode == 0 and "already pending" in again.stdout
    journal = Journal(tmp_path / "state" / "journal.sqlite3")
    try:
        pending = journal.commands(state="pending", target="ui")
    finally:
        journal.close()
    # what kiosk.shell.remote carries out when idle
    assert [c.name for c in pending] == ["restart_ui"]
