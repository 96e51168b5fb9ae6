"""Screen texts: what the catalog, a device or the log says reaches markup labels escaped."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from flows.catalog import parse_catalog
from flows.session import selections
from kiosk import present
from kiosk.i18n import Translator
from kiosk.shell.maintenance import MaintenanceReport

DEMO = Path(__file__).resolve().parents[2] / "assets" / "catalog" / "demo.toml"
DATA = "[size=400][color=ff0000]大[/color][/size] [b]x[/b] [ref=x]y[/ref] &bl;"
SHORT = "[size=400]大[/size][b]y[/b]&bl;"


def tags(markup: str) -> list[str]:
    """The markup tags Kivy would read in ``markup`` (escaped brackets are not tags)."""
    return re.findall(r"\[[^\[\]]*\]", markup)


def unescaped(markup: str) -> str:
    """What Kivy draws of escaped text (kivy.core.text.markup's own three replacements)."""
    return markup.replace("&bl;", "[").replace("&br;", "]").replace("&amp;", "&")


def test_literal_escapes_only_what_kivy_reads_as_markup() -> None:
    assert present.literal(DATA) == (
        "&bl;size=400&br;&bl;color=ff0000&br;大&bl;/color&br;&bl;/size&br; "
        "&bl;b&br;x&bl;/b&br; &bl;ref=x&br;y&bl;/ref&br; &amp;bl;"
    )
    assert unescaped(present.literal(DATA)) == DATA
    assert present.literal("社会保险参保证明 (A4)") == "社会保险参保证明 (A4)"


def test_the_notice_shows_catalog_text_as_written_under_its_own_headings() -> None:
    text = DEMO.read_text(encoding="utf-8")
    # a material's name is at most 32 characters (flows.catalog); a place's line may be longer
    text = text.replace("近期二寸免冠白底彩色照片", SHORT)
    text = text.replace("街道便民服务中心 3 号窗口", DATA)
    catalog = parse_catalog(tomllib.loads(text))
    [selection] = [s for s in selections(catalog) if s.code == "disability_certificate_checklist"]
    notice = present.notice_text(selection, "zh", Translator())
    assert set(tags(notice)) == {"[b]", "[/b]"}  # the headings, nothing from the catalog
    assert unescaped(notice).count(DATA) == 1 and unescaped(notice).count(SHORT) == 1


def test_the_maintenance_screen_shows_devices_versions_network_and_log_as_written() -> None:
    report = MaintenanceReport(
        devices=(("thermal_printer", "fault", DATA),),
        catalog_version=7,
        app_version=DATA,
        network=(DATA,),
        broker=DATA,
        log_tail=(DATA, "plain line"),
        last_action=DATA,
    )
    texts = present.maintenance_texts(report, "en", Translator())
    for key, markup in texts.items():
        assert set(tags(markup)) <= {"[b]", "[/b]"}, key
        assert DATA in unescaped(markup), key


def test_the_home_screen_names_three_closed_services_then_says_how_many_more() -> None:
    from flows.catalog import load_catalog
    from flows.session import Session
    from kiosk.shell.catalog_watch import DEMO_CATALOG

    catalog = load_catalog(DEMO_CATALOG)
    session = Session(catalog, clock=lambda: 0.0)
    singles = [s.code for s in catalog.enabled_services()]
    closed = {code: "unavailable.a4_printer" for code in singles[:-1]}  # one still offered
    session.set_unavailable(closed)
    tr = Translator(strict=True)
    text = present.unavailable_text(session.view, tr)
    names = [s.name.zh for s in catalog.enabled_services() if s.code in closed]
    listed = [n for n in names if n in text]
    assert len(names) > 4 and listed == names[:3]
    assert text.endswith(tr("home.unavailable_more", "zh", n=len(names) - 3))
    session.set_unavailable(dict(list(closed.items())[:2]))
    few = present.unavailable_text(session.view, tr)
    assert "另有" not in few and all(n in few for n in names[:2])


def test_a_notice_is_cut_into_pages_that_fit_headings_with_their_text() -> None:
    from kiosk.present import paginate

    lines = ["[b]材料[/b]", "1. 申请表", "2. 身份证", ""]
    lines += ["[b]地点[/b]", "三号窗口", "", "[b]收费[/b]", "免费"]
    pages = paginate(lines, lambda text: len(text.split("\n")) <= 4)
    # the heading 收费 would end page 2: it goes on to the page with its text
    assert pages == [
        "[b]材料[/b]\n1. 申请表\n2. 身份证",
        "[b]地点[/b]\n三号窗口",
        "[b]收费[/b]\n免费",
    ]
    kept = [line for page in pages for line in page.split("\n") if line.strip()]
    assert kept == [line for line in lines if line.strip()]  # nothing lost, nothing doubled
    assert all(not page.split("\n")[-1].startswith("[b]") for page in pages)
    assert paginate([], lambda _t: True) == [""]
    assert paginate(["a very long line"], lambda _t: False) == ["a very long line"]


def test_a_masked_value_is_said_as_shown_digits_one_by_one_stars_never_read() -> None:
    assert present.spoken_value("3201**********1234", "zh") == "三 二 零 一，一 二 三 四"
    assert present.spoken_value("3201**********1234", "en") == "3 2 0 1, 1 2 3 4"
    assert present.spoken_value("张**", "zh") == "张"
    assert present.spoken_value("1995-05", "zh") == "1995-05"  # nothing masked: as written
    assert present.spoken_params({"value": "张**", "label": "姓名"}, "zh") == {
        "value": "张",
        "label": "姓名",
    }
