"""掌上办 guides: a catalog service of kind ``mobile_guide`` prints the matter's name, the app, the
steps in short lines and a QR code to the page (flows.catalog, flows.slips, flows.view)."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest

from flows.catalog import CatalogError, ServiceKind, parse_catalog
from flows.hours import is_ticket
from flows.slips import Say, mobile_guide, slips
from flows.view import selections
from kiosk.i18n import Translator
from tests.flows.bundle_catalog import demo_table

TR = Translator(strict=True)
ZH, EN = Say("zh", TR), Say("en", TR)
ISSUED = dt.datetime(2026, 12, 7, 20, 15)
GUIDE = "personal_tax_mobile_guide"


def table() -> dict[str, Any]:
    return copy.deepcopy(demo_table())


def guide_entry(data: dict[str, Any]) -> dict[str, Any]:
    return next(s for s in data["services"] if s["code"] == GUIDE)


def problems(data: dict[str, Any]) -> str:
    with pytest.raises(CatalogError) as err:
        parse_catalog(data)
    return " ".join(rule for _, rule in err.value.problems)


def test_the_demo_guide_prints_its_app_steps_and_a_qr_code_to_its_page() -> None:
    catalog = parse_catalog(table())
    service = catalog.service(GUIDE)
    assert service.kind is ServiceKind.MOBILE_GUIDE and not is_ticket(service)
    assert service.mobile is not None
    zh = mobile_guide(catalog=catalog, service=service, issued=ISSUED, say=ZH)
    lines = [line.text for line in zh.lines]
    assert lines[:2] == ["掌上办指南", "个税记录掌上办指南"]
    assert "用手机办：个人所得税 App" in lines
    assert [line for line in lines if line[:2] in ("1.", "2.", "3.", "4.")] == [
        "1. 打开个人所得税 App，登录",
        "2. 点“查询”，选“收入纳税明细”",
        "3. 选年度，点“开具纳税记录”",
        "4. 下载或转发电子纳税记录",
    ]
    assert zh.qr == service.mobile.url == "https://etax.chinatax.gov.cn/"
    en = mobile_guide(catalog=catalog, service=service, issued=ISSUED, say=EN)
    assert en.lines[0].text == "Do it on your phone"
    assert "On your phone: the Individual Income Tax app" in [line.text for line in en.lines]
    assert en.qr == zh.qr


def test_picking_the_guide_prints_the_guide_and_nothing_else() -> None:
    catalog = parse_catalog(table())
    [selection] = [s for s in selections(catalog) if s.code == GUIDE]
    assert not selection.needs_identity
    printed = slips(
        catalog=catalog,
        selection=selection,
        tickets={},
        identity=None,
        doc_id="SL1",
        issued=ISSUED,
        say=ZH,
    )
    assert [what for what, _ in printed] == [f"guide:{GUIDE}"]


def test_the_guide_is_offered_right_after_the_matter_it_guides() -> None:
    codes = [s.code for s in selections(parse_catalog(table()))]
    assert codes.count(GUIDE) == 1
    assert codes[codes.index("personal_tax_record") + 1] == GUIDE


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("http://etax.chinatax.gov.cn/", "https://"),
        ("javascript:alert(1)", "https://"),
        ("https://etax.chinatax.gov.cn/a b", "without spaces"),
        ("https://e.cn/" + "x" * 300, "at most 300"),
    ],
)
def test_a_guide_url_that_is_not_plain_https_is_refused(url: str, rule: str) -> None:
    data = table()
    guide_entry(data)["mobile"]["url"] = url
    assert rule in problems(data)


def test_a_guide_is_checked_against_the_matter_it_guides() -> None:
    data = table()
    guide_entry(data)["guides"] = "no_such_matter"
    assert "not a matter of this catalog" in problems(data)
    data = table()
    guide_entry(data)["category"] = "civil"
    assert "category ('business')" in problems(data)
    data = table()
    guide_entry(data)["identity"] = "id_card"
    assert 'identity = "none"' in problems(data)
    data = table()
    del guide_entry(data)["mobile"]
    assert "[mobile] section" in problems(data)
    data = table()
    data["services"][0]["mobile"] = guide_entry(data)["mobile"]
    assert 'kind = "mobile_guide"' in problems(data)
    data = table()
    guide_entry(data)["mobile"]["steps"][0]["zh"] = "一" * 25
    assert "a step of a guide" in problems(data)


def test_the_slip_takes_no_url_but_https_even_from_a_catalog_built_in_code() -> None:
    catalog = parse_catalog(table())
    service = catalog.service(GUIDE)
    assert service.mobile is not None
    forged = service.model_copy(
        update={"mobile": service.mobile.model_copy(update={"url": "http://evil.example/"})}
    )
    with pytest.raises(ValueError, match="https://"):
        mobile_guide(catalog=catalog, service=forged, issued=ISSUED, say=ZH)
