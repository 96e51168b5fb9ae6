"""The thermal slips of a selection, in the session's language: every part has its paper.

A selection (one service or a bundle) is made of parts (:func:`parts`): certificates (A4 pages,
built in :mod:`flows.documents`), materials notices, queue tickets for a staffed window, and
掌上办 guides (:func:`mobile_guide`: how to do a matter on a phone next time).
:func:`slips` gives the slips it prints, in order: a receipt when certificates were printed or
the selection is a bundle (what was printed, and what is still to do at which window), one
notice per notice with its materials, one ticket per ticket whose window is open, one guide per
guide.

Words come from the kiosk's catalogs through ``say`` (a translation bound to the session's
language, ``say(key, **params)``), punctuation included, so an English session's paper is
English throughout and a Chinese one uses full-width punctuation.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from flows.catalog import (
    WEEKDAYS,
    Catalog,
    Output,
    Service,
    ServiceKind,
    Weekday,
    Window,
    https_url,
)
from flows.effects import Selection
from flows.hours import When, is_ticket, station_time, when
from flows.models import Align, Identity, Receipt, ReceiptLine


@dataclass(frozen=True, slots=True)
class Say:
    """The kiosk's translations in one language: ``say("slip.notice.title")``,
    ``say("notice.copies", n="3")``; ``tr`` is ``tr(key, lang, **params)``."""

    lang: str
    tr: Callable[..., str]

    def __call__(self, key: str, **params: str) -> str:
        return self.tr(key, self.lang, **params)


RULE = ReceiptLine("-", rule=True)  # across the paper, whatever its width
DEFAULT_PREFIX = "A"  # the tickets of a service without a window (catalogs before windows)


@dataclass(frozen=True, slots=True)
class Ticket:
    """A queue ticket of one part: its number, or (``number`` None) why none was issued."""

    service: Service
    prefix: str
    number: int | None = None  # None: its window is closed, no ticket
    opens: dt.datetime | None = None  # station time, when a closed window opens

    @property
    def label(self) -> str:
        return f"{self.prefix}{self.number:03d}" if self.number is not None else ""


@dataclass(frozen=True, slots=True)
class Parts:
    certificates: tuple[Service, ...]
    notices: tuple[Service, ...]
    tickets: tuple[Service, ...]
    guides: tuple[Service, ...] = ()


def parts(selection: Selection) -> Parts:
    """The parts of a selection by the paper they produce."""
    services = selection.services
    return Parts(
        certificates=tuple(s for s in services if Output.A4 in s.outputs),
        notices=tuple(s for s in services if Output.A4 not in s.outputs and s.notice),
        tickets=tuple(s for s in services if is_ticket(s)),
        guides=tuple(s for s in services if s.kind is ServiceKind.MOBILE_GUIDE),
    )


def needs_receipt(selection: Selection) -> bool:
    """A receipt lists the parts: printed with certificates, and for every bundle."""
    return selection.is_bundle or bool(parts(selection).certificates)


def prefix(service: Service, catalog: Catalog) -> str:
    window = catalog.window(service.window)
    return window.prefix if window is not None else DEFAULT_PREFIX


def _join(items: list[str], say: Say) -> str:
    return say("punct.list").join(items)


def days_text(window: Window, say: Say) -> str:
    """Mon-Fri, Mon-Sat, Mon, Wed, Fri: runs of three or more days as a range."""
    index = sorted(WEEKDAYS.index(Weekday(d)) for d in window.days)
    runs: list[list[int]] = []
    for i in index:
        if runs and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    words = []
    for run in runs:
        first, last = (say(f"day.{WEEKDAYS[run[0]].value}"), say(f"day.{WEEKDAYS[run[-1]].value}"))
        if len(run) >= 3:
            words.append(say("days.range", first=first, last=last))
        else:
            words += [say(f"day.{WEEKDAYS[i].value}") for i in run]
    return _join(words, say)


def window_hours(window: Window | None, catalog: Catalog, say: Say) -> str:
    """A window's hours as printed: 周一至周五 08:30-12:00、13:30-17:30（节假日除外）."""
    if window is None:  # a catalog without windows: the station's duty hours, every day
        return say("hours.every_day", periods=catalog.station.duty_hours)
    text = say("hours.days", days=days_text(window, say), periods=_join(window.hours, say))
    return text if window.holidays else text + say("hours.not_holidays")


