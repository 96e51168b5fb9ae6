"""Which messages of a station stand for an alert: the conditions a health report names
(a frozen UI, paper or toner out or low, a reader, a printer or the voice in fault or offline,
a resident's card left on a reader)
and the alerts that stand for one occurrence (a help request), which acknowledging resolves."""

from __future__ import annotations

from typing import Any

from fleet.console.store import device_items

__all__ = ["health_conditions", "momentary"]

# help requests, and messages a station sent that the edge set aside (fleet.console.edge)
MOMENTARY = frozenset({"help_request", "malformed_messages", "site_mismatch"})


def momentary(kind: str) -> bool:
    """Alerts that stand for one occurrence: acknowledging them resolves them."""
    return kind in MOMENTARY or kind.startswith("station:")


def health_conditions(health: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The alert kinds a health payload stands for, each with its details."""
    found: dict[str, dict[str, Any]] = {}
    if health.get("ui_alive") is False:
        found["ui_frozen"] = {}
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
