"""The codes the console shows in words, by kind: each kind's codes come from where the code is
defined (the protocol's command list, the station states, the alert kinds, ...), and each code
``c`` of kind ``k`` has the catalog key ``k.c`` (:func:`fleet.console.i18n.word`).

:func:`fleet.console.messages.extract` adds every key of :func:`vocabulary` to the catalogs, so
a new command, state or alert kind cannot reach a page untranslated: the catalogs' test fails
until both languages word it. Codes outside these lists (a device's own reason, a station's
new result field) are shown as they are.
"""

from __future__ import annotations

from typing import get_args

from fleet.console import followups, incidents, stat_words
from fleet.console.alerting import HEALTH_KINDS
from fleet.console.conditions import MOMENTARY
from fleet.console.rollout import ABORTED, COMPLETED, DRAFT, PAUSED, PHASES, RUNNING
from fleet.console.store import ROLES
from fleet.console.views import EVENT_FIELDS, PRIORITY, STATUSES
from fleet.protocol.commands import COMMANDS
from fleet.protocol.models import EVENTS, STATION_ALERT_KINDS, StateReason
from flows.models import DeviceState

__all__ = [
    "CATALOG_ERRORS",
    "COMMAND_STATUSES",
    "RESULT_CODES",
    "RESULT_FIELDS",
    "keys",
    "vocabulary",
]

COMMAND_STATUSES = ("sent", "accepted", "succeeded", "failed", "timed_out")
"""A command's life at the console (fleet.console.ingest)."""

DEVICES = ("id_reader", "smartcard_reader", "a4_printer", "thermal_printer", "speech")
"""The devices a station reports (flows.availability, fleet.console.conditions)."""

DEVICE_REASONS = (
    "paper_out",
    "paper_low",
    "toner_out",
    "toner_low",
    "cover_open",
    "not_connected",
    "timeout",
    "disabled_in_config",
    "card_left_behind",  # kiosk.shell.leftcard
)
"""The reasons a device gives that a technician meets most (others are shown as sent)."""

RESULT_FIELDS = (
    "reason",
    "error",
    "printer",
    "state",
    "reasons",
    "faulty",
    "devices",
    "birth",
    "files",
    "lines",
    "masked",
    "text",
    "shown",
    "lang",
    "version",
    "applies",
    "image",
    "width",
    "height",
    "bytes",
    "expected",
    "unexpected",
)
"""The fields of command results (fleet.agent.commands, kiosk.shell.remote)."""

RESULT_CODES = (
    "bad_args",
    "bad_timeout",
    "devices_faulty",
    "error",
    "interrupted",
    "io_error",
    "maintenance",
    "no_logs",
    "not_printed",
    "not_published",
    "too_large",
    "unknown_command",
    "unsupported",
    "published",
    "now",
    "after_session",
    "home",
    "session",
    "missing",
    "a4",
    "thermal",
)
"""The values of those fields that are codes (reasons, outcomes, printers)."""


CATALOG_ERRORS = (
    "signature",
    "rollback",
    "expired",
    "too_large",
    "hash_mismatch",
    "version_mismatch",
    "malformed",
    "unknown_target",
    "untrusted",
    "metadata",
    "download",
    "timeout",
    "invalid_desired",
    "storage",
)
"""Why a terminal failed to take a rolled-out catalog: the ``error`` of its ``reported``
(``fleet.agent.catalog_update.Reason``, which the console may not import; a test keeps the two
lists equal)."""

ROLLOUT_STATES = (DRAFT, RUNNING, PAUSED, COMPLETED, ABORTED)
"""A rollout's life (fleet.console.rollout)."""

WAVES = ("canary", "all")
"""The named waves of a rollout; the middle one is named by its percentage ("10%"), as is."""


def alert_kinds() -> list[str]:
    kinds = {*PRIORITY, *HEALTH_KINDS, *MOMENTARY, incidents.KIND}
    kinds |= {f"station:{k}" for k in (*STATION_ALERT_KINDS, "other")}
    return sorted(kinds)


def vocabulary() -> dict[str, list[str]]:
    """Every code the console words, by kind (the key prefix)."""
    return {
        "status": list(STATUSES),
        "command": sorted(COMMANDS),
        "result": list(COMMAND_STATUSES),
        "alert": alert_kinds(),
        "followup": list(followups.STATES),
        "tag": sorted(followups.TAGS),
        "device": list(DEVICES),
        "devstate": [s.value for s in DeviceState],
        "devreason": list(DEVICE_REASONS),
        "presence": list(get_args(StateReason)),
        "role": list(ROLES),
        "event": sorted(EVENTS),
        "eventfield": list(EVENT_FIELDS),
        "change": ["added", "changed", "removed"],  # fleet.trust.catalog_review
        "item": ["service", "bundle", "category"],
        "field": list(RESULT_FIELDS),
        "code": list(RESULT_CODES),
        "stats": list(stat_words.KEYS),  # the Statistics charts' words
        "failure": list(stat_words.FAILURES),
        "rollout": list(ROLLOUT_STATES),
        "phase": list(PHASES),  # a station's in a rollout
        "wave": list(WAVES),
        "catalogerror": list(CATALOG_ERRORS),
    }


def keys() -> set[str]:
    """The catalog key of every code (``station:maintenance`` is ``alert.station.maintenance``)."""
    return {f"{kind}.{c.replace(':', '.')}" for kind, codes in vocabulary().items() for c in codes}
