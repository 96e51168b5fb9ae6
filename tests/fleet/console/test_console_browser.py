"""The console end to end in a real headless Chromium (Selenium + Debian's chromedriver).

``fleet console`` runs as its own process (as in production) against a real mosquitto and real
fleet agents; a technician logs in, sees the stations, sees a help request arrive live (no page
reload) and acknowledges it; an operator sees a simulated fleet (20 terminals with real MQTT
connections, :class:`fleet.simulate.process.SimulatorProcess`), starts a catalog rollout from the
page and
watches it complete live. Screenshots go to ``test-artifacts/console/``. Runs on SQLite and on
PostgreSQL.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from fleet.agent import Agent, AgentConfig
from fleet.simulate import SimConfig
from fleet.simulate.process import SimulatorProcess
from sandbox.console import console_process as sandbox_console
from sandbox.mosquitto import MosquittoBroker
from statedir.journal import Journal

REPO = Path(__file__).resolve().parents[3]
ARTIFACTS = REPO / "test-artifacts" / "console"
SITE = "zibo-gx"
PASSWORD = "correct horse battery"
BROWSER_LANGUAGE = "zh-CN,zh"  # the pages are read in Chinese unless a test switches
CHROMIUM_FLAGS = (
    f"--lang={BROWSER_LANGUAGE.split(',')[0]}",
    f"--accept-lang={BROWSER_LANGUAGE}",
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
)

pytestmark = pytest.mark.slow


@contextlib.contextmanager
def chromium(downloads: Path | None = None) -> Iterator[WebDriver]:
    """Headless Chromium; with ``downloads``, files are saved there without asking."""
    chromium = shutil.which("chromium")
    driver_path = shutil.which("chromedriver")
    assert chromium and driver_path, "install the Debian packages chromium and chromium-driver"
    profile = tempfile.mkdtemp(prefix="console-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    prefs: dict[str, object] = {"intl.accept_languages": BROWSER_LANGUAGE}
    if downloads is not None:
        prefs["download.default_directory"] = str(downloads)
        prefs["download.prompt_for_download"] = False
    options.add_experimental_option("prefs", prefs)
    driver = webdriver.Chrome(options=options, service=Service(driver_path))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    with chromium() as driver:
        yield driver


def console_process(
    tmp_path: Path, broker: MosquittoBroker, db_url: str, users: dict[str, str], *options: str
) -> contextlib.AbstractContextManager[str]:
    """:func:`sandbox.console.console_process` with the tests' password."""
    return sandbox_console(tmp_path, broker, db_url, users, *options, password=PASSWORD)


@pytest.fixture
def console_url(tmp_path: Path, broker: MosquittoBroker, db_url: str) -> Iterator[str]:
    """``fleet console`` with a technician and an operator."""
    users = {"tech": "technician", "oper": "operator"}
    with console_process(tmp_path, broker, db_url, users) as url:
        yield url


def start_station(tmp_path: Path, broker: MosquittoBroker, station: str) -> tuple[Agent, Journal]:
    state = tmp_path / station
    state.mkdir()
    journal = Journal(state / "journal.sqlite3")
    journal.put_health(
        [
            {"device": "id_reader", "state": "ok", "reasons": []},
            {"device": "thermal_printer", "state": "ok", "reasons": []},
        ]
    )
    journal.touch_ui_heartbeat()
    agent = Agent(
        AgentConfig(
            site=SITE,
            station=station,
            host=broker.host,
            port=broker.port,
            state_dir=state,
            journal_path=state / "journal.sqlite3",
            health_interval_s=1.0,
            will_delay_s=1,
        )
    )
    agent.start()
    return agent, journal


def test_technician_sees_stations_and_acknowledges_a_live_help_request(
    tmp_path: Path,
    broker: MosquittoBroker,
    console_url: str,
    browser: WebDriver,
    db_url: str,
) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    db = "postgresql" if db_url.startswith("postgresql") else "sqlite"
    stations = [start_station(tmp_path, broker, name) for name in ("st-0001", "st-0002")]
    wait = WebDriverWait(browser, 20, poll_frequency=0.1)
    try:
        browser.get(console_url + "/")
        assert "/login" in browser.current_url  # no page without login
        browser.find_element(By.ID, "name").send_keys("tech")
        browser.find_element(By.ID, "password").send_keys(PASSWORD)
        browser.find_element(By.ID, "login").click()
        wait.until(lambda d: d.find_element(By.ID, "who").text.startswith("tech"))
        cookie = browser.get_cookie("console_session")
        assert cookie is not None and cookie["httpOnly"] and cookie["secure"]
        wait.until(
            lambda d: len(d.find_elements(By.CSS_SELECTOR, 'tr.station[data-status="online"]')) == 2
        )
        rows = browser.find_elements(By.CSS_SELECTOR, "tr.station")
        assert [r.get_attribute("data-station") for r in rows] == ["st-0001", "st-0002"]
        assert "在线" in rows[0].text
        assert "attention" not in str(rows[0].get_attribute("class"))  # nothing wrong with it
        assert browser.find_elements(By.CSS_SELECTOR, "tr.alert") == []
        browser.save_screenshot(str(ARTIFACTS / f"fleet-{db}.png"))
        # the same document must show the alert: mark it, and the mark must survive
        browser.execute_script("window.sameDocument = 'yes';")
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-live"))
        stations[1][1].help_request(screen="choose")
        alert = wait.until(
            lambda d: d.find_elements(By.CSS_SELECTOR, 'tr.alert[data-kind="help_request"]')
        )[0]
        assert browser.execute_script("return window.sameDocument;") == "yes"  # not reloaded
        assert alert.get_attribute("data-station") == "st-0002"
        assert "求助" in alert.text
        browser.save_screenshot(str(ARTIFACTS / f"help-request-{db}.png"))
        alert.find_element(By.CSS_SELECTOR, "button.ack").click()
        wait.until(
            lambda d: (
                d.find_elements(By.CSS_SELECTOR, "p.none")
                and not d.find_elements(By.CSS_SELECTOR, 'tr.alert[data-kind="help_request"]')
            )
        )
        browser.get(console_url + "/alerts")
        resolved = 'tr.alert.resolved[data-kind="help_request"]'
        recent = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, resolved))
        assert "已确认（tech）" in recent[0].text
        browser.save_screenshot(str(ARTIFACTS / f"acknowledged-{db}.png"))
    except Exception:
        browser.save_screenshot(str(ARTIFACTS / f"failure-{db}.png"))
        raise
    finally:
        for agent, journal in stations:
            agent.stop()
            journal.close()


