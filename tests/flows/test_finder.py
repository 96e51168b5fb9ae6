"""Finding a matter among 120 (issue 25): categories, the most used, bundles, pinyin initials,
and the no-ID path; every matter within 4 taps of the choose screen in elder mode."""

from __future__ import annotations

from pathlib import Path

from flows.catalog import load_catalog
from flows.effects import Offer
from flows.finder import BUNDLES, SEARCH, TOP, Finder
from flows.kioskfit import ELDER_PER_PAGE
from flows.pinyin import initials
from flows.view import selections

VILLAGE = Path(__file__).resolve().parents[2] / "assets" / "catalog" / "village120.toml"


def finder(**kw: object) -> Finder:
    catalog = load_catalog(VILLAGE)
    offers = [Offer(s, True) for s in selections(catalog)]
    return Finder(catalog, offers, per_page=ELDER_PER_PAGE, **kw)  # type: ignore[arg-type]


def test_initials_of_realistic_names() -> None:
    assert initials("住房公积金个人缴存明细打印") == "ZFGJJGRJCMXDY"
    assert initials("老年人、残疾人、孕妇绿色通道优先取号") == "LNRCJRYFLSTDYXQH"
    assert initials("出生一件事") == "CSYJS"


def test_every_matter_within_four_taps_in_elder_mode() -> None:
    f = finder()
    taps = f.taps()
    assert len(taps) == 125  # 120 services, 5 bundles
    assert max(taps.values()) <= 4
    assert [t.code for t in f.home[:2]] == [BUNDLES, SEARCH] and len(f.home) == 14
    assert all(item.tile for item in f.home)


def test_the_ten_most_used_come_first() -> None:
    usage = {f"fund_{i:02d}": 100 - i for i in range(1, 13)}
    f = finder(usage=usage)
    assert f.home[0].code == TOP
    assert [i.code for i in f.top] == [f"fund_{i:02d}" for i in range(1, 11)]
    taps = f.taps()
    assert all(taps[f"fund_{i:02d}"] == 2 for i in range(1, 5))  # first page of the top tile
    assert max(taps.values()) <= 4


def test_gjj_finds_the_housing_fund_and_greys_letters_that_find_nothing() -> None:
    f = finder()
    found = [i.name.zh for i in f.matches("GJJ")]
    assert "住房公积金个人缴存明细打印" in found and all("公积金" in n for n in found)
    assert f.keys("GJJ") <= {"G", "J", "Z", "D", "T", "Y", "H", "X", "C", "B"}
    assert "Q" not in f.keys("GJ")  # nothing is GJQ…
    assert not f.show_results("GJJ")  # 12 matters: more letters first
    assert f.show_results("GJJD")  # 住房公积金贷款…: a page of results


def test_the_no_id_path_lists_only_what_needs_no_card_by_category() -> None:
    f = finder(anonymous=True)
    listed = [i for items in f.by_category.values() for i in items]
    assert listed and all(not i.offer.selection.needs_identity for i in listed if i.offer)
    assert all(f.items(t.code) for t in f.home if t.code != SEARCH)  # no empty tile
    assert max(f.taps().values()) <= 4
