"""Typed payloads of every fleet message, with their limits.

One model per message kind (DESIGN.md's table): what a station sends (``state``, ``birth``,
``health``, ``evt/{type}``, ``reported``, ``cmd/{id}/result``) and what it receives
(``desired``, ``cmd/{id}``, the console's own ``state``). Fields, types, ranges and sizes are
stated once, here. Models reject fields they do not know (``extra="forbid"``): a field renamed on
one side and not the other is an error in the tests, not a silent gap on the console.

:func:`station_message` reads a station's message by its topic: the way a test (and, with the
console's edge checks, the console) tells a well-formed message from a broken one.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from flows.models import DeviceState

MAX_SESSION = 2**63 - 1  # SQLite's INTEGER: a session counter above it cannot be stored
MAX_PAYLOAD_BYTES = 256 * 1024
"""The largest message payload either side takes: a command result with a screenshot (the kiosk
downscales it to fit) or a log tail (128 KiB); events are ~1 KiB, a health ~2 KiB. The console
sets a larger one aside unread; the agent does not send one."""
MAX_PACKET_BYTES = MAX_PAYLOAD_BYTES + 1024
"""MQTT v5 Maximum Packet Size announced at CONNECT by the console and the agent: the payload
with room for the topic and properties. The shipped broker configuration says the same
(``max_packet_size`` in ``assets/mosquitto/mosquitto.conf``; a test holds them equal)."""
SITE_PATTERN = r"^[a-z0-9][a-z0-9-]{1,62}$"  # kiosk.config's [station] site
STATION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"  # a certificate's CN (fleet.trust.pki)
Name = Annotated[str, Field(min_length=1, max_length=64)]
SiteName = Annotated[str, Field(pattern=SITE_PATTERN)]
StationName = Annotated[str, Field(pattern=STATION_PATTERN)]
Text = Annotated[str, Field(max_length=500)]
Count = Annotated[int, Field(ge=0, le=MAX_SESSION)]

STATION_DEVICES = ("id_reader", "a4_printer", "thermal_printer", "speech")
"""The devices every station reports by these names (the drivers' default names)."""

Capability = Literal["id_card", "a4", "thermal", "voice", "call"]
CAPABILITIES: tuple[Capability, ...] = ("id_card", "a4", "thermal", "voice")
"""Every station's; ``call`` is added where the kiosk has call audio (its ``[call]`` devices)."""
CALL_META = "call_audio"
"""The journal's meta key where the kiosk notes whether it can take a call ("1") or not ("0");
the agent reports ``call`` among the birth's capabilities from it."""
HEALTH_EXPIRY_S = 60
"""A heartbeat left undelivered this long is dropped by the broker (MQTT 5 message expiry): a
console coming back gets its stations' present, not their past, and can judge their clocks by
when a heartbeat arrives (fleet.console.conditions)."""
MAX_HEALTH_INTERVAL_S = 3600.0  # kiosk.config's bound (a bench's "quiet" 1e6 s is sent as this)


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def dump(self) -> dict[str, Any]:
        """The JSON object to send (``fleet.protocol.topics.dumps`` encodes it)."""
        return self.model_dump(mode="json")


class Timestamped(Message):
    ts: float

    @field_validator("ts")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value) or value < 0:
            raise ValueError("ts must be a finite time in seconds since the epoch")
        return value


# --- a station's presence -------------------------------------------------------------------------


StateReason = Literal["connect", "lost", "shutdown"]


class State(Timestamped):
    """``state``: retained, and the Will. ``session`` tells a late Will from a current one."""

    online: bool
    session: Count
    reason: StateReason


class Birth(Timestamped):
    """``birth``: retained; what the station is and runs."""

    station: StationName
    site: SiteName
    app_version: Name
    catalog_version: int | None
    hardware: dict[Name, str | bool] = Field(max_length=16)
    capabilities: list[Capability] = Field(max_length=8)
    cert_expiry: Name | None  # ISO 8601
    session: Count


class DeviceReport(Message):
    state: DeviceState
    reasons: list[Name] = Field(max_length=16)


class Health(Timestamped):
    """``health``: every ``interval_s`` and on change."""

    seq: Count
    uptime: float = Field(ge=0)
    ui_alive: bool
    devices: dict[Name, DeviceReport] = Field(max_length=32)
    disk_free_mib: Count
    last_txn_ts: float | None
    outbox: Count
    interval_s: float = Field(gt=0, le=MAX_HEALTH_INTERVAL_S)


# --- events (evt/{type}): from the outbox, each with its id for de-duplication ----------------


class Event(Timestamped):
    event_id: Name
    station: StationName
    backfill: bool


class TransactionEvent(Event):
    txn_id: Name
    service: Annotated[str, Field(max_length=64)]  # "" while no service was picked
    outcome: Literal["completed", "abandoned", "failed"]
    outputs: list[Name] = Field(max_length=8)
    abandoned_state: Name | None
    reason: Name | None
    lang: Literal["zh", "en"]
    elder: bool
    duration_s: float = Field(ge=0)


