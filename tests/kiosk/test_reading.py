"""The preview's reading view, headless: which half of a bilingual label, one page per record."""

from __future__ import annotations

from flows.models import Record, RecordTable
from kiosk.reading import label_in, reading_pages, table_row_field


def test_a_bilingual_label_shows_the_sessions_half() -> None:
    assert label_in("参保状态 Status", "zh") == "参保状态"
    assert label_in("参保状态 Status", "en") == "Status"
    assert label_in("2026 年度认证 This year's check", "zh") == "2026 年度认证"
    assert label_in("2026 年度认证 This year's check", "en") == "This year's check"
    assert label_in("近六个月 Last six months", "en") == "Last six months"


def test_a_label_in_one_language_is_shown_whole() -> None:
    for label in ("English", "Queue name", "中文", "缴费单位"):
        assert label_in(label, "zh") == label_in(label, "en") == label


def test_one_reading_page_per_record_in_the_sessions_language() -> None:
    records = (
        Record(
            "a",
            "社会保险参保证明",
            "Social Insurance Participation Certificate",
            (("姓名 Name", "张**"), ("参保状态 Status", "正常参保 (Contributing)")),
            RecordTable(
                "缴费 Payments", ("年月 Month", "个人缴费 Personal"), (("2026-05", "1.00"),)
            ),
        ),
        Record(
            "b",
            "养老金领取资格认证状态",
            "Pension Entitlement Check",
            (("领取状态 Status", "正常领取"),),
        ),
    )
    zh, en = reading_pages(records, "zh"), reading_pages(records, "en")
    assert [p.title for p in zh] == ["社会保险参保证明", "养老金领取资格认证状态"]
    assert en[0].title == "Social Insurance Participation Certificate"
    assert zh[0].rows == (("姓名", "张**"), ("参保状态", "正常参保 (Contributing)"))
    assert en[0].rows[1] == ("Status", "正常参保 (Contributing)")  # values as they print
    assert (en[0].table_title, en[0].headers, en[0].table) == (
        "Payments",
        ("Month", "Personal"),
        (("2026-05", "1.00"),),
    )
    assert zh[1].headers == () and zh[1].table == ()


def test_a_table_row_is_read_as_one_field_each_cell_named_by_its_header() -> None:
    headers = ("年月", "缴费基数", "个人缴费")
    assert table_row_field(headers, ("2026-06", "4200.00", "336.00"), "zh") == (
        "年月 2026-06",
        "缴费基数 4200.00，个人缴费 336.00",
    )
    assert table_row_field(("Month", "Base"), ("2026-06", "4200.00"), "en") == (
        "Month 2026-06",
        "Base 4200.00",
    )
    # a row longer than its headers keeps its cells; a row without any is no field
    assert table_row_field(("Month",), ("2026-06", "x"), "en") == ("Month 2026-06", "x")
    assert table_row_field((), (), "zh") == ("", "")
