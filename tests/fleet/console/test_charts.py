"""The Statistics charts as SVG (fleet.console.charts), their words, and the console's time zone
(fleet.console.zone), without a database or a browser."""

from __future__ import annotations

import datetime as dt
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator

import pytest

from fleet.console import i18n, stats_charts
from fleet.console.charts import Bar, Segment, columns, hbars
from fleet.console.stat_words import reason, say, screen
from fleet.console.stats import Stats, add
from fleet.console.zone import LocalTime, ZoneError

NO_DATA = "nothing in this period"
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def utc_host(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This process believes it runs on a UTC host (as a console server often does)."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 (our own output)  well-formed XML, or this raises


def bars_of(svg: str) -> list[tuple[str, str, str]]:
    """(data-label, data-value, the value text printed beside it) of every bar."""
    root = parse(svg)
    out = []
    for g in root.iter(f"{SVG}g"):
        if g.get("class") == "bar":
            printed = [t.text or "" for t in g.iter(f"{SVG}text") if t.get("class") == "value"]
            out.append((g.get("data-label", ""), g.get("data-value", ""), "".join(printed)))
    return out


# --- charts ------------------------------------------------------------------------------------


def test_horizontal_bars_carry_their_labels_values_and_an_accessible_summary() -> None:
    svg = hbars("r", "Ratings", [Bar.one("5 stars", 12, note="(60.0%)"), Bar.one("1 star", 8)])
    root = parse(svg)
    assert root.get("role") == "img" and root.get("aria-labelledby") == "chart-r-title chart-r-desc"
    assert root.find(f"{SVG}title").text == "Ratings"
    assert root.find(f"{SVG}desc").text == "5 stars: 12 (60.0%); 1 star: 8"
    assert bars_of(svg) == [("5 stars", "12", "12 (60.0%)"), ("1 star", "8", "8")]
    widths = [float(r.get("width")) for r in root.iter(f"{SVG}rect")]
    assert widths[0] / widths[1] == pytest.approx(12 / 8, rel=1e-3)  # lengths in proportion


def test_stacked_bars_have_a_segment_per_series_and_a_legend() -> None:
    bar = Bar("choose", (Segment("timeout", 3), Segment("cancel", 2)))
    svg = hbars("f", "Funnel", [bar], series=["timeout", "cancel"])
    root = parse(svg)
    segs = [
        (r.get("data-series"), r.get("data-value"))
        for r in root.iter(f"{SVG}rect")
        if r.get("class") == "seg"
    ]
    assert segs == [("timeout", "3"), ("cancel", "2")]
    legend = [g.get("data-series") for g in root.iter(f"{SVG}g") if g.get("class") == "legend-item"]
    assert legend == ["timeout", "cancel"]
    assert bars_of(svg) == [("choose", "5", "5")]


def test_every_text_is_escaped() -> None:
    evil = '<script>alert(1)</script> & "quotes"'
    svg = hbars(evil, evil, [Bar(evil, (Segment(evil, 1),), note=evil)], series=[evil])
    assert "<script>" not in svg
    root = parse(svg)
    assert root.find(f"{SVG}title").text == evil  # shown as text, not as markup
    assert bars_of(svg)[0][0] == evil


def test_an_empty_period_says_so_instead_of_drawing_zeros() -> None:
    for svg in (
        hbars("r", "Ratings", [], empty=NO_DATA),
        hbars("r", "Ratings", [Bar.one("5", 0), Bar.one("4", 0)], empty=NO_DATA),
        columns("v", "Volume", [Bar.one("12-01", 0), Bar.one("12-02", 0)], empty=NO_DATA),
    ):
        root = parse(svg)
        assert "no-data" in root.get("class", "") and bars_of(svg) == []
        assert NO_DATA in "".join(root.itertext())
    # an uptime of 0 % is a finding, drawn
    uptime = [Bar.one("a/b", 0, text="0.0%")]
    assert bars_of(hbars("u", "Uptime", uptime, zeros_are_data=True, empty=NO_DATA)) == [
        ("a/b", "0", "0.0%")
    ]


def test_columns_label_each_day_with_its_total_and_stack_services() -> None:
    days = [
        Bar("12-04", (Segment("Queue ticket", 3), Segment("Residence", 1))),
        Bar("12-05", (Segment("", 0),)),
        Bar("12-06", (Segment("Queue ticket", 2),)),
    ]
    svg = columns("v", "Volume", days, series=["Queue ticket", "Residence"])
    assert bars_of(svg) == [("12-04", "4", "4"), ("12-05", "0", "0"), ("12-06", "2", "2")]
    root = parse(svg)
    heights = {
        (r.get("data-series"), r.get("data-value")): float(r.get("height"))
        for r in root.iter(f"{SVG}rect")
        if r.get("class") == "seg"
    }
    assert heights[("Queue ticket", "3")] == pytest.approx(
        3 * heights[("Residence", "1")], rel=1e-3
    )


# --- the page's four charts from statistics ------------------------------------------------------


def stats_with(events: list[tuple[str, dict[str, object]]]) -> Stats:
    stats = Stats(days=2, since=0.0, day_list=["2026-12-04", "2026-12-05"])
    for kind, payload in events:
        add(stats, "zibo-gx/st-1", kind, payload)
    return stats


def test_the_funnel_names_screens_and_reasons_in_words_in_session_order() -> None:
    ts = dt.datetime(2026, 12, 5, 10, tzinfo=dt.UTC).timestamp()
    txn = {"ts": ts, "service": "queue_ticket", "outcome": "completed"}
    gave_up = {"ts": ts, "service": "", "outcome": "abandoned"}
    stats = stats_with(
        [("transaction", txn)] * 6
        + [("transaction", {**gave_up, "abandoned_state": "choose", "reason": "timeout"})] * 2
        + [("transaction", {**gave_up, "abandoned_state": "identify", "reason": "card_removed"})]
        + [("transaction", {**gave_up, "abandoned_state": None, "reason": None})]
    )
    svg = stats_charts.funnel(stats)
    assert bars_of(svg) == [
        (say("screen.identify"), "1", "1 (10.0% / 10)"),
        (say("screen.choose"), "2", "2 (22.2% / 9)"),  # one was lost before choose
        (say("screen.notice"), "0", "0 (0.0% / 7)"),
        (say("screen.preview"), "0", "0 (0.0% / 7)"),
        (say("screen.none"), "1", "1"),  # honest: no screen recorded, not "unknown"
    ]
    assert "unknown" not in svg.lower()
    legend = [
        g.get("data-series") for g in parse(svg).iter(f"{SVG}g") if g.get("class") == "legend-item"
    ]
    assert legend == [reason("timeout"), reason("card_removed"), reason(None)]


def test_words_for_screens_and_reasons() -> None:
    assert screen("choose") == "选择事项"
    assert screen(None) == screen("unknown") == "未记录界面"
    assert screen("warp") == "未知界面 warp"
    assert reason("card_removed") == "取走身份证"
    i18n.use("en")
    try:
        assert screen(None) == "screen not recorded" and screen("warp") == "unknown screen warp"
        assert reason("card_removed") == "card removed"
    finally:
        i18n.use("zh")


def test_volume_is_stacked_by_service_name_with_every_day_of_the_window() -> None:
    ts = dt.datetime(2026, 12, 5, 10, tzinfo=dt.UTC).timestamp()
    stats = stats_with(
        [("transaction", {"ts": ts, "service": "queue_ticket", "outcome": "completed"})] * 3
    )
    stats.service_names = {"queue_ticket": ("人工窗口取号", "Ticket for a staffed window")}
    svg = stats_charts.volume(stats)
    assert bars_of(svg) == [("12-04", "0", "0"), ("12-05", "3", "3")]
    root = parse(svg)
    legend = [g.get("data-series") for g in root.iter(f"{SVG}g") if g.get("class") == "legend-item"]
    assert legend == ["人工窗口取号"]
    assert "queue_ticket" not in svg


def test_ratings_show_count_and_share_and_tags_in_words() -> None:
    stats = stats_with(
        [("rating", {"rating": 5, "tags": []})] * 3 + [("rating", {"rating": 1, "tags": ["slow"]})]
    )
    assert bars_of(stats_charts.ratings(stats)) == [
        (say("stars", n=5), "3", "3 (75.0%)"),
        (say("stars", n=4), "0", "0 (0.0%)"),
        (say("stars", n=3), "0", "0 (0.0%)"),
        (say("stars", n=2), "0", "0 (0.0%)"),
        (say("stars", n=1), "1", "1 (25.0%)"),
    ]
    assert stats_charts.named_tags(Counter({"slow": 1})) == [("等待太久", 1)]
    i18n.use("en")
    try:
        assert stats_charts.named_tags(Counter({"slow": 1})) == [("Too slow", 1)]
        assert say("stars", n=4) == "4 stars" and screen("choose") == "Choose a service"
    finally:
        i18n.use("zh")


def test_an_empty_statistics_page_draws_no_zeros() -> None:
    charts = stats_charts.charts(stats_with([]))
    for svg in charts.values():
        assert bars_of(svg) == [] and "本期无数据" in svg


# --- the console's time zone ---------------------------------------------------------------------


def test_times_are_in_the_configured_zone_with_its_offset_on_a_utc_host(utc_host: None) -> None:
    ts = dt.datetime(2026, 12, 5, 13, 3, 7, tzinfo=dt.UTC).timestamp()
    assert time.strftime("%H", time.localtime(ts)) == "13"  # the host really is on UTC
    shanghai = LocalTime()
    assert shanghai.when(ts) == "2026-12-05 21:03:07 +08:00"
    assert shanghai.minute(ts) == "2026-12-05 21:03 +08:00"
    assert shanghai.label == "Asia/Shanghai (UTC+08:00)"
    assert LocalTime("UTC").when(ts) == "2026-12-05 13:03:07 +00:00"
    assert LocalTime("America/New_York").when(ts) == "2026-12-05 08:03:07 -05:00"
    assert shanghai.when(None) == shanghai.when(0) == "—"
    with pytest.raises(ZoneError, match="unknown time zone 'Mars/Olympus'"):
        LocalTime("Mars/Olympus")


def test_days_are_days_in_the_zone(utc_host: None) -> None:
    late = dt.datetime(2026, 12, 5, 17, 30, tzinfo=dt.UTC).timestamp()  # 01:30 on the 6th
    shanghai = LocalTime()
    assert shanghai.day(late) == "2026-12-06" and LocalTime("UTC").day(late) == "2026-12-05"
    since, days = shanghai.days_back(3, late)
    assert days == ["2026-12-04", "2026-12-05", "2026-12-06"]
    assert since == dt.datetime(2026, 12, 3, 16, tzinfo=dt.UTC).timestamp()  # 00:00 +08:00
    stats = Stats(days=3, since=since, day_list=days)
    add(stats, "s/a", "transaction", {"ts": late, "service": "x", "outcome": "completed"})
    assert list(stats.volume) == [("2026-12-06", "s/a", "x")]
