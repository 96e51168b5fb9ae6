"""The Statistics page in a real headless Chromium, its charts looked at (and kept as pictures).

``fleet console`` runs as its own process on a host that believes it is in UTC (``TZ=UTC``), over
a database holding two weeks of a small fleet: six stations at two sites, events shaped by the
simulator's residents (:mod:`fleet.simulate.residents`), heartbeats with gaps, and the demo
catalog signed, so services are named. The page must draw its four charts with labelled bars,
name the zone, and show days in it. Screenshots: ``test-artifacts/console/stats-zh.png`` (the
page in Chinese), ``stats-en.png`` (in English, through the header's switch) and
``stats-empty.png`` (a period with no data).
"""

from __future__ import annotations

import hashlib
import random
import re
import time
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from fleet.console.catalog_drafts import CatalogDraft
from fleet.console.store import HealthSample, Station, StationEvent, Store
from fleet.console.zone import LocalTime
from fleet.simulate.residents import resident_event
from sandbox.mosquitto import MosquittoBroker
from tests.fleet.console.test_console_browser import chromium, console_process, log_in

REPO = Path(__file__).resolve().parents[3]
ARTIFACTS = REPO / "test-artifacts" / "console"
DAYS = 14
STATIONS = [("zibo-gx", f"st-{i:04d}") for i in range(1, 5)] + [
    ("zibo-zc", f"st-{i:04d}") for i in range(11, 13)
]
CHARTS = ("chart-volume", "chart-ratings", "chart-tags", "chart-funnel", "chart-uptime")

pytestmark = pytest.mark.slow


def seed(db_url: str, now: float) -> None:
    """Two weeks of a small fleet, straight into the console's tables."""
    rng = random.Random(18)
    local = LocalTime()
    since, _ = local.days_back(DAYS, now)
    content = (REPO / "assets/catalog/demo.toml").read_bytes()
    store = Store(db_url)
    try:
        with store.session() as db:
            db.add(
                CatalogDraft(
                    target="catalog.toml",
                    catalog_version=1,
                    sha256=hashlib.sha256(content).hexdigest(),
                    length=len(content),
                    content=content,
                    uploaded_by="oper",
                    uploaded_at=since,
                    signed_by="oper",
                    signed_at=since,
                )
            )
            for n, (site, name) in enumerate(STATIONS):
                row = Station(site=site, station=name, interval_s=60.0, first_seen=since)
                db.add(row)
                db.flush()
                down = {d for d in range(DAYS) if rng.random() < 0.08 * n}  # some are flaky
                for slot in range(int((now - since) // 300)):
                    ts = since + slot * 300 + 7
                    if int((ts - since) // 86400) not in down:
                        db.add(HealthSample(station_id=row.id, ts=ts, payload={}))
                for i in range(rng.randint(60, 140)):
                    kind, body = resident_event(rng, rng.random(), f"t-{n}-{i}")
                    # daytime in the stations' zone: 08:30-17:30
                    ts = since + rng.randrange(DAYS) * 86400 + rng.uniform(8.5, 17.5) * 3600
                    if ts >= now:
                        continue
                    body |= {"ts": ts, "event_id": f"e-{n}-{i}", "backfill": False}
                    db.add(
                        StationEvent(
                            station_id=row.id, event_id=f"e-{n}-{i}", kind=kind, ts=ts, payload=body
                        )
                    )
    finally:
        store.close()


WORDS = {
    "zh": {"screens": ["读取身份证", "选择事项"], "service": "人工窗口取号"},
    "en": {"screens": ["ID card", "Choose a service"], "service": "Ticket for a staffed window"},
}
CJK = re.compile(r"[\u4e00-\u9fff]")


def look_at_charts(browser: WebDriver, lang: str) -> None:
    """Every chart drawn with its bars labelled with their values, in ``lang``'s words only."""
    bars = {chart: browser.find_elements(By.CSS_SELECTOR, f"svg#{chart} g.bar") for chart in CHARTS}
    assert len(bars["chart-volume"]) == DAYS  # a column for every day of the window
    assert len(bars["chart-ratings"]) == 5
    assert len(bars["chart-uptime"]) == len(STATIONS)
    screens = [b.get_attribute("data-label") for b in bars["chart-funnel"]]
    assert screens[:2] == WORDS[lang]["screens"]
    for chart in CHARTS:  # every bar is labelled with its value, drawn as text
        for bar in bars[chart]:
            value = bar.get_attribute("data-value")
            printed = [t.text for t in bar.find_elements(By.CSS_SELECTOR, "text.value")]
            label = bar.find_element(By.TAG_NAME, "title").get_attribute("textContent")
            assert value is not None and value in label
            if chart != "chart-volume":
                assert printed and printed[0].startswith(value.split(".")[0])
    legend = browser.find_elements(By.CSS_SELECTOR, "svg#chart-volume .legend-item text")
    assert WORDS[lang]["service"] in [t.text for t in legend]
    text = browser.find_element(By.TAG_NAME, "main").text
    assert "unknown" not in text and "queue_ticket" not in text
    assert "error." not in text  # failures in words, not the kiosk's keys
    if lang == "en":  # no Chinese left on the English page (station names are ASCII here)
        assert not CJK.findall(text), CJK.findall(text)[:10]
    else:
        assert "Choose a service" not in text and "Ratings" not in text


def full_page_screenshot(browser: WebDriver, path: Path) -> None:
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1400, min(int(height) + 40, 6000))
    path.parent.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(path))


def test_statistics_draws_its_charts_in_the_stations_zone(
    tmp_path: Path, broker: MosquittoBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", "UTC")  # the console's host: the page must not follow it
    db_url = f"sqlite:///{tmp_path / 'console.sqlite3'}"
    now = time.time()
    with console_process(tmp_path, broker, db_url, {"oper": "operator"}) as url:
        seed(db_url, now)
        with chromium() as browser:
            wait = WebDriverWait(browser, 20)
            log_in(browser, url, "oper", wait)
            browser.get(f"{url}/stats?days={DAYS}")
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "svg#chart-uptime g.bar"))
            zone = browser.find_element(By.ID, "stats-zone").text
            assert zone == "Asia/Shanghai (UTC+08:00)"
            window = browser.find_element(By.ID, "stats-window").text
            # the first day shown: of the seeding's moment, or of the page's if midnight passed
            firsts = {LocalTime().days_back(DAYS, t)[1][0] for t in (now, time.time())}
            assert window[:10] in firsts, (window, firsts)
            look_at_charts(browser, "zh")
            full_page_screenshot(browser, ARTIFACTS / "stats-zh.png")

            # the same page in English, through the header's switch
            browser.find_element(By.CSS_SELECTOR, "header .langs a[href*='to=en']").click()
            wait.until(lambda d: d.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en")
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "svg#chart-uptime g.bar"))
            assert browser.find_element(By.ID, "stats-zone").text == "Asia/Shanghai (UTC+08:00)"
            look_at_charts(browser, "en")
            full_page_screenshot(browser, ARTIFACTS / "stats-en.png")
            browser.get(f"{url}/lang?to=zh&next=/stats")

            browser.get(f"{url}/stats?days={DAYS}&site=nowhere")
            empty = browser.find_elements(By.CSS_SELECTOR, "svg.chart.no-data")
            assert len(empty) == 5 and not browser.find_elements(By.CSS_SELECTOR, "g.bar")
            full_page_screenshot(browser, ARTIFACTS / "stats-empty.png")
