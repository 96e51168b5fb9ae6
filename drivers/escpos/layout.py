"""Lines laid out for the paper: wrapped by display width, never inside a word or a number.

A thermal printer wraps a line that is too long wherever its last column falls ("certifica|te"
on 58 mm paper), so the driver breaks every line itself before the printer has to. Width is
what the printer prints in Chinese mode, where all our text goes: a single-byte (ASCII)
character takes one column (12 dots of Font A), every character GB18030 encodes in two or four
bytes takes two (24 dots) — Han characters, full-width punctuation, and also the characters a
terminal counts as one column (Unicode "ambiguous" width: “ ” — · …), which a Chinese printer
prints from its full-width font. Double-size text takes twice as many columns.

Breaks follow the basics of Chinese line breaking (the 避头尾 rule of GB/T 15834 and the
W3C's Chinese layout requirements) and of UAX #14 for Latin text: a break may fall at a space,
between two Han characters, or between Han and Latin text; never inside a run of Latin letters,
digits and their punctuation (a word, a number, a date, a document number); no line starts
with closing punctuation (）」》，。、：；！？ and the like), none ends with opening punctuation
(（「《).
A word longer than a whole line is the one thing broken by width. Enumerations ("1. ") and short
labels ("地点: ") get a hanging indent, so their continuation lines stand under their text.
"""

from __future__ import annotations

import re

# no line may start with these: they stay with what comes before them
CLOSING = frozenset(")]}>,.;:!?%、，。．；：？！）］｝〕】》〉」』”’…—～·")
# no line may end with these: they stay with what comes after them
OPENING = frozenset("([{<（［｛〔【《〈「『“‘")
_ENUM = re.compile(r"^(\d{1,3}[.、)]|[-*•]) *")
_LABEL = re.compile(r"^[^:：\s]{1,8}[:：] *")


def char_width(ch: str) -> int:
    """Columns ``ch`` takes on the printer in Chinese mode: 1 for ASCII, 2 for the rest."""
    code = ord(ch)
    if code < 0x20 or code == 0x7F:
        return 0
    return 1 if code < 0x80 else 2


def text_width(text: str) -> int:
    return sum(char_width(ch) for ch in text)


def _atoms(text: str) -> list[str]:
    """Pieces no break may fall inside; a single space is a piece of its own."""
    atoms: list[str] = []
    glue = False  # the last piece ends with an opening mark: what follows joins it
    word = False  # the last piece ends with a narrow character: a narrow one continues it
    for ch in text:
        if ch == " ":
            atoms.append(" ")
            glue = word = False
            continue
        narrow = char_width(ch) == 1
        if ch in CLOSING and atoms and atoms[-1] == " ":  # no break before it, even at spaces
            spaces = 0
            while atoms and atoms[-1] == " ":
                atoms.pop()
                spaces += 1
            if atoms:
                atoms[-1] += " " * spaces
            else:
                atoms.append(" " * spaces)
        if atoms and atoms[-1] != " " and (glue or ch in CLOSING or (narrow and word)):
            atoms[-1] += ch
        else:
            atoms.append(ch)
        glue = ch in OPENING
        word = narrow
    return atoms


def _hang(text: str, columns: int) -> int:
    """The hanging indent of continuation lines: under the text after "1. " or "地点: "."""
    match = _ENUM.match(text) or _LABEL.match(text)
    if match is None:
        return 0
    width = text_width(match.group(0))
    return width if width <= columns // 3 else 0


def _split_long(atom: str, columns: int) -> list[str]:
    """A piece wider than a line, cut by width: the one break inside a word."""
    parts, cur, cur_w = [], "", 0
    for ch in atom:
        w = char_width(ch)
        if cur and cur_w + w > columns:
            carry = ""
            if ch in CLOSING:  # 避头: the last character that may start a line comes along
                k = len(cur) - 1
                while k > 0 and (cur[k] in CLOSING or cur[k] == " "):
                    k -= 1
                carry = cur[k:] if k > 0 else ""
            parts.append(cur[: len(cur) - len(carry)])
            cur, cur_w = carry, text_width(carry)
        cur += ch
        cur_w += w
    return [*parts, cur] if cur else parts


def wrap(text: str, columns: int, *, indent: bool = True) -> list[str]:
    """``text`` as lines of at most ``columns`` columns (at least one line, maybe empty);
    ``indent``: continuation lines of an enumeration or a label hang (left-aligned text)."""
    columns = max(1, columns)
    if text_width(text) <= columns:
        return [text]
    hang = _hang(text, columns) if indent else 0
    lines: list[str] = []
    cur, cur_w = "", 0

    def flush() -> None:
        nonlocal cur, cur_w
        if cur.strip():
            lines.append(cur.rstrip(" "))
        elif not lines:  # nothing on the first line yet: it does not hang
            cur, cur_w = "", 0
            return
        cur, cur_w = " " * hang, hang

    for atom in _atoms(text):
        width = text_width(atom)
        if atom == " ":
            if cur.strip() or not lines:  # no spaces at the start of a continuation line
                cur += " "
                cur_w += 1
            continue
        if cur_w + width <= columns:
            cur += atom
            cur_w += width
            continue
        flush()
        if cur_w + width > columns:  # wider than a line, even a fresh one
            *parts, atom = _split_long(atom, columns - cur_w)
            for part in parts:
                cur += part
                flush()
            width = text_width(atom)
        cur += atom
        cur_w += width
    if cur.strip():
        lines.append(cur.rstrip(" "))
    return lines or [""]
