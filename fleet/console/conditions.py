"""Which messages of a station stand for an alert: the conditions a health report names
(a frozen UI, paper or toner out or low, a reader, a printer or the voice in fault or offline,
a resident's card left on a reader, a disk nearly full, a clock that is wrong)
and the alerts that stand for one occurrence (a help request), which acknowledging resolves.

A nearly full disk stops a station quietly (the journal cannot write, so no print job, event or
rating can be kept); a wrong clock does so too (certificates and tokens carry dates, tickets
times, and TLS refuses a clock far off). Both are read from every heartbeat: ``disk_free_mib``
below :data:`DISK_LOW_MIB`, and the heartbeat's ``ts`` more than :data:`CLOCK_SKEW_S` from the
console's clock when it arrives (the console's clock is the reference: NTP-synchronised at the
centre). A heartbeat expires at the broker after :data:`~fleet.protocol.models.HEALTH_EXPIRY_S`,
so one delivered late (a console back from a restart) is never taken for a clock behind."""

from __future__ import annotations

from typing import Any

from fleet.console.store import device_items
from fleet.protocol.models import HEALTH_EXPIRY_S

__all__ = ["CLOCK_SKEW_S", "DISK_LOW_MIB", "health_conditions", "momentary"]

DISK_LOW_MIB = 512  # the journal, spooled print jobs and logs need room to keep working
CLOCK_SKEW_S = 2.0 * HEALTH_EXPIRY_S  # a heartbeat arrives within its expiry, or never

# help requests, and messages a station sent that the edge set aside (fleet.console.edge)
MOMENTARY = frozenset({"help_request", "malformed_messages", "site_mismatch"})


def momentary(kind: str) -> bool:
    """Alerts that stand for one occurrence: acknowledging them resolves them."""
    return kind in MOMENTARY or kind.startswith("station:")


def health_conditions(
    health: dict[str, Any], received: float | None = None
) -> dict[str, dict[str, Any]]:
    """The alert kinds a health payload stands for, each with its details; ``received``: when
    the console got it (by its own clock), to judge the station's."""
    found: dict[str, dict[str, Any]] = {}
    if health.get("ui_alive") is False:
        found["ui_frozen"] = {}
    free = health.get("disk_free_mib")
    if isinstance(free, int) and not isinstance(free, bool) and free < DISK_LOW_MIB:
        found["disk_low"] = {"free_mib": free}
    ts = health.get("ts")
    if received is not None and isinstance(ts, int | float) and not isinstance(ts, bool):
        skew = float(ts) - received
        if abs(skew) > CLOCK_SKEW_S:
            found["clock_skew"] = {"skew_s": round(skew)}
    for name, device in device_items(health):
        reasons = {str(r) for r in device.get("reasons") or []}
        for kind in ("paper_out", "paper_low", "toner_out", "toner_low"):
            if kind in reasons:
                found.setdefault(kind, {"devices": []})["devices"].append(name)
        if "card_left_behind" in reasons:  # the reason names no one: the reader only
            found["card_left_behind"] = {"device": name}
        state = device.get("state")
        if "reader" in name and state in ("fault", "offline"):
            found["reader_fault"] = {"device": name, "state": state}
        # a printer or the voice that stops a service; paper and toner have alerts of their own
        if state in ("fault", "offline") and not reasons & {"paper_out", "toner_out"}:
            if "printer" in name:
                found.setdefault("printer_fault", {"devices": []})["devices"].append(name)
            elif "speech" in name:
                found["speech_fault"] = {"device": name, "state": state}
    if "paper_out" in found:  # out is worse than low; one alert per device problem
        found.pop("paper_low", None)
    if "toner_out" in found:
        found.pop("toner_low", None)
    return found