class RatingEvent(Event):
    txn_id: Name
    service: Annotated[str, Field(max_length=64)]
    rating: int = Field(ge=1, le=5)
    tags: list[Name] = Field(max_length=16)


class HelpEvent(Event):
    screen: Name
    txn_id: Name | None


class CallEndEvent(Event):
    """``evt/call_end``: the kiosk's own record of a staff member's call ending (issue 22), so
    that the console's audit has every call's end even when the technician's page died first.
    ``call_id`` is the ``call_offer`` command's id; no name of anyone is in it."""

    call_id: Name
    reason: Literal["resident", "staff", "dropped", "failed"]
    connected: bool
    duration_s: float = Field(ge=0, le=86400)
    consent: Literal["", "yes", "no"] = ""
    """Recording (a deployment's choice, ``CallOffer.record``): "" not asked (the call was not
    to be recorded), ``yes`` the resident agreed on screen, ``no`` declined. The console keeps a
    recording only of a call whose kiosk says ``yes``."""


class AlertEvent(Event):
    kind: Name
    detail: dict[Name, Any] = Field(max_length=16)


class CsrEvent(Event):
    csr: Annotated[str, Field(max_length=8192)]
    current_serial: Name
    current_not_after: Name


CALL_END_EVENT = "call_end"  # a staff member's call ended (kiosk.shell.call)
CSR_EVENT = "csr"  # a station asks for a new certificate (fleet.agent.renewal)

STATION_ALERT_KINDS = frozenset(
    {
        "maintenance",  # kiosk.shell.maintenance
        "print_failed",  # statedir.print_jobs
        "print_unknown",
        "disk_low",  # kiosk.shell.diskguard
        "disk_ok",
        "certificate_renewal_failed",  # fleet.agent.renewal
        "event_too_large",  # fleet.agent: an event over MAX_PAYLOAD_BYTES, not sent
    }
)
"""The kinds of a station's own ``alert`` events the console names; any other kind is raised as
``station:other`` (with the kind in its detail), so one station cannot open a thousand alerts or
metric series by inventing kinds."""

EVENTS: dict[str, type[Event]] = {
    "transaction": TransactionEvent,
    "rating": RatingEvent,
    "help": HelpEvent,
    "alert": AlertEvent,
    CSR_EVENT: CsrEvent,
    CALL_END_EVENT: CallEndEvent,
}


# --- catalogs ---------------------------------------------------------------------------------


class DesiredCatalog(Message):
    target: Name
    version: int = Field(ge=1)
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    length: int = Field(ge=0)


class Desired(Message):
    """``desired``: retained, from the console; the station ignores a rev it has handled."""

    rev: int = Field(ge=1)
    catalog: DesiredCatalog | None = None
    metadata_url: Annotated[str, Field(max_length=500)] | None = None
    targets_url: Annotated[str, Field(max_length=500)] | None = None


class Reported(Timestamped):
    """``reported``: retained; how the station's catalog update went."""

    rev: int = Field(ge=0)
    rev_applied: int = Field(ge=0)
    catalog_version: int | None
    # staged: swapped into the store, waiting for the end of a session; applied: serving
    phase: Literal["downloading", "verified", "staged", "applied", "failed"]
    error: Name | None
    detail: Text | None


# --- commands ---------------------------------------------------------------------------------


class Command(Message):
    """``cmd/{id}``: from the console, with a message expiry."""

    name: Name
    args: dict[Name, Any] = Field(max_length=16)
    timeout_s: float = Field(ge=1, le=3600)


class CommandResult(Timestamped):
    """``cmd/{id}/result``: ``accepted`` at once, then one final status."""

    id: Name
    name: Name
    station: Name
    status: Literal["accepted", "succeeded", "failed", "timed_out"]
    repeat: bool
    detail: dict[Name, Any] = Field(max_length=32)


_FIXED: dict[str, type[Message]] = {
    "state": State,
    "birth": Birth,
    "health": Health,
    "reported": Reported,
}


class ConsoleState(Message):
    """``kiosk/v1/console/state``: the console's own presence (and its Will, which is set
    before the connection and so carries no time)."""

    online: bool
    ts: float | None = None


def station_model(rest: str) -> type[Message] | None:
    """The model of what a station sends on the topic below its root; None for a topic that is
    not one of the protocol's."""
    parts = rest.split("/")
    if len(parts) == 1:
        return _FIXED.get(rest)
    if len(parts) == 2 and parts[0] == "evt":
        return EVENTS.get(parts[1])
    if len(parts) == 3 and parts[0] == "cmd" and parts[2] == "result" and 0 < len(parts[1]) <= 64:
        return CommandResult
    return None


def station_message(rest: str, payload: dict[str, Any]) -> Message:
    """The model of a station's message by the topic below its root (``health``,
    ``evt/rating``, ``cmd/ID/result``); ``ValueError`` (pydantic's ValidationError is one)
    when the payload does not fit or the topic is not one a station sends on."""
    model = station_model(rest)
    if model is None:
        raise ValueError(f"no station message is sent on {rest!r}")
    return model.model_validate(payload)
