"""Which services a station can serve now, and why not (flows.availability): pure rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.availability import needed_devices, unavailable_reason, unavailable_services
from flows.catalog import load_catalog
from flows.models import DeviceHealth, DeviceState

CATALOG = load_catalog(Path(__file__).resolve().parents[2] / "assets" / "catalog" / "demo.toml")
SERVICES = {s.code: s for s in CATALOG.services}
CERTIFICATE = SERVICES["social_insurance_certificate"]  # ID card, A4 and thermal, demo provider
TICKET = SERVICES["queue_ticket"]  # no identity, thermal only, no provider
NOON = 12 * 60


def health(**states: DeviceState) -> dict[str, DeviceHealth]:
    return {kind: DeviceHealth(kind, kind, state) for kind, state in states.items()}


def reason(service: object, **kwargs: object) -> str:
    args: dict[str, object] = {
        "minute_of_day": NOON,
        "journal_ok": True,
        "health": {},
        "providers": {CERTIFICATE.provider: "provider_demo"},
    }
    return unavailable_reason(service, **(args | kwargs))  # type: ignore[arg-type]


def test_a_station_in_good_health_serves_everything() -> None:
    ok = health(id_reader=DeviceState.OK, a4_printer=DeviceState.OK, thermal_printer=DeviceState.OK)
    assert reason(CERTIFICATE, health=ok) == "" and reason(TICKET, health=ok) == ""


@pytest.mark.parametrize(
    ("kind", "state", "certificate", "ticket"),
    [
        ("a4_printer", DeviceState.FAULT, "unavailable.a4_printer", ""),
        ("a4_printer", DeviceState.OFFLINE, "unavailable.a4_printer", ""),
        (
            "thermal_printer",
            DeviceState.FAULT,
            "unavailable.thermal_printer",
            "unavailable.thermal_printer",
        ),
        ("id_reader", DeviceState.OFFLINE, "unavailable.id_reader", ""),
        ("a4_printer", DeviceState.DEGRADED, "", ""),  # paper low: still serves
        ("a4_printer", DeviceState.UNKNOWN, "", ""),  # not answered yet: checked again at print
    ],
)
def test_a_device_with_a_named_problem_takes_down_what_needs_it(
    kind: str, state: DeviceState, certificate: str, ticket: str
) -> None:
    states = health(**{kind: state})
    assert reason(CERTIFICATE, health=states) == certificate
    assert reason(TICKET, health=states) == ticket


def test_journal_hours_and_provider() -> None:
    assert reason(TICKET, journal_ok=False) == "unavailable.journal"
    night = TICKET.model_copy(update={"hours": "06:00-23:00"})
    assert reason(night, minute_of_day=23 * 60 + 30) == "unavailable.hours"
    assert reason(night, minute_of_day=7 * 60) == ""
    assert reason(CERTIFICATE, providers={}) == "unavailable.provider"
    down = {"provider_demo": DeviceHealth("provider_demo", "provider", DeviceState.OFFLINE)}
    assert reason(CERTIFICATE, health=down) == "unavailable.provider"


def test_the_list_of_unavailable_services_names_each_with_its_reason() -> None:
    out = unavailable_services(
        CATALOG.services,
        minute_of_day=NOON,
        journal_ok=True,
        health=health(thermal_printer=DeviceState.FAULT),
        providers={"demo": "provider_demo"},
    )
    assert out[TICKET.code] == "unavailable.thermal_printer"
    assert set(out.values()) == {"unavailable.thermal_printer"}
    assert needed_devices(CERTIFICATE) == ["id_reader", "a4_printer", "thermal_printer"]
