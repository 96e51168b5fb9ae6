"""Bundles print every part, tickets keep their number, hours are the windows': the shell with
real drivers against the ESC/POS simulator over TCP and the private cupsd (issues 20 and 25)."""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from flows.synthetic import DEMO_RESIDENT
from kiosk import present
from kiosk.i18n import Translator
from kiosk.shell.devices import SpeechOff
from kiosk.shell.runtime import Intent
from sandbox.cups import CupsSandbox
from tests.flows.bundle_catalog import NOTICES, bundle_catalog
from tests.kiosk.shell.station import Station, pump_until, running_station

MONDAY = dt.datetime(2026, 12, 7, 9, 15)  # the station's time: every window is open
SATURDAY = dt.datetime(2026, 12, 5, 10, 0)
CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")
TR = Translator(strict=True)


class Voice(SpeechOff):
    """Speech that notes what it was asked to say."""

    def __init__(self) -> None:
        self.said: list[str] = []

    def speak(self, text: str, *, lang: str, elder: bool = False) -> None:
        self.said.append(text)


class Rig:
    def __init__(self, station: Station, voice: Voice) -> None:
        self.runtime, self.sam, self.printer = station.runtime, station.sam, station.printer
        self.frames = station.frames
        self.voice = voice
        self.station_clock = station.station_clock

    def until(self, cond: Callable[[], bool], timeout: float = 15.0) -> None:
        pump_until(self.runtime, cond, timeout)

    def at(self, now: dt.datetime) -> None:
        self.runtime.now = lambda: now
        self.runtime.refresh_health()
        code = "queue_ticket"
        closed = now.weekday() >= 5
        self.until(lambda: (code in self.runtime.session.unavailable()) is closed)

    def start(self, *, card: bool = False, lang: str = "zh") -> None:
        self.runtime.post(Intent("start"))
        self.until(lambda: self.runtime.session.state == "identify")
        if lang != "zh":
            self.runtime.post(Intent("lang", lang))
        if card:
            self.sam.insert(DEMO_RESIDENT)
        else:
            self.runtime.post(Intent("skip_identity"))
        self.until(lambda: self.runtime.session.state == "choose")

    def preview(self, code: str) -> list[str]:
        self.runtime.post(Intent("pick", code))
        self.until(lambda: self.runtime.session.view.preview_ready)
        frame = self.frames[-1]
        assert frame.preview is not None
        return list(frame.preview.lines)

    def confirm(self, slips: int) -> list[str]:
        before = len(self.printer.receipts)
        self.runtime.post(Intent("confirm"))
        self.until(lambda: self.runtime.session.state == "rate")
        assert self.runtime.session.view.print_ok, self.runtime.session.view.print_error_key
        self.until(lambda: len(self.printer.receipts) >= before + slips)
        time.sleep(0.2)
        papers = [r.text for r in self.printer.receipts[before:]]
        assert len(papers) == slips, papers
        return papers

    def end(self) -> None:
        self.runtime.post(Intent("skip_rating"))
        self.until(lambda: self.runtime.session.state == "idle")
        self.sam.remove()


def flat(text: str) -> str:
    """Paper text without the line breaks the printer's width put in."""
    return re.sub(r"\s+", "", text)


@pytest.fixture
def rig(tmp_path: Path, cups: CupsSandbox) -> Iterator[Rig]:
    voice = Voice()
    with running_station(
        tmp_path, cups, catalog=bundle_catalog(), speech=voice, now=MONDAY
    ) as station:
        yield Rig(station, voice)


def test_a_bundle_of_four_notices_prints_four_notices_with_their_materials(rig: Rig) -> None:
    catalog = rig.runtime.catalog
    rig.start()
    shown = "\n".join(rig.preview("support_bundle"))
    for code in NOTICES:  # the preview lists every part
        assert catalog.service(code).name.zh in shown
    papers = rig.confirm(slips=5)  # the receipt and four notices
    summary, notices = papers[0], papers[1:]
    assert "待办理" in summary
    for code, paper in zip(NOTICES, notices, strict=True):
        service = catalog.service(code)
        assert service.notice is not None
        assert "一次性告知单" in paper and flat(service.name.zh) in flat(paper)
        for item in service.notice.materials:
            assert flat(item.name.zh) in flat(paper), (item.name.zh, paper)
        assert flat(service.name.zh) in flat(summary)
    [txn] = rig.runtime.journal.transactions()
    assert txn.outputs == ["thermal"]


