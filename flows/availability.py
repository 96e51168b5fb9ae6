"""Which services a station can serve right now, and why not.

A service is unavailable, with a translation key the home screen shows, when the journal
cannot be written (nothing would be recorded), outside its hours, when its document provider is
missing or down, or when a device it needs has a named problem (fault, offline). A device that
has not answered yet (unknown) or needs attention soon (degraded) does not make it unavailable:
the driver checks again before it prints, and the resident is told if that fails.

Pure: the caller gives the time, the devices' health and the providers it has.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from flows.catalog import IdentityKind, Output, Service, within
from flows.models import DeviceHealth, DeviceState

DOWN = frozenset({DeviceState.FAULT, DeviceState.OFFLINE})


def needed_devices(service: Service) -> list[str]:
    """The device kinds a service needs, in the order a resident meets them."""
    needs: list[str] = []
    if service.identity is IdentityKind.ID_CARD:
        needs.append("id_reader")
    if service.identity is IdentityKind.SMART_CARD:
        needs.append("smartcard_reader")
    if Output.A4 in service.outputs:
        needs.append("a4_printer")
    if Output.THERMAL in service.outputs:
        needs.append("thermal_printer")
    return needs


def unavailable_reason(
    service: Service,
    *,
    minute_of_day: int,
    journal_ok: bool,
    health: Mapping[str, DeviceHealth],
    providers: Mapping[str, str],
) -> str:
    """ "" when ``service`` can be served, else why not (a translation key).

    ``health`` is by device kind (providers by their name); ``providers`` maps each document
    provider the station has to the name its health is reported under."""
    if not journal_ok:
        return "unavailable.journal"
    if service.hours and not within(service.hours, minute_of_day):
        return "unavailable.hours"
    if service.provider != "none":
        name = providers.get(service.provider)
        if name is None:
            return "unavailable.provider"
        report = health.get(name)
        if report is not None and report.state in DOWN:
            return "unavailable.provider"
    for kind in needed_devices(service):
        report = health.get(kind)
        if report is not None and report.state in DOWN:
            return f"unavailable.{kind}"
    return ""


def unavailable_services(
    services: Iterable[Service],
    *,
    minute_of_day: int,
    journal_ok: bool,
    health: Mapping[str, DeviceHealth],
    providers: Mapping[str, str],
) -> dict[str, str]:
    """Service code → why it cannot be served now, for every service that cannot."""
    out: dict[str, str] = {}
    for service in services:
        reason = unavailable_reason(
            service,
            minute_of_day=minute_of_day,
            journal_ok=journal_ok,
            health=health,
            providers=providers,
        )
        if reason:
            out[service.code] = reason
    return out
