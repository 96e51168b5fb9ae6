"""The words of the Statistics charts: every label goes through :func:`say`.

The charts are drawn in Python, so their words are named here, by key, and :func:`say` is the
one place that turns a key into text: the console's catalogs (``stats.KEY``), in the language of
the request being answered.

Codes that stations send (screens, reasons) are named in words; a code the console does not know
is shown as itself and called unknown, and a missing one says it was not recorded — never a bare
"unknown" that looks like a value.
"""

from __future__ import annotations

from fleet.console import i18n

KEYS = (
    "chart.ratings",
    "chart.tags",
    "chart.funnel",
    "chart.volume",
    "chart.uptime",
    "stars",
    "funnel.none",
    "other_services",
    "no_service",
    "uptime.shown",
    "screen.idle",
    "screen.home",
    "screen.identify",
    "screen.choose",
    "screen.notice",
    "screen.preview",
    "screen.printing",
    "screen.interrupted",
    "screen.rate",
    "screen.none",
    "screen.unknown",
    "reason.timeout",
    "reason.cancel",
    "reason.card_removed",
    "reason.restart",
    "reason.none",
    "reason.unknown",
    "mode.elder",
    "mode.standard",
    "no_data",
)
"""The words of the charts, each the catalog key ``stats.KEY`` (both languages in the console's
catalogs; :data:`fleet.console.words` adds them to the extraction)."""

# The session's screens in the order a resident meets them (notice and preview are two ways on
# from choose); the funnel is drawn in this order.
SCREENS = ("identify", "choose", "notice", "preview", "printing", "interrupted")
STEP = {"identify": 0, "choose": 1, "notice": 2, "preview": 2, "printing": 3, "interrupted": 3}
REASONS = ("timeout", "cancel", "card_removed", "restart")

FAILURES = (
    "error.print_failed",
    "error.document",
    "error.device",
    "error.device_offline",
    "error.device_timeout",
    "error.device_protocol",
    "error.provider.failed",
    "error.provider.unavailable",
    "error.provider.no_record",
    "error.catalog_invalid",
    "error.generic",
    "interrupted",
)
"""Why transactions fail (the kiosk's error keys, flows/errors.py; ``interrupted``: printing cut
off, kiosk/shell/printing.py), worded for technicians (catalog keys ``failure.CODE``); others are
shown as sent."""


def say(key: str, **params: object) -> str:
    """The words for ``key`` in the language of the page being drawn (the catalogs' ``stats.``
    keys)."""
    catalog_key = "stats." + key
    return i18n.gettext(catalog_key, **params)


def screen(code: str | None) -> str:
    if not code or code == "unknown":  # stations before this change sent None as "unknown"
        return say("screen.none")
    if f"screen.{code}" in KEYS:
        return say(f"screen.{code}")
    return say("screen.unknown", code=code)


def reason(code: str | None) -> str:
    if not code or code == "unknown":
        return say("reason.none")
    if f"reason.{code}" in KEYS:
        return say(f"reason.{code}")
    return say("reason.unknown", code=code)


def failure(code: str) -> str:
    return i18n.word("failure", code)
