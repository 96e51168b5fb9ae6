"""From session view to screen text: plain functions, no Kivy, so they are tested headless.

Some texts are Kivy markup (``[b]`` headings on the notice and the maintenance screen). What goes
into them from the catalog, the station's configuration, a device or a log is data, never markup:
a service name holding ``[size=400]`` must show those characters, not restyle the screen (and
``[size=abc]`` must not stop the label from rendering). Every such value passes through
:func:`literal`; the markup the code writes itself does not.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from typing import Any

from flows.catalog import Catalog, Output, Text
from flows.finder import BUNDLES, HOME, SEARCH, TOP, Finder, Item
from flows.hours import When
from flows.icons import ICONS
from flows.session import Offer, Selection, View
from flows.slips import Say, parts, when_text
from kiosk.i18n import Translator
from kiosk.shell.helpdesk import HelpState
from kiosk.shell.maintenance import MaintenanceReport


def literal(data: str) -> str:
    """``data`` escaped for a Kivy label with ``markup: True``, so it shows as written.

    The same three replacements as ``kivy.utils.escape_markup`` (``&``, ``[``, ``]``), spelled
    out here because this module stays free of Kivy; tests/kiosk/ui/markup_app.py checks that the
    two agree."""
    return data.replace("&", "&amp;").replace("[", "&bl;").replace("]", "&br;")


def reason_text(offer: Offer, lang: str, tr: Translator) -> str:
    """Why an offer cannot be had now, with when it opens if it will (明天 08:30)."""
    params = dict(offer.params)
    if "day" in params:
        moment = When(params["day"], dt.date.fromisoformat(params["date"]), params["time"])
        return tr(offer.reason, lang, when=when_text(moment, Say(lang, tr)))
    return tr(offer.reason, lang)


def offer_rows(view: View, tr: Translator) -> list[dict[str, Any]]:
    """The choose screen's buttons: every service and bundle, unavailable ones saying why."""
    rows = []
    for offer in view.offers:
        label = offer.selection.name.get(view.lang)
        if not offer.available:
            label += f"\n({reason_text(offer, view.lang, tr)})"
        rows.append({"code": offer.selection.code, "label": label, "available": offer.available})
    return rows


def finder_rows(items: Sequence[Item], lang: str, tr: Translator) -> list[dict[str, Any]]:
    """The choose screen's buttons for a page of a :class:`~flows.finder.Finder` list: tiles
    with their icon's character, matters with their description and, when they cannot be had
    now, why."""
    rows = []
    for item in items:
        offer = item.offer
        label, detail, available = item.name.get(lang), "", True
        if offer is not None:
            available = offer.available
            detail = offer.selection.description.get(lang)
            if not available:
                label += tr("punct.paren", lang, text=reason_text(offer, lang, tr))
                detail = ""
        glyph = ICONS.get(item.icon, "") if item.tile else ""
        rows.append(
            {
                "code": item.code,
                "label": label,
                "detail": detail,
                "glyph": glyph,
                "tile": item.tile,
                "available": available,
            }
        )
    return rows


def tile_names(tr: Translator) -> dict[str, Text]:
    """The names of the tiles that are not the catalog's categories, translated."""
    return {
        code: Text(zh=tr(f"choose.tile_{code}", "zh"), en=tr(f"choose.tile_{code}", "en"))
        for code in (TOP, BUNDLES, SEARCH)
    }


def choose_title(level: str, finder: Finder, lang: str, tr: Translator) -> str:
    """The choose screen's title for one of the finder's lists."""
    if level == HOME:
        return tr("choose.title", lang)
    if level.startswith("search:"):
        query = level.removeprefix("search:")
        return tr(
            "choose.search_results", lang, query=" ".join(query), n=str(len(finder.matches(query)))
        )
    tile = next((t for t in finder.home if t.code == level), None)
    return tile.name.get(lang) if tile is not None else tr("choose.title", lang)


def outputs_text(selection: Selection | None, pages: int, lang: str, tr: Translator) -> str:
    """What the selection prints, every part: A4 pages, notices, tickets, the receipt."""
    if selection is None:
        return ""
    split = parts(selection)
    if not selection.is_bundle:
        if split.certificates:
            return tr("preview.outputs_pages", lang, n=str(pages or len(split.certificates)))
        return tr("preview.outputs_thermal", lang)
    items = []
    if split.certificates:
        items.append(tr("preview.part_pages", lang, n=str(pages or len(split.certificates))))
    if split.notices:
        items.append(tr("preview.part_notices", lang, n=str(len(split.notices))))
    if split.tickets:
        items.append(tr("preview.part_tickets", lang, n=str(len(split.tickets))))
    if Output.THERMAL in selection.outputs:
        items.append(tr("preview.part_receipt", lang))
    return tr("preview.outputs_parts", lang, parts=tr("punct.list", lang).join(items))


