"""The preview's reading view: a certificate's content as text at the screen's own sizes.

The picture of an A4 page is too small to check on a screen (its text is 2.7 mm high in elder
mode); the reading view shows the records the pages were built from, masked as the picture is
(:func:`flows.documents.masked_record`), one page at a time: the title, each field as a label and
its value, the table and the notes. The paper's labels are bilingual ("参保状态 Status"): the
view shows the half in the session's language. Values are shown as they print, since they are
what the resident checks against the paper. No kivy here, so it is tested headless.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from flows.models import Record

_LATIN_TAIL = re.compile(r"\s([A-Za-z][\x20-\x7e]*)$")


@dataclass(frozen=True, slots=True)
class ReadingPage:
    """One printed page as the reading view lays it out."""

    title: str
    rows: tuple[tuple[str, str], ...]
    table_title: str = ""
    headers: tuple[str, ...] = ()
    table: tuple[tuple[str, ...], ...] = ()
    notes: tuple[str, ...] = ()


def label_in(label: str, lang: str) -> str:
    """The half of a bilingual label ("参保状态 Status") in ``lang``; a label in one language
    is shown whole."""
    match = _LATIN_TAIL.search(label)
    if match is None:
        return label
    chinese = label[: match.start()].strip()
    if not chinese or chinese.isascii():
        return label
    return match.group(1).strip() if lang == "en" else chinese


def reading_pages(records: tuple[Record, ...], lang: str) -> list[ReadingPage]:
    """One reading page per record, as the certificates print one page per record."""
    pages = []
    for record in records:
        table = record.table
        pages.append(
            ReadingPage(
                title=record.title_en if lang == "en" else record.title_zh,
                rows=tuple((label_in(label, lang), value) for label, value in record.fields),
                table_title=label_in(table.title, lang) if table else "",
                headers=tuple(label_in(h, lang) for h in table.headers) if table else (),
                table=table.rows if table else (),
                notes=record.notes,
            )
        )
    return pages


def table_row_field(headers: tuple[str, ...], row: tuple[str, ...], lang: str) -> tuple[str, str]:
    """A table's row as the keys' focus reads it, one field: its first cell named by its
    header ("年月 2026-06") and the others, each named by its own ("缴费基数 4200.00，…")."""
    named = [f"{h} {v}".strip() for h, v in zip(headers, row, strict=False)]
    if len(row) > len(headers):
        named += list(row[len(headers) :])
    if not named:
        return "", ""
    return named[0], ("，" if lang == "zh" else ", ").join(named[1:])
