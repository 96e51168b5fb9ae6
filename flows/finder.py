"""Finding a matter among a station's 100-odd: the pages of the choose step, as plain data.

The choose screen opens on tiles, six a page in both modes: the most-used matters first
(counted from the station's own journal), the bundles (一件事), the pinyin-initials search, then
the catalog's categories. A station whose matters fit one page shows them at once, with no tiles
(:attr:`Finder.flat`). A resident without a card sees only what needs none, by category.
:func:`taps` counts the taps from the choose screen to every matter along the best way
(categories, most used, bundles, search), so the validator and tests can hold the station to
"any matter within 4 taps in elder mode".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from flows.catalog import Catalog, Text
from flows.effects import Offer
from flows.pinyin import initials

HOME = "home"  # the tiles
TOP = "top"  # the most-used matters' tile
BUNDLES = "bundles"  # the bundles' (一件事) tile
SEARCH = "search"  # the pinyin keypad's tile; its lists are "search:QUERY"
TOP_COUNT = 10
TILES_PER_PAGE = 6  # three by two (two by three upright), in both modes


@dataclass(frozen=True, slots=True)
class Item:
    """One choice on a page: a matter (service or bundle) or a tile that opens a list."""

    code: str
    name: Text
    icon: str
    tile: bool = False  # a category (or the most-used) tile: opens a list
    offer: Offer | None = None  # a matter's offer


TILE_NAMES: dict[str, Text] = {
    TOP: Text(zh="常用事项", en="Most used"),
    BUNDLES: Text(zh="一件事", en="Life events"),
    SEARCH: Text(zh="拼音首字母查找", en="Find by pinyin initials"),
}
"""The names of the tiles that are not categories; the kiosk gives its translations instead."""


def _initials(offer: Offer, given: Mapping[str, str]) -> str:
    return given.get(offer.selection.code) or initials(offer.selection.name.zh)


class Finder:
    """The choose step's lists for one catalog, one set of offers and one page size."""

    def __init__(
        self,
        catalog: Catalog,
        offers: Sequence[Offer],
        *,
        usage: Mapping[str, int] | None = None,
        per_page: int = 6,
        anonymous: bool = False,
        tile_names: Mapping[str, Text] = TILE_NAMES,
    ) -> None:
        self.per_page = per_page
        # the no-ID path lists only what can be done without a card
        self.offers = [o for o in offers if not (anonymous and o.selection.needs_identity)]
        given = {s.code: s.initials for s in catalog.services if s.initials}
        given |= {b.code: b.initials for b in catalog.bundles if b.initials}
        self._initials = {o.selection.code: _initials(o, given) for o in self.offers}
        icons = {s.code: s.icon for s in catalog.services} | {
            b.code: b.icon for b in catalog.bundles
        }
        category = {s.code: s.category for s in catalog.services}
        self._items = {
            o.selection.code: Item(
                o.selection.code, o.selection.name, icons[o.selection.code], offer=o
            )
            for o in self.offers
        }
        singles = [o for o in self.offers if not o.selection.is_bundle]
        self.bundles = [self._items[o.selection.code] for o in self.offers if o.selection.is_bundle]
        self.by_category: dict[str, list[Item]] = {}
        for o in singles:
            self.by_category.setdefault(category[o.selection.code], []).append(
                self._items[o.selection.code]
            )
        used = sorted(
            ((n, code) for code, n in (usage or {}).items() if code in self._items and n > 0),
            key=lambda pair: -pair[0],
        )
        self.top = [self._items[code] for _, code in used[:TOP_COUNT]]
        tiles = [Item(TOP, tile_names[TOP], "star", tile=True)] if self.top else []
        if self.bundles:
            tiles.append(Item(BUNDLES, tile_names[BUNDLES], "event", tile=True))
        tiles.append(Item(SEARCH, tile_names[SEARCH], "search", tile=True))
        tiles += [
            Item(c.code, c.name, c.icon, tile=True)
            for c in catalog.categories
            if self.by_category.get(c.code)
        ]
        self.home = tiles
        self.flat = len(self.offers) <= per_page  # one page: the matters themselves, no tiles

    # --- lists ---------------------------------------------------------------------------------

    def items(self, level: str) -> list[Item]:
        """``home`` (tiles; every matter when :attr:`flat`), ``top``, ``bundles``,
        ``search:QUERY`` or a category's code."""
        if level == HOME:
            return [self._items[o.selection.code] for o in self.offers] if self.flat else self.home
        if level == TOP:
            return self.top
        if level == BUNDLES:
            return self.bundles
        if level.startswith("search:"):
            return self.matches(level.removeprefix("search:"))
        return self.by_category.get(level, [])

    def per(self, level: str) -> int:
        return TILES_PER_PAGE if level == HOME and not self.flat else self.per_page

    def page_of(self, level: str, code: str) -> int | None:
        items = self.items(level)
        for i, item in enumerate(items):
            if item.code == code:
                return i // self.per(level)
        return None

    # --- search --------------------------------------------------------------------------------

    def matches(self, query: str) -> list[Item]:
        """Matters whose name's initials hold ``query`` (GJJ finds 住房公积金…)."""
        return [self._items[c] for c, ini in self._initials.items() if query and query in ini]

    def alphabet(self) -> list[str]:
        """The keypad's letters: every letter some matter's initials hold, in order (pinyin
        starts no syllable with I, U or V, so those keys are left off)."""
        return sorted({c for ini in self._initials.values() for c in ini})

    def keys(self, query: str) -> set[str]:
        """The letters that, typed next, still find something: the others are greyed."""
        out = set()
        for ini in self._initials.values():
            at = ini.find(query)
            while at != -1:
                if at + len(query) < len(ini):
                    out.add(ini[at + len(query)])
                at = ini.find(query, at + 1)
        return out

    def show_results(self, query: str) -> bool:
        """The search shows its results (instead of the keypad) once they fit one page, or when
        no letter would narrow them further."""
        found = self.matches(query)
        if not query or not found:
            return False
        if len(found) <= self.per_page:
            return True
        return all(len(self.matches(query + k)) == len(found) for k in self.keys(query))

    # --- taps ----------------------------------------------------------------------------------

    def taps(self) -> dict[str, int]:
        """The fewest taps from the choose screen to each matter (the last tap picks it): page
        turns count, the tap on a tile, page turns in its list, the tap on the matter."""
        best: dict[str, int] = {}

        def note(code: str, n: int) -> None:
            best[code] = min(best.get(code, n), n)

        if self.flat:
            return {item.code: i // self.per_page + 1 for i, item in enumerate(self.items(HOME))}
        search_at = 0
        for index, tile in enumerate(self.home):
            turns = index // TILES_PER_PAGE
            if tile.code == SEARCH:
                search_at = turns + 1
                continue
            for j, item in enumerate(self.items(tile.code)):
                note(item.code, turns + 1 + j // self.per_page + 1)
        for code, ini in self._initials.items():
            for start in range(len(ini)):
                for end in range(start + 1, len(ini) + 1):
                    query = ini[start:end]
                    if self.show_results(query):
                        page = self.page_of(f"search:{query}", code)
                        if page is not None:
                            note(code, search_at + len(query) + page + 1)
                        break
        return best