def notice_text(selection: Selection | None, lang: str, tr: Translator) -> str:
    """The materials notice as the screen shows it (Kivy markup for the headings)."""
    service = selection.notice if selection is not None else None
    if service is None or service.notice is None:
        return ""
    notice = service.notice
    lines = [f"[b]{tr('notice.materials', lang)}[/b]"]
    for number, item in enumerate(notice.materials, start=1):
        kind = tr("notice.original" if item.original else "notice.copy", lang)
        copies = f", {tr('notice.copies', lang, n=str(item.copies))}" if item.copies > 1 else ""
        lines.append(f"{number}. {literal(item.name.get(lang))} ({kind}{copies})")
    for key, text in (
        ("notice.place", notice.place),
        ("notice.time_limit", notice.time_limit),
        ("notice.fees", notice.fees),
        ("notice.legal_basis", notice.legal_basis),
    ):
        lines += ["", f"[b]{tr(key, lang)}[/b]", literal(text.get(lang))]
    return "\n".join(lines)


def paginate(lines: list[str], fits: Callable[[str], bool]) -> list[str]:
    """``lines`` as pages: each as many lines as ``fits(text)`` allows (at least one), no page
    starting with a blank line, a heading (``[b]…``) carried over to the page its text is on."""
    pages: list[list[str]] = []
    cur: list[str] = []
    for line in lines:
        if not cur and not line.strip():
            continue
        if cur and not fits("\n".join([*cur, line])):
            carry = [cur.pop()] if len(cur) > 1 and cur[-1].startswith("[b]") else []
            while cur and not cur[-1].strip():
                cur.pop()
            pages.append(cur)
            cur = carry
            if not line.strip():
                continue
        cur.append(line)
    if cur:
        pages.append(cur)
    return ["\n".join(p) for p in pages] or [""]


def out_of_order_text(catalog: Catalog, lang: str, tr: Translator) -> str:
    return tr("out_of_order.body", lang, phone=catalog.station.help_phone)


def print_text(view: View, tr: Translator) -> str:
    if view.print_ok is None:
        return ""
    if view.print_ok:
        return tr("printing.done", view.lang)
    return tr(view.print_error_key or "error.print_failed", view.lang)


HOME_LISTED = 3
"""The home screen names at most this many services that cannot be done now, then how many more."""


def unavailable_text(view: View, tr: Translator) -> str:
    """For the home screen: what cannot be done right now, and why (what works stays offered)."""
    closed = [
        f"{o.selection.name.get(view.lang)}{tr('punct.paren', view.lang, text=why)}"
        for o in view.offers
        if not o.available and not o.selection.is_bundle
        for why in [reason_text(o, view.lang, tr)]
    ]
    if not closed:
        return ""
    shown = closed[:HOME_LISTED]
    if len(closed) > len(shown):  # a short summary: a long catalog must not push the title away
        shown.append(tr("home.unavailable_more", view.lang, n=len(closed) - len(shown)))
    return tr("home.unavailable", view.lang) + ("；" if view.lang == "zh" else "; ").join(shown)


ZH_DIGITS = "零一二三四五六七八九"


def spoken_number(number: str, lang: str) -> str:
    """A phone number as a voice must read it: digit by digit. A Chinese voice reads "12345" as
    一万二千三百四十五, so the digits are spaced (and written as characters for zh); a dash or a
    space becomes a short pause, a plus sign a word."""
    parts: list[str] = []
    for char in number:
        if char.isdigit():
            parts.append(ZH_DIGITS[int(char)] if lang == "zh" else char)
        elif char == "+":
            parts.append("加" if lang == "zh" else "plus")
        elif parts and parts[-1] not in ("，", ","):
            parts.append("，" if lang == "zh" else ",")
    return " ".join(parts).replace(" ，", "，").replace("， ", "，").replace(" ,", ",")


def hours_text(hours: str, lang: str) -> str:
    """``08:30-17:30`` as said and shown: 8:30 至 17:30, 8:30 to 17:30."""
    start, _, end = hours.partition("-")
    start, end = start.removeprefix("0"), end.removeprefix("0")
    return f"{start}至{end}" if lang == "zh" else f"{start} to {end}"  # (Kivy wraps at spaces)


SPOKEN_DIGITS = frozenset({"phone", "id"})  # digit by digit ("id": a masked ID number)
"""Speech parameters that are phone numbers, read digit by digit."""


_MASKED = re.compile(r"[0-9A-Za-z]*\*+[0-9A-Za-z]*")


