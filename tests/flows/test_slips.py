"""Every part of a selection has its paper, in the session's language (flows.slips)."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from flows.models import CardType, Identity, Receipt
from flows.session import Selection, selections
from flows.slips import Say, Ticket, materials_notice, queue_ticket, slips
from kiosk.i18n import Translator
from tests.flows.bundle_catalog import NOTICES, bundle_catalog

CATALOG = bundle_catalog()
TR = Translator(strict=True)
ZH, EN = Say("zh", TR), Say("en", TR)
ISSUED = dt.datetime(2026, 12, 7, 9, 15)  # a Monday morning: the windows are open
PERSON = Identity(CardType.RESIDENT, name="王小明", id_number="11010519491231002X")
CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")


def pick(code: str) -> Selection:
    return next(s for s in selections(CATALOG) if s.code == code)


def text(receipt: Receipt) -> str:
    return "\n".join(line.text for line in receipt.lines)


def paper(code: str, say: Say = ZH, **tickets: Ticket) -> list[tuple[str, Receipt]]:
    return slips(
        catalog=CATALOG,
        selection=pick(code),
        tickets=tickets,
        identity=PERSON,
        doc_id="SO1",
        issued=ISSUED,
        say=say,
    )


def test_a_bundle_of_four_notices_prints_four_notices_with_their_materials() -> None:
    printed = paper("support_bundle")
    assert [what for what, _ in printed] == ["receipt", *(f"notice:{c}" for c in NOTICES)]
    for code, (_, notice) in zip(NOTICES, printed[1:], strict=True):
        service = CATALOG.service(code)
        assert service.notice is not None
        body = text(notice)
        assert service.name.zh in body
        for item in service.notice.materials:
            assert item.name.zh in body
        assert service.notice.place.zh in body and service.notice.legal_basis.zh in body
    summary = text(printed[0][1])
    assert "待办理" in summary
    for code in NOTICES:
        assert CATALOG.service(code).name.zh in summary


def test_a_mixed_bundle_lists_its_certificates_and_its_notices_at_their_window() -> None:
    printed = paper("pension_bundle")
    assert [what for what, _ in printed] == [
        "receipt",
        "notice:elderly_allowance_checklist",
        "notice:temporary_assistance_checklist",
    ]
    summary = text(printed[0][1])
    done, todo = summary.split("待办理")
    assert "社会保险参保证明（A4 1 页）" in done and "退休资格认证状态（A4 1 页）" in done
    assert "高龄津贴申领一次性告知：已打印告知单，请备齐材料到3 号民政残联窗口办理" in todo
    assert "王**" in summary and "王小明" not in summary and PERSON.id_number not in summary


def test_a_notice_names_its_window_and_the_windows_own_hours() -> None:
    notice = materials_notice(
        catalog=CATALOG,
        service=CATALOG.service("disability_certificate_checklist"),
        issued=ISSUED,
        say=ZH,
    )
    body = text(notice)
    assert "办理窗口：3 号民政残联窗口" in body
    assert "窗口时间：周一至周五 08:30-12:00、14:00-17:00（节假日除外）" in body
    assert "3. 二级以上医院出具的残疾评定材料（原件）" in body
    assert "2. 近期二寸免冠白底彩色照片（原件、3 份）" in body


def test_an_english_notice_is_english_with_english_punctuation() -> None:
    service = CATALOG.service("elderly_allowance_checklist")
    body = text(materials_notice(catalog=CATALOG, service=service, issued=ISSUED, say=EN))
    assert not CJK.search(body), body
    assert "3. The helper's ID card (when someone applies for you) (original)" in body
    assert "Window hours: Mon-Fri 08:30-12:00, 14:00-17:00 (closed on public holidays)" in body
    assert "Documents to bring:" in body and "Legal basis: Shandong Regulations" in body


def test_chinese_notices_use_full_width_brackets_only() -> None:
    for code in NOTICES:
        body = text(
            materials_notice(catalog=CATALOG, service=CATALOG.service(code), issued=ISSUED, say=ZH)
        )
        material_lines = [line for line in body.splitlines() if re.match(r"\d+\. ", line)]
        assert material_lines and not any("(" in line or ")" in line for line in material_lines)


@pytest.mark.parametrize(
    ("say", "hours"), [(ZH, "周一至周五 08:30-12:00、13:30-17:30"), (EN, "Mon-Fri")]
)
def test_a_ticket_carries_its_windows_prefix_and_hours(say: Say, hours: str) -> None:
    ticket = Ticket(CATALOG.service("queue_ticket"), "A", 7)
    body = text(queue_ticket(catalog=CATALOG, ticket=ticket, issued=ISSUED, say=say))
    assert "A007" in body and hours in body
    assert CATALOG.station.duty_hours not in body  # the window's, not the station's


def test_a_bundle_with_a_closed_window_prints_no_ticket_and_says_when_it_opens() -> None:
    closed = Ticket(CATALOG.service("queue_ticket"), "A", None, dt.datetime(2026, 12, 8, 8, 30))
    printed = paper("disability_bundle", EN, queue_ticket=closed)
    assert [what for what, _ in printed] == ["receipt", "notice:disability_certificate_checklist"]
    summary = text(printed[0][1])
    assert "Window 1 (general services) is closed; it opens tomorrow at 08:30" in summary
    assert "no ticket was issued" in summary
    issued = Ticket(CATALOG.service("queue_ticket"), "A", 3)
    printed = paper("disability_bundle", ZH, queue_ticket=issued)
    assert [what for what, _ in printed][-1] == "ticket:queue_ticket"
    assert "已取号 A003，请到1 号综合受理窗口等候叫号" in text(printed[0][1])


def test_a_single_certificate_prints_one_receipt_and_a_single_notice_no_receipt() -> None:
    assert [w for w, _ in paper("social_insurance_certificate")] == ["receipt"]
    assert [w for w, _ in paper("disability_certificate_checklist")] == [
        "notice:disability_certificate_checklist"
    ]
