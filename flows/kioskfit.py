"""What a catalog looks like on the kiosk, before it reaches one: names that cannot fit their
buttons at elder size, matters too many taps away. Warnings for ``fleet catalog validate``: the
catalog is still valid (the kiosk shrinks a long name to a floor and wraps it), but an operator
should shorten what is reported.

The sizes are those of the smallest screen configured (1600x900, 21.5"), elder mode, landscape
(``kiosk.ui.theme``): a matter's button holds three lines of about 22 em at the smallest size (a
Chinese character is 1 em, a Latin letter about 0.55 em), a category tile two lines of 14 em.
"""

from __future__ import annotations

import unicodedata

from flows.catalog import Catalog
from flows.effects import Offer
from flows.finder import Finder
from flows.view import selections

BUTTON_EM_PER_LINE, BUTTON_LINES = 22.0, 3
TILE_EM_PER_LINE, TILE_LINES = 14.0, 2
ELDER_PER_PAGE = 4  # matters on an elder page in landscape (kiosk/ui/screens/choose.py)
MAX_TAPS = 4


def em_width(text: str) -> float:
    """The width of ``text`` in ems at one font size: wide (CJK) characters 1, others 0.55."""
    return sum(1.0 if unicodedata.east_asian_width(c) in "WF" else 0.55 for c in text)


def lines_needed(text: str, em_per_line: float) -> int:
    """Lines a text takes when wrapped at ``em_per_line`` (whole words for Latin text)."""
    if any(unicodedata.east_asian_width(c) in "WF" for c in text):
        return int(-(-em_width(text) // em_per_line))
    lines, width = 1, 0.0
    for word in text.split():
        w = em_width(word)
        if width and width + 0.3 + w > em_per_line:
            lines, width = lines + 1, w
        else:
            width += (0.3 if width else 0.0) + w
    return lines


def warnings(catalog: Catalog) -> list[str]:
    """What would not fit at elder size, and matters more than :data:`MAX_TAPS` taps away."""
    out = []
    named = [("service", s.code, s.name, False) for s in catalog.services]
    named += [("bundle", b.code, b.name, False) for b in catalog.bundles]
    named += [("category", c.code, c.name, True) for c in catalog.categories]
    for kind, code, name, tile in named:
        per_line, most = (
            (TILE_EM_PER_LINE, TILE_LINES) if tile else (BUTTON_EM_PER_LINE, BUTTON_LINES)
        )
        for lang in ("zh", "en"):
            text = name.get(lang)
            if lines_needed(text, per_line) > most:
                out.append(
                    f"{kind} {code}: name ({lang}) {text!r} cannot fit its "
                    f"{'tile' if tile else 'button'} at elder size ({most} lines); shorten it"
                )
    offers = [Offer(sel, True) for sel in selections(catalog)]
    usage = {o.selection.code: 0 for o in offers}
    taps = Finder(catalog, offers, usage=usage, per_page=ELDER_PER_PAGE).taps()
    far = sorted(code for code, n in taps.items() if n > MAX_TAPS)
    if far:
        out.append(
            f"{len(far)} matter(s) more than {MAX_TAPS} taps from the choose screen in elder "
            f"mode: {', '.join(far[:10])}{' …' if len(far) > 10 else ''}; use more categories"
        )
    return out
