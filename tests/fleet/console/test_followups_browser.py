"""Bad reviews followed up, end to end in headless Chromium: a resident rates one star with two
tags at a real fleet agent's station, ``fleet console`` (its own process) lists it, and a
technician moves it to contacted and then resolved through the page's forms. Screenshots go to
``test-artifacts/console/followups*.png``. Runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait

from sandbox.mosquitto import MosquittoBroker
from tests.fleet.console.test_console_browser import (
    ARTIFACTS,
    browser,  # noqa: F401 - a fixture
    console_url,  # noqa: F401 - a fixture
    log_in,
    start_station,
)

pytestmark = pytest.mark.slow


def _step(driver: WebDriver, row_id: str, state: str, note: str) -> None:
    row = driver.find_element(By.ID, row_id)
    Select(row.find_element(By.NAME, "state")).select_by_value(state)
    row.find_element(By.NAME, "note").send_keys(note)
    row.find_element(By.CSS_SELECTOR, "form.followup-step button").click()


def test_technician_follows_up_a_one_star_rating_to_resolved(
    tmp_path: Path,
    broker: MosquittoBroker,
    console_url: str,  # noqa: F811 - the fixture
    browser: WebDriver,  # noqa: F811 - the fixture
    db_url: str,
) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    db = "postgresql" if db_url.startswith("postgresql") else "sqlite"
    agent, journal = start_station(tmp_path, broker, "st-0001")
    # the page redraws itself after each step: an element read mid-swap is looked up again
    wait = WebDriverWait(
        browser, 20, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,)
    )
    try:
        for stars, tags in ((1, ("slow", "print")), (4, ()), (2, ("voice",))):
            txn = journal.begin_transaction("queue_ticket", lang="zh", elder=True)
            journal.finish_transaction(txn, outcome="completed", outputs=["thermal"])
            journal.rate(txn, stars, tags)
        log_in(browser, console_url, "tech", wait)
        browser.find_element(By.LINK_TEXT, "差评回访").click()

        def listed(d: WebDriver) -> list[str]:
            d.refresh()
            return [
                r.get_attribute("id") or "" for r in d.find_elements(By.CSS_SELECTOR, "tr.followup")
            ]

        rows = wait.until(lambda d: len(found := listed(d)) == 2 and found)
        first = browser.find_element(By.ID, rows[0])
        assert "等待太久" in first.text and "打印问题" in first.text
        assert "★☆☆☆☆" in first.text and "待回访" in first.text
        browser.save_screenshot(str(ARTIFACTS / f"followups-{db}.png"))
        if db == "sqlite":
            browser.save_screenshot(str(ARTIFACTS / "followups.png"))
        _step(browser, rows[0], "contacted", "站点工作人员已电话回访，居民反映打印慢")
        wait.until(lambda d: "已回访" in d.find_element(By.ID, rows[0]).text)
        _step(browser, rows[0], "resolved", "已更换打印机纸卷并调整出纸速度")
        wait.until(lambda d: not d.find_elements(By.ID, rows[0]))  # settled: off the list
        Select(browser.find_element(By.NAME, "state")).select_by_value("all")
        browser.find_element(By.CSS_SELECTOR, "form.filters button").click()
        done = wait.until(lambda d: d.find_element(By.ID, rows[0]))
        assert "已办结" in done.text and "已更换打印机纸卷" in done.text
        browser.save_screenshot(str(ARTIFACTS / f"followups-resolved-{db}.png"))
        browser.get(console_url + "/stations/zibo-gx/st-0001")
        section = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "section.followups"))
        assert "听不清语音" in section.text and "已办结" not in section.text
        section.find_element(By.PARTIAL_LINK_TEXT, "处理").click()
        wait.until(lambda d: "station=st-0001" in d.current_url)
        assert len(browser.find_elements(By.CSS_SELECTOR, "tr.followup form.followup-step")) == 1
        browser.back()
        wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "section.followups"))
        browser.save_screenshot(str(ARTIFACTS / f"followups-station-{db}.png"))
    except Exception:
        browser.save_screenshot(str(ARTIFACTS / f"followups-failure-{db}.png"))
        raise
    finally:
        agent.stop()
        journal.close()