def test_a_mixed_bundle_prints_its_a4_pages_and_its_notices(rig: Rig, cups: CupsSandbox) -> None:
    catalog = rig.runtime.catalog
    pdfs = len(cups.printed_files())
    rig.start(card=True)
    rig.preview("pension_bundle")
    frame = rig.frames[-1]
    assert frame.preview is not None and frame.preview.png and frame.preview.pages == 2
    parts = present.outputs_text(frame.view.selection, frame.preview.pages, "zh", TR)
    assert parts == "将打印：A4 证明 2 页、告知单 2 张、回执一张"  # the preview lists every part
    papers = rig.confirm(slips=3)
    deadline = time.monotonic() + 30
    while len(cups.printed_files()) <= pdfs and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(cups.printed_files()) == pdfs + 1  # one A4 job of two pages
    summary = flat(papers[0])
    done, todo = summary.split("待办理")
    for code in ("social_insurance_certificate", "retirement_status"):
        assert flat(f"{catalog.service(code).name.zh}（A4 1 页）") in done
    for code in ("elderly_allowance_checklist", "temporary_assistance_checklist"):
        name = catalog.service(code).name.zh
        assert flat(f"{name}：已打印告知单，请备齐材料到3 号民政残联窗口办理") in todo
        notice = next(p for p in papers[1:] if flat(name) in flat(p))
        service = catalog.service(code)
        assert service.notice is not None
        for item in service.notice.materials:
            assert flat(item.name.zh) in flat(notice)
    [txn] = rig.runtime.journal.transactions()
    assert txn.outputs == ["a4", "thermal"]


def test_the_queue_number_on_the_preview_is_the_number_on_the_paper(rig: Rig) -> None:
    rig.start()
    assert "A001" in rig.preview("queue_ticket")
    [paper] = rig.confirm(slips=1)
    assert "A001" in paper
    assert flat("窗口时间：周一至周五 08:30-12:00、13:30-17:30（节假日除外）") in flat(paper)
    assert "1 号综合受理窗口" in paper
    rig.end()
    rig.start()
    assert "A002" in rig.preview("queue_ticket")
    rig.runtime.post(Intent("cancel"))  # shown, not printed: the number is released
    rig.until(lambda: rig.runtime.session.state == "idle")
    rig.start()
    assert "A002" in rig.preview("queue_ticket")
    [paper] = rig.confirm(slips=1)
    assert "A002" in paper and "A003" not in paper
    day = MONDAY.date().isoformat()
    assert [(p, n, s) for p, n, _, s in rig.runtime.journal.queue_numbers(day)] == [
        ("A", 1, "issued"),
        ("A", 2, "issued"),
    ]


def test_a_window_closed_on_saturday_is_said_with_when_it_opens_and_issues_no_ticket(
    rig: Rig,
) -> None:
    rig.at(SATURDAY)
    session = rig.runtime.session
    assert session.unavailable()["queue_ticket"] == "unavailable.window_opens"
    rig.start()
    offer = next(o for o in session.view.offers if o.selection.code == "queue_ticket")
    assert not offer.available
    assert present.reason_text(offer, "zh", TR) == "窗口暂停办理，12月7日（星期一）08:30开始"
    assert present.reason_text(offer, "en", TR) == "Window closed; opens on Monday 7/12 at 08:30"
    with pytest.raises(KeyError):
        session.on_pick("queue_ticket")
    # a bundle with a ticket: the notice prints, the ticket does not, and the resident is told
    shown = "\n".join(rig.preview("disability_bundle"))
    closed = "1 号综合受理窗口暂停办理，12月7日（星期一）08:30开始办理"
    assert closed in rig.voice.said
    assert flat(closed) in flat(shown)
    papers = rig.confirm(slips=2)
    assert flat(f"{closed}，未取号") in flat(papers[0])
    assert "一次性告知单" in papers[1]
    assert rig.runtime.journal.queue_numbers() == []


def test_an_english_session_prints_its_notice_in_english(rig: Rig) -> None:
    rig.start(lang="en")
    rig.runtime.post(Intent("pick", "elderly_allowance_checklist"))
    rig.until(lambda: rig.runtime.session.state == "notice")
    [paper] = rig.confirm(slips=1)
    assert not CJK.search(paper), paper
    assert "What to bring" in paper and "Documents to bring:" in paper
    assert "(when someone applies for you) (original)" in re.sub(r"\s+", " ", paper)


def test_the_runtimes_clock_is_the_stations_not_the_machines(rig: Rig) -> None:
    """Quiet hours, duty hours and windows are read on the catalog's zone (UTC+8 here), not
    on the machine's clock, which is UTC on many stations (issue 20, point 9)."""
    now = rig.station_clock()
    assert now.utcoffset() == dt.timedelta(hours=8)
    assert abs(now - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)


def test_a_bundles_preview_has_every_page_and_its_text_masked_and_a_page_turn_is_said(
    rig: Rig,
) -> None:
    rig.start(card=True)
    rig.preview("pension_bundle")
    preview = rig.frames[-1].preview
    assert preview is not None and len(preview.page_pngs) == len(preview.records) == 2
    assert preview.png == preview.page_pngs[0]
    for record in preview.records:  # the reading view's text is masked like the picture
        shown = repr([record.fields, record.table and record.table.rows, record.notes])
        assert DEMO_RESIDENT.name not in shown and DEMO_RESIDENT.id_number not in shown
        assert dict(record.fields)["公民身份号码 ID number"] == DEMO_RESIDENT.masked_id_number
    rig.runtime.post(Intent("page", (2, 2)))
    rig.until(lambda: rig.runtime.captions.text == "第 2 页，共 2 页")
    assert rig.runtime.captions.current is not None
    assert rig.runtime.captions.current.screen == "preview"
    rig.runtime.post(Intent("cancel"))
    rig.until(lambda: rig.runtime.session.state in ("take_card", "idle"))
    rig.sam.remove()
