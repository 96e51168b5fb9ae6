"""`make run` behaves like a station: it comes up to the home screen, processes that end are
started again as systemd would, and Ctrl-C leaves nothing behind.

One station is started with ``make -f REPO/Makefile run`` in a folder of its own (so a
developer's ``station-data/`` is never touched), in a process group of its own as a terminal's
foreground job is. Every process of that run, whoever started it, inherits one environment
variable the test sets (:data:`TEST_MARK`), so "none of its processes left" is read from
``/proc`` and does not rely on the station's own bookkeeping.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from kiosk.tools.supervise import RestartPolicy

REPO = Path(__file__).resolve().parents[3]
TEST_MARK = "KIOSK_TEST_STATION"


def marked(token: str) -> dict[int, str]:
    """pid -> cmdline of live processes (not zombies) carrying ``TEST_MARK=token``."""
    found = {}
    needle = f"{TEST_MARK}={token}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            state = (entry / "stat").read_text().rpartition(")")[2].split()[0]
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:
            continue
        if state != "Z":
            found[int(entry.name)] = cmdline
    return found


def until(cond: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@dataclass
class Station:
    proc: subprocess.Popen[str]
    folder: Path
    token: str
    lines: list[str] = field(default_factory=list)

    @property
    def data(self) -> Path:
        return self.folder / "station-data"

    def output(self) -> str:
        return "\n".join(self.lines)

    def pid_of(self, role: str) -> int | None:
        for pid, cmd in marked(self.token).items():
            if "kiosk.cli" in cmd and cmd.endswith(f" {role}"):
                return pid
        return None

    def log(self, name: str) -> str:
        path = self.data / "state" / "logs" / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""


@pytest.fixture(scope="module")
def station(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Station]:
    folder = tmp_path_factory.mktemp("make-run")
    token = secrets.token_hex(6)
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env[TEST_MARK] = token
    proc = subprocess.Popen(
        ["make", "-f", str(REPO / "Makefile"), "run"],
        cwd=folder,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    station = Station(proc, folder, token)

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            station.lines.append(line.rstrip())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        until(
            lambda: "kiosk: home screen ready" in station.lines or proc.poll() is not None,
            180,
            "the home screen",
        )
        assert proc.poll() is None, station.output()
        yield station
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for pid in marked(token):  # never leave a station running after the tests
            os.kill(pid, signal.SIGKILL)
        reader.join(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.mark.gui
@pytest.mark.slow
def test_the_station_comes_up_to_the_home_screen(station: Station, artifacts: Path) -> None:
    text = station.output()
    assert "virtual screen" in text
    assert "fleet console on http://127.0.0.1:" in text
    assert "Printed certificates:" in text
    if shutil.which("aplay") and "no sound card here" in text:
        assert "voice prompts go to ALSA's null device" in text
    screen = station.data / "screen.png"
    until(lambda: screen.exists() and screen.stat().st_size > 10_000, 30, "the screen mirror")
    shutil.copy(screen, artifacts / "make-run-screen.png")
    roles = {role: station.pid_of(role) for role in ("run", "agent")}
    assert all(roles.values()), marked(station.token)
    commands = " ".join(marked(station.token).values())
    for program in ("Xvfb", "mosquitto", "cupsd", "fleet.cli console"):
        assert program in commands, commands


@pytest.mark.gui
@pytest.mark.slow
def test_an_agent_killed_with_sigkill_is_back_within_5_s(station: Station) -> None:
    kiosk = station.pid_of("run")
    agent = station.pid_of("agent")
    assert kiosk and agent
    sessions = [
        int(n) for n in re.findall(r"connected to \S+ \(session (\d+)\)", station.log("agent"))
    ]
    assert sessions, station.log("agent")
    os.kill(agent, signal.SIGKILL)
    killed = time.monotonic()
    until(lambda: station.pid_of("agent") not in (None, agent), 5, "a new agent")
    assert time.monotonic() - killed <= 5
    # the station is up: the new agent reaches the broker with a new session, the UI never left
    until(
        lambda: f"(session {max(sessions) + 1})" in station.log("agent"), 30, "the agent connected"
    )
    assert station.pid_of("run") == kiosk
    text = station.output()
    assert "station: agent was killed by SIGKILL" in text
    assert "station: agent will be started again in 2 s, as systemd does on a station" in text


@pytest.mark.gui
@pytest.mark.slow
def test_a_kiosk_that_asks_for_a_restart_is_started_again(station: Station) -> None:
    """Exit status 4 (the nightly restart, the console's restart_ui): back, as under systemd."""
    kiosk = station.pid_of("run")
    ready = station.lines.count("kiosk: home screen ready")
    config = station.data / "kiosk.toml"
    queued = subprocess.run(
        [sys.executable, str(REPO / "deploy" / "bin" / "nightly_restart.py")],
        env={**os.environ, "KIOSK_CONFIG": str(config), "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert queued.returncode == 0 and "queued" in queued.stdout, queued.stderr
    until(lambda: station.lines.count("kiosk: home screen ready") > ready, 90, "a new home screen")
    assert station.pid_of("run") not in (None, kiosk)
    assert "station: kiosk exited with 4 (a restart was asked for" in station.output()


@pytest.mark.gui
@pytest.mark.slow
def test_an_idle_station_logs_nothing_below_info(station: Station) -> None:
    """Without --debug, neither the polling wire loggers nor any library write DEBUG lines."""
    for name in ("kiosk", "agent"):
        log = station.log(name)
        assert log, f"{name}.log is empty"
        assert " DEBUG " not in log, [ln for ln in log.splitlines() if " DEBUG " in ln][:5]


@pytest.mark.gui
@pytest.mark.slow
def test_the_console_has_its_own_catalog_repository_and_fleet_ca(station: Station) -> None:
    """Every page of the demo console works: Catalogs shows the signed demo catalog live with a
    rollout link to the served repository, which this station trusts; Enrolment can enrol."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.fleet.console.test_console_browser import chromium

    text = station.output()
    console = re.search(r"fleet console on (http://127\.0\.0\.1:\d+)/", text)
    served = re.search(r"served on (http://127\.0\.0\.1:\d+/)", text)
    assert console and served, text
    repo_url = served.group(1)

    def fetch(path: str) -> bytes:
        with urllib.request.urlopen(repo_url + path, timeout=10) as answer:  # noqa: S310 (http)
            return bytes(answer.read())

    anchor = station.data / "state" / "catalogs" / "root.json"
    assert fetch("metadata/1.root.json") == anchor.read_bytes()  # the station trusts it
    assert json.loads(fetch("metadata/timestamp.json"))["signed"]["_type"] == "timestamp"
    password = (station.data / "console-admin.secret").read_text().strip()
    with chromium() as browser:
        wait = WebDriverWait(browser, 20, poll_frequency=0.1)
        browser.get(console.group(1) + "/catalogs")
        browser.find_element(By.ID, "name").send_keys("admin")
        browser.find_element(By.ID, "password").send_keys(password)
        browser.find_element(By.ID, "login").click()
        live = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "p.live-catalog"))
        assert [
            (p.get_attribute("data-target"), p.get_attribute("data-version")) for p in live
        ] == [("catalog.toml", "1")]
        link = browser.find_element(By.CSS_SELECTOR, "a.rollout-link").get_attribute("href") or ""
        asked = urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)
        assert asked["metadata_url"] == [repo_url + "metadata/"], link
        browser.get(console.group(1) + "/enrolment")
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "main h1"))
        assert browser.find_elements(By.ID, "no-ca") == [], browser.page_source[:2000]


@pytest.mark.gui
@pytest.mark.slow
def test_ctrl_c_to_the_process_group_leaves_no_process(station: Station) -> None:
    """Last: SIGINT to the whole foreground group, as a terminal sends it."""
    assert len(marked(station.token)) >= 6, marked(station.token)
    os.killpg(station.proc.pid, signal.SIGINT)
    station.proc.wait(timeout=90)
    time.sleep(0.5)
    assert marked(station.token) == {}, station.output()
    text = station.output()
    assert "station: stopped" in text
    assert "left behind" not in text, text  # the kiosk stopped its own helpers
    assert "Traceback" not in text and "X connection" not in text, text


def test_the_restart_policy_is_read_from_the_shipped_units() -> None:
    units = REPO / "deploy" / "systemd"
    ui = RestartPolicy.from_unit(units / "kiosk-ui.service")
    assert ui.restarts(4) and ui.restarts(70) and ui.restarts(-9) and ui.restarts(0)
    assert not ui.restarts(3)  # a technician left to the desktop
    assert ui.delay_s == 3
    agent = RestartPolicy.from_unit(units / "kiosk-agent.service")
    assert agent.restarts(-9) and agent.delay_s == 2
    on_failure = RestartPolicy(restart="on-failure", success=frozenset({0, 4}))
    assert on_failure.restarts(1) and not on_failure.restarts(4)
    assert not RestartPolicy().restarts(1)  # Restart=no, systemd's default
