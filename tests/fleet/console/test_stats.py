"""Statistics from the console's database: days in the console's zone on a UTC host, uptime per
station from health samples, the page with its charts, service names and the zone named."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fleet.console import Console, uptime
from fleet.console.catalog_drafts import CatalogDraft
from fleet.console.stats import compute
from fleet.console.store import HealthSample, Station
from fleet.console.zone import LocalTime
from fleet.protocol.topics import ROOT
from tests.fleet import messages
from tests.fleet.console.test_console import login, make_console

SITE = "zibo-gx"
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def utc_host(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def console(db_url: str, utc_host: None) -> Iterator[Console]:
    made = make_console(None, db_url)
    try:
        yield made
    finally:
        made.stop()


def send(console: Console, station: str, kind: str, event_id: str, **fields: Any) -> None:
    topic = f"{ROOT}/{SITE}/{station}/evt/{kind}"
    console.ingest.handle(topic, messages.event(kind, station, event_id, **fields))


def sign_demo_catalog(console: Console) -> None:
    content = (REPO / "assets/catalog/demo.toml").read_bytes()
    with console.store.session() as db:
        db.add(
            CatalogDraft(
                target="catalog.toml",
                catalog_version=1,
                sha256=hashlib.sha256(content).hexdigest(),
                length=len(content),
                content=content,
                uploaded_by="oper",
                uploaded_at=time.time(),
                signed_by="oper",
                signed_at=time.time(),
            )
        )


def test_days_are_counted_in_the_stations_zone_on_a_utc_host(console: Console) -> None:
    now = time.time()
    shanghai = LocalTime()
    midnight = shanghai.day_start(shanghai.at(now).date())  # today 00:00 in Shanghai
    send(console, "st-1", "transaction", "e-1", ts=midnight + 60, txn_id="a")  # today 00:01
    send(console, "st-1", "transaction", "e-2", ts=midnight - 60, txn_id="b")  # yesterday 23:59
    oper, _ = login(console, "oper")
    today = oper.get("/api/stats?days=1").json()
    assert today["timezone"] == "Asia/Shanghai" and today["transactions"] == 1
    assert today["day_list"] == [shanghai.day(now)]
    both = oper.get("/api/stats?days=2").json()
    assert [v["day"] for v in both["volume"]] == [shanghai.day(midnight - 60), shanghai.day(now)]
    page = oper.get("/stats?days=2").text
    assert "Asia/Shanghai (UTC+08:00)" in page


def test_the_page_draws_four_charts_with_service_names_and_words(console: Console) -> None:
    sign_demo_catalog(console)
    send(console, "st-1", "transaction", "e-1", service="queue_ticket")
    send(
        console,
        "st-1",
        "transaction",
        "e-2",
        service="",
        outcome="abandoned",
        abandoned_state="choose",
        reason="timeout",
        elder=True,
    )
    send(console, "st-1", "rating", "e-3", rating=4, tags=["voice"])
    send(console, "st-1", "help", "e-4", screen="preview")
    console.ingest.handle(f"{ROOT}/{SITE}/st-1/birth", messages.birth(SITE, "st-1"))
    oper, _ = login(console, "oper")
    page = oper.get("/stats").text
    for chart in ("chart-volume", "chart-ratings", "chart-funnel", "chart-uptime"):
        assert f'id="{chart}"' in page
    assert "人工窗口取号" in page  # the catalog's name, not the code
    assert "听不清语音" in page and "选择事项" in page
    assert "超时无操作" in page and "预览" in page
    assert "unknown" not in page and "Choose a service" not in page
    english = oper.get("/stats", headers={"accept-language": "en"}).text
    assert "Ticket for a staffed window" in english and "Choose a service" in english
    assert "timed out" in english and "人工窗口取号" not in english


def test_an_empty_period_says_no_data(console: Console) -> None:
    oper, _ = login(console, "oper")
    page = oper.get("/stats").text
    assert page.count('class="chart no-data"') == 5  # four charts and the tags
    assert "本期无数据" in page
    assert 'class="bar"' not in page


def test_uptime_is_the_share_of_slots_with_a_heartbeat_since_first_contact(db_url: str) -> None:
    console = make_console(None, db_url)
    try:
        now = 1_800_000_000.0
        day = 86400.0
        with console.store.session() as db:
            always = Station(site=SITE, station="always", interval_s=60.0, first_seen=now - 9 * day)
            half = Station(site=SITE, station="half", interval_s=60.0, first_seen=now - 9 * day)
            late = Station(site=SITE, station="late", interval_s=60.0, first_seen=now - day)
            quiet = Station(site="other", station="quiet", interval_s=60.0, first_seen=now - day)
            db.add_all([always, half, late, quiet])
            db.flush()
            samples = []
            for i in range(int(2 * day / 60)):  # every minute of the last two days
                ts = now - 2 * day + i * 60 + 1
                samples.append(HealthSample(station_id=always.id, ts=ts, payload={}))
                if ts >= now - day:
                    samples += [
                        HealthSample(station_id=s.id, ts=ts, payload={}) for s in (half, late)
                    ]
            db.add_all(samples)
        with console.store.session() as db:
            found = {u.station: u for u in uptime.compute(db, now - 2 * day, now)}
            only_site = uptime.compute(db, now - 2 * day, now, site="other")
        assert found[f"{SITE}/always"].percent == pytest.approx(100.0, abs=0.5)
        assert found[f"{SITE}/half"].percent == pytest.approx(50.0, abs=0.5)
        assert found[f"{SITE}/late"].percent == pytest.approx(100.0, abs=0.5)  # since first contact
        assert found["other/quiet"].percent == 0.0 and found["other/quiet"].expected_slots == 288
        assert [u.station for u in only_site] == ["other/quiet"]
        with console.store.session() as db:
            stats = compute(db, days=2, local=LocalTime(), now=now)
        assert [u.station for u in stats.uptime][:2] == ["other/quiet", f"{SITE}/half"]
    finally:
        console.stop()


def test_a_heartbeat_slower_than_a_slot_counts_whole_intervals() -> None:
    assert uptime.slot_of(60) == uptime.SLOT_S and uptime.slot_of(900) == 900.0
    assert uptime.expected(since=0.0, now=3600.0, first_seen=0.0, slot=900.0) == 4
    assert uptime.expected(since=0.0, now=3600.0, first_seen=1800.0, slot=300.0) == 6
    assert uptime.expected(since=0.0, now=3600.0, first_seen=7200.0, slot=300.0) == 0