def log_in(browser: WebDriver, console_url: str, name: str, wait: WebDriverWait[WebDriver]) -> None:
    browser.get(console_url + "/")
    assert "/login" in browser.current_url
    browser.find_element(By.ID, "name").send_keys(name)
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "login").click()
    wait.until(lambda d: d.find_element(By.ID, "who").text.startswith(name))


def test_operator_rolls_out_a_catalog_to_a_simulated_fleet_and_watches_it_live(
    broker: MosquittoBroker,
    console_url: str,
    browser: WebDriver,
    db_url: str,
) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    db = "postgresql" if db_url.startswith("postgresql") else "sqlite"
    sim = SimulatorProcess(
        SimConfig(
            broker.host,
            broker.port,
            kiosks=20,
            sites=2,
            health_interval_s=5.0,
            event_interval_s=0.0,
            apply_s=(0.8, 1.5),  # slow enough to watch each wave
        )
    )
    sim.start()
    wait = WebDriverWait(
        browser, 30, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,)
    )
    try:
        assert sim.wait_connected(60)
        log_in(browser, console_url, "oper", wait)
        wait.until(
            lambda d: (
                len(d.find_elements(By.CSS_SELECTOR, 'tr.station[data-status="online"]')) == 20
            )
        )
        sites = {
            e.text for e in browser.find_elements(By.CSS_SELECTOR, "tr.station td:first-child")
        }
        assert sites == {"sim-site-00", "sim-site-01"}
        browser.save_screenshot(str(ARTIFACTS / f"simulated-fleet-{db}.png"))

        browser.find_element(By.CSS_SELECTOR, 'nav a[href="/rollouts"]').click()
        deadline = time.monotonic() + 30
        while browser.find_elements(By.ID, "not-ready"):  # the driver connects in the background
            assert time.monotonic() < deadline, "the console's rollout driver did not connect"
            time.sleep(0.5)
            browser.refresh()
        assert browser.find_elements(By.CSS_SELECTOR, "p.none")  # no rollouts yet
        fields = {
            "version": "3",
            "sha256": "cd" * 32,
            "length": "2048",
            "metadata_url": "http://127.0.0.1:8001/metadata/",
        }
        for field_id, value in fields.items():
            browser.find_element(By.ID, field_id).send_keys(value)
        for field_id, value in (("canary", "2"), ("advance_at_pct", "100"), ("soak_s", "0")):
            box = browser.find_element(By.ID, field_id)
            box.clear()
            box.send_keys(value)
        browser.find_element(By.ID, "scope-all").click()
        browser.save_screenshot(str(ARTIFACTS / f"rollout-form-{db}.png"))
        browser.find_element(By.ID, "start-rollout").click()

        states = wait.until(
            lambda d: [
                e.get_attribute("data-state")
                for e in d.find_elements(By.CSS_SELECTOR, "section.rollout")
            ]
        )
        assert states == ["running"]
        browser.execute_script("window.sameDocument = 'yes';")
        wait.until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-live"))
        # live progress: the middle wave fills without a reload, then the rollout completes
        wait.until(
            lambda d: any(
                int(w.get_attribute("data-applied") or 0) > 0
                for w in d.find_elements(By.CSS_SELECTOR, 'tr.wave[data-wave="50%"]')
            )
        )
        browser.save_screenshot(str(ARTIFACTS / f"rollout-progress-{db}.png"))
        wait.until(
            lambda d: d.find_elements(By.CSS_SELECTOR, 'section.rollout[data-state="completed"]')
        )
        assert browser.execute_script("return window.sameDocument;") == "yes"  # not reloaded
        # read the page in one go: a live refresh may swap the section meanwhile
        done = browser.execute_script(
            """const s = document.querySelector('section.rollout');
            return {text: s.innerText, aborts: s.querySelectorAll('button.abort').length,
                    refreshes: document.body.dataset.refreshes,
                    waves: [...s.querySelectorAll('tr.wave')].map(
                        w => [w.dataset.wave, w.dataset.applied, w.dataset.failed])};"""
        )
        assert int(done["refreshes"] or 0) >= 2
        assert done["waves"] == [["canary", "2", "0"], ["50%", "8", "0"], ["all", "10", "0"]]
        assert "已完成" in done["text"] and "目录 catalog.toml v3" in done["text"]
        assert "completed" not in done["text"]  # the page is in Chinese: the state in words
        assert done["aborts"] == 0  # finished: no steering
        browser.save_screenshot(str(ARTIFACTS / f"rollout-completed-{db}.png"))
        counters, _ = sim.stats()
        assert counters["applied"] == 20
    except Exception:
        browser.save_screenshot(str(ARTIFACTS / f"rollout-failure-{db}.png"))
        raise
    finally:
        sim.stop()
