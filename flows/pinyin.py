"""Pinyin initials of Chinese names, for the search that needs no typing skill ("GJJ" → 公积金).

No pinyin library is installed on the terminals. The 3,755 characters of GB 2312's first level
(the common ones, which realistic matter names use) are ordered by pinyin, so a character's
initial is the last boundary at or below its GB 2312 code (the classic table below). Other
characters (GB 2312's second level, rarer ones) and polyphones read differently in a name (银行
is YH, not YX) are given by the catalog's optional ``initials`` key, which replaces the computed
ones for that name.
"""

from __future__ import annotations

import bisect

# the first character of each initial in GB 2312 level 1, as its two-byte code
_BOUNDS: tuple[tuple[int, str], ...] = (
    (0xB0A1, "A"), (0xB0C5, "B"), (0xB2C1, "C"), (0xB4EE, "D"), (0xB6EA, "E"),
    (0xB7A2, "F"), (0xB8C1, "G"), (0xB9FE, "H"), (0xBBF7, "J"), (0xBFA6, "K"),
    (0xC0AC, "L"), (0xC2E8, "M"), (0xC4C3, "N"), (0xC5B6, "O"), (0xC5BE, "P"),
    (0xC6DA, "Q"), (0xC8BB, "R"), (0xC8F6, "S"), (0xCBFA, "T"), (0xCDDA, "W"),
    (0xCEF4, "X"), (0xD1B9, "Y"), (0xD4D1, "Z"),
)  # fmt: skip
_CODES = [code for code, _ in _BOUNDS]
_LEVEL1_END = 0xD7F9


def initial(char: str) -> str:
    """The pinyin initial of one character: a capital letter, or "" when not known (not Chinese,
    or not a level-1 character). A Latin letter or digit stands for itself."""
    if char.isascii():
        return char.upper() if char.isalnum() else ""
    try:
        raw = char.encode("gb2312")
    except UnicodeEncodeError:
        return ""
    if len(raw) != 2:
        return ""
    code = raw[0] << 8 | raw[1]
    if not _CODES[0] <= code <= _LEVEL1_END:
        return ""
    return _BOUNDS[bisect.bisect_right(_CODES, code) - 1][1]


def initials(name: str) -> str:
    """The initials of a Chinese name, punctuation left out: 住房公积金 → ZFGJJ."""
    return "".join(initial(c) for c in name)