def when_text(moment: When, say: Say) -> str:
    """今天 13:30, 明天 08:30, 12月7日（星期一）08:30; today at 13:30, ..."""
    if moment.day != "date":
        return say(f"when.{moment.day}", time=moment.time)
    weekday = say(f"weekday.{WEEKDAYS[moment.date.weekday()].value}")
    return say(
        "when.date",
        month=str(moment.date.month),
        day=str(moment.date.day),
        weekday=weekday,
        time=moment.time,
    )


def closed_text(ticket: Ticket, catalog: Catalog, now: dt.datetime, say: Say) -> str:
    """What a resident is told of a ticket not issued: the window is closed, opens when."""
    window = catalog.window(ticket.service.window)
    name = window.name.get(say.lang) if window is not None else ticket.service.name.get(say.lang)
    if ticket.opens is None:
        return say("slip.window_closed", window=name)
    return say("slip.window_opens", window=name, when=when_text(when(ticket.opens, now), say))


def _footer(catalog: Catalog, issued: dt.datetime, say: Say) -> list[ReceiptLine]:
    return [
        RULE,
        ReceiptLine(catalog.station.name.get(say.lang), Align.CENTER),
        ReceiptLine(say("slip.phone", phone=catalog.station.help_phone), Align.CENTER),
        ReceiptLine(f"{issued:%Y-%m-%d %H:%M}", Align.CENTER),
    ]


def materials_notice(
    *, catalog: Catalog, service: Service, issued: dt.datetime, say: Say
) -> Receipt:
    """一次性告知单: everything a staffed window will need, so one visit is enough."""
    notice = service.notice
    if notice is None:
        raise ValueError(f"{service.code} has no materials notice")
    lang = say.lang
    lines = [
        ReceiptLine(say("slip.notice.title"), Align.CENTER, double=True),
        ReceiptLine(service.name.get(lang), Align.CENTER, bold=True),
        RULE,
        ReceiptLine(say("slip.notice.materials"), bold=True),
    ]
    for i, item in enumerate(notice.materials, start=1):
        kind = [say("notice.original" if item.original else "notice.copy")]
        if item.copies > 1:
            kind.append(say("notice.copies", n=str(item.copies)))
        what = say("punct.paren", text=_join(kind, say))
        lines.append(ReceiptLine(f"{i}. {item.name.get(lang)}{what}"))
        if item.note is not None:
            lines.append(ReceiptLine(say("slip.notice.note", text=item.note.get(lang))))
    lines.append(RULE)
    window = catalog.window(service.window)
    if window is not None:
        lines += [
            ReceiptLine(say("slip.window", window=window.name.get(lang)), bold=True),
            ReceiptLine(say("slip.window_hours", hours=window_hours(window, catalog, say))),
        ]
    for key, text in (
        ("notice.place", notice.place),
        ("notice.time_limit", notice.time_limit),
        ("notice.fees", notice.fees),
        ("notice.legal_basis", notice.legal_basis),
    ):
        lines.append(ReceiptLine(say("slip.field", label=say(key), text=text.get(lang))))
    return Receipt(lines=tuple(lines + _footer(catalog, issued, say)))


def mobile_guide(*, catalog: Catalog, service: Service, issued: dt.datetime, say: Say) -> Receipt:
    """掌上办 guide: the matter's name, the app or mini-program to use, the steps in short lines,
    and a QR code to the matter's page. The URL comes from the signed catalog only, and is
    checked once more here (https, no spaces) before it goes on paper."""
    guide = service.mobile
    if guide is None:
        raise ValueError(f"{service.code} has no mobile guide")
    lang = say.lang
    lines = [
        ReceiptLine(say("slip.guide.title"), Align.CENTER, double=True),
        ReceiptLine(service.name.get(lang), Align.CENTER, bold=True),
        RULE,
        ReceiptLine(say("slip.guide.app", app=guide.app.get(lang)), bold=True),
        ReceiptLine(say("slip.guide.steps"), bold=True),
        *(ReceiptLine(f"{i}. {step.get(lang)}") for i, step in enumerate(guide.steps, start=1)),
        *_footer(catalog, issued, say),
        ReceiptLine(say("slip.guide.scan"), Align.CENTER, bold=True),
    ]
    return Receipt(lines=tuple(lines), qr=https_url(guide.url))