def spoken_value(value: str, lang: str) -> str:
    """A document's value as the voice says it: a masked part (3201**********1234, 张**) read
    as it shows, its digits one by one and its stars a pause, never "star star"."""
    return _MASKED.sub(lambda m: spoken_number(m.group(), lang), value)


def spoken_params(params: dict[str, str], lang: str) -> dict[str, str]:
    """A prompt's parameters as the voice says them (phone numbers digit by digit, hours, a
    document's masked values)."""
    out = dict(params)
    for key, value in params.items():
        if key in SPOKEN_DIGITS:
            out[key] = spoken_number(value, lang)
        elif key == "value":
            out[key] = spoken_value(value, lang)
        elif key == "hours":
            out[key] = hours_text(value, lang)
    return out


def help_texts(
    help_state: HelpState, catalog: Catalog, lang: str, tr: Translator
) -> dict[str, str]:
    """The help overlay's texts: title, body, the hotline (after hours, large), the technician's
    answer, the slip button.

    No markup: the answer's free text is shown by a label without markup, as written."""
    station = catalog.station
    if help_state.after_hours:
        title = tr("help.title_after_hours", lang)
        hours = hours_text(station.duty_hours, lang)
        body = tr("help.body_after_hours", lang, hours=hours)
        hotline = tr("help.hotline", lang, phone=station.night_phone)
    else:
        title = tr("help.title", lang)
        body = tr("help.body", lang, phone=station.help_phone)
        hotline = ""
    if help_state.call:  # staff can call back here now, or no call at this station
        suffix = "_after_hours" if help_state.after_hours and help_state.call == "none" else ""
        body += "\n" + tr(f"help.call_{help_state.call}{suffix}", lang)
    reply = (
        tr(help_state.reply_key, lang, **help_state.reply_params) if help_state.reply_key else ""
    )
    slip = tr(f"help.slip_{help_state.slip}" if help_state.slip else "help.slip", lang)
    return {"title": title, "body": body, "hotline": hotline, "reply": reply, "slip": slip}


def spoken_texts(catalog: Catalog, tr: Translator) -> list[tuple[str, str]]:
    """Everything the kiosk may say that holds no personal data, in both languages: every
    screen prompt and error, and every service's spoken text (synthesised ahead of need)."""
    station = catalog.station
    items = []
    for lang in ("zh", "en"):
        for key in sorted(tr.keys(lang)):
            if key.startswith(("prompt.", "error.")):
                phone = station.night_phone if key.endswith("_after_hours") else station.help_phone
                said = spoken_params({"phone": phone, "hours": station.duty_hours}, lang)
                items.append((tr(key, lang, **said), lang))
        items += [(s.spoken.get(lang), lang) for s in catalog.enabled_services()]
        items += [(b.spoken.get(lang), lang) for b in catalog.enabled_bundles()]
        lists = [c.name.get(lang) for c in catalog.categories]  # the choose screen's lists
        lists += [tr(f"choose.tile_{code}", lang) for code in (TOP, BUNDLES)]
        items += [(tr("choose.say_list", lang, name=name), lang) for name in lists]
    return items


def pin_dots(typed: int) -> str:
    """The PIN pad shows how many digits were typed, never which."""
    return " ".join("●" for _ in range(typed)) if typed else "—"


def pin_message(message: tuple[str, str], lang: str, tr: Translator) -> str:
    key, arg = message
    return tr(key, lang, n=arg) if arg else tr(key, lang)


def maintenance_texts(
    report: MaintenanceReport | None, lang: str, tr: Translator
) -> dict[str, str]:
    """The maintenance screen's four blocks: devices, versions and network, last action, log.

    Markup: every value from a device, the catalog, the network, the agent or the log is
    :func:`literal`."""
    if report is None:
        return {"devices": "", "info": "", "last": "", "log": ""}
    devices = [f"[b]{tr('maint.devices', lang)}[/b]"]
    for kind, state, reasons in report.devices:
        mark = "✓" if state == "ok" else "✘"  # ✗ (U+2717) is not in WenQuanYi: a missing-glyph box
        said = f"{kind}: {state}" + (f" ({reasons})" if reasons else "")
        devices.append(f"{mark} {literal(said)}")
    info = [
        f"{tr('maint.catalog', lang)}: {literal(str(report.catalog_version))}",
        f"{tr('maint.app', lang)}: {literal(report.app_version)}",
        f"{tr('maint.broker', lang)}: {literal(report.broker)}",
        f"[b]{tr('maint.network', lang)}[/b]",
        *(literal(line) for line in report.network),
    ]
    last = report.last_action
    return {
        "devices": "\n".join(devices),
        "info": "\n".join(info),
        "last": f"{tr('maint.last_action', lang)}: {literal(last)}" if last else "",
        "log": "\n".join(literal(line) for line in report.log_tail) or tr("maint.no_log", lang),
    }