def queue_ticket(*, catalog: Catalog, ticket: Ticket, issued: dt.datetime, say: Say) -> Receipt:
    """A ticket for a staffed window: its number with the window's prefix, its own hours."""
    if ticket.number is None:
        raise ValueError(f"no number was issued for {ticket.service.code}")
    lang = say.lang
    window = catalog.window(ticket.service.window)
    lines = [
        ReceiptLine(catalog.station.name.get(lang), Align.CENTER, bold=True),
        ReceiptLine(ticket.service.name.get(lang), Align.CENTER),
    ]
    if window is not None:
        lines.append(ReceiptLine(window.name.get(lang), Align.CENTER, bold=True))
    lines += [
        ReceiptLine(ticket.label, Align.CENTER, double=True),
        RULE,
        ReceiptLine(say("slip.ticket.issued", time=f"{issued:%Y-%m-%d %H:%M}")),
        ReceiptLine(say("slip.window_hours", hours=window_hours(window, catalog, say))),
        ReceiptLine(say("slip.ticket.wait"), Align.CENTER),
    ]
    return Receipt(lines=tuple(lines))


def receipt(
    *,
    catalog: Catalog,
    selection: Selection,
    tickets: Mapping[str, Ticket],
    identity: Identity | None,
    doc_id: str,
    issued: dt.datetime,
    say: Say,
) -> Receipt:
    """The receipt of a selection: what was printed, and what is still to do at which window."""
    lang = say.lang
    split = parts(selection)
    lines = [
        ReceiptLine(catalog.station.name.get(lang), Align.CENTER, bold=True),
        ReceiptLine(say("slip.receipt.title"), Align.CENTER, double=True),
        RULE,
        ReceiptLine(selection.name.get(lang), bold=True),
    ]
    if split.certificates:
        lines.append(ReceiptLine(say("slip.receipt.printed"), bold=True))
        lines += [
            ReceiptLine(say("slip.receipt.certificate", name=s.name.get(lang), n="1"))
            for s in split.certificates
        ]
    todo: list[str] = []
    for service in selection.services:
        window = catalog.window(service.window)
        place = window.name.get(lang) if window is not None else ""
        if service in split.notices:
            key = "slip.receipt.notice_at" if place else "slip.receipt.notice"
            todo.append(say(key, name=service.name.get(lang), window=place))
        elif service in split.tickets:
            ticket = tickets.get(service.code)
            if ticket is not None and ticket.number is not None:
                key = "slip.receipt.ticket_at" if place else "slip.receipt.ticket"
                todo.append(
                    say(key, name=service.name.get(lang), number=ticket.label, window=place)
                )
            elif ticket is not None:
                closed = closed_text(ticket, catalog, station_time(issued, catalog), say)
                todo.append(say("slip.receipt.closed", name=service.name.get(lang), why=closed))
    if todo:
        lines.append(ReceiptLine(say("slip.receipt.todo"), bold=True))
        lines += [ReceiptLine(f"{i}. {text}") for i, text in enumerate(todo, start=1)]
    lines.append(RULE)
    if identity is not None:
        lines.append(ReceiptLine(say("slip.receipt.who", name=identity.masked_name)))
    lines += [
        ReceiptLine(say("slip.receipt.time", time=f"{issued:%Y-%m-%d %H:%M}")),
        ReceiptLine(say("slip.receipt.number", number=doc_id)),
        RULE,
        ReceiptLine(say("slip.receipt.take"), Align.CENTER),
        ReceiptLine(say("slip.phone", phone=catalog.station.help_phone), Align.CENTER),
    ]
    return Receipt(lines=tuple(lines), qr=f"KIOSK-DOC:{doc_id}")


def slips(
    *,
    catalog: Catalog,
    selection: Selection,
    tickets: Mapping[str, Ticket],
    identity: Identity | None,
    doc_id: str,
    issued: dt.datetime,
    say: Say,
) -> list[tuple[str, Receipt]]:
    """Every slip of a selection, in printing order, each with what it is (``receipt``,
    ``notice:CODE``, ``ticket:CODE``): the receipt, the notices, the tickets issued."""
    out: list[tuple[str, Receipt]] = []
    if needs_receipt(selection):
        out.append(
            (
                "receipt",
                receipt(
                    catalog=catalog,
                    selection=selection,
                    tickets=tickets,
                    identity=identity,
                    doc_id=doc_id,
                    issued=issued,
                    say=say,
                ),
            )
        )
    split = parts(selection)
    for service in split.notices:
        notice = materials_notice(catalog=catalog, service=service, issued=issued, say=say)
        out.append((f"notice:{service.code}", notice))
    for service in split.tickets:
        ticket = tickets.get(service.code)
        if ticket is not None and ticket.number is not None:
            slip = queue_ticket(catalog=catalog, ticket=ticket, issued=issued, say=say)
            out.append((f"ticket:{service.code}", slip))
    for service in split.guides:
        guide = mobile_guide(catalog=catalog, service=service, issued=issued, say=say)
        out.append((f"guide:{service.code}", guide))
    return out
