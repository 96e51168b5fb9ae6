"""Technicians' tools on the command line: read one card (more with the device issues)."""

from __future__ import annotations

import datetime as dt
import json
import queue
import time
from pathlib import Path
from typing import Any

from drivers.pcsc.profiles import SOCIAL_SECURITY, load_profile
from drivers.pcsc.reader import PcscReader
from drivers.sam.reader import SamReader
from flows.errors import ConfigError, DeviceTimeout
from flows.models import (
    DeviceEvent,
    DeviceFault,
    DeviceHealth,
    Identity,
    IdentityRead,
)
from kiosk.shell import printing


def masked(identity: Identity, read_at: dt.datetime) -> dict[str, Any]:
    """What a technician may see of a card: never the whole name or number."""
    return {
        "card_type": identity.card_type.value,
        "name": identity.masked_name,
        "id_number": identity.masked_id_number,
        "valid_from": identity.valid_from.isoformat() if identity.valid_from else None,
        "valid_to": identity.valid_to.isoformat() if identity.valid_to else "长期 (no end)",
        "read_at": read_at.isoformat(timespec="seconds"),
    }


def read_card(
    spec: str, *, baud: int, timeout_s: float, profile: Path | None = None
) -> dict[str, Any]:
    """Wait for one card on the reader named by ``spec`` and read it."""
    kind, _, where = spec.partition(":")
    reader: SamReader | PcscReader
    if kind == "pcsc":
        reader = PcscReader(
            reader_prefix=where,
            profile=load_profile(profile) if profile else SOCIAL_SECURITY,
        )
    elif kind == "sam" and where:
        reader = SamReader(where, baud=baud, poll_s=0.1)
    else:
        raise ConfigError(f"--reader {spec!r}: expected sam:/dev/ttyUSB0, pcsc or pcsc:NAME")
    events: queue.Queue[DeviceEvent] = queue.Queue()
    reader.start(events.put)
    deadline = time.monotonic() + timeout_s
    last_fault: DeviceFault | None = None
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                event = events.get(timeout=left)
            except queue.Empty:
                break
            if isinstance(event, IdentityRead):
                return masked(event.identity, dt.datetime.now())
            if isinstance(event, DeviceFault):
                last_fault = event
    finally:
        reader.stop()
    health = reader.health()
    if last_fault is not None:
        raise DeviceTimeout(
            f"no card read: {last_fault.detail} ({last_fault.translation_key})",
            translation_key=last_fault.translation_key,
        )
    reasons = ", ".join(health.reasons) or "no card placed"
    raise DeviceTimeout(f"no card read within {timeout_s:g} s: reader {health.state}, {reasons}")


def print_card(result: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result, ensure_ascii=False))
        return
    for key in ("card_type", "name", "id_number", "valid_from", "valid_to", "read_at"):
        print(f"{key:<11} {result[key]}")


def print_test(a4: str | None, thermal: str | None, *, timeout_s: float) -> int:
    """Print a test page and/or a test receipt, follow them, say how each ended (0: printed)."""
    from drivers.cups.printer import CupsPrinter
    from drivers.escpos.printer import EscposPrinter
    from flows.catalog import load_catalog
    from kiosk.fonts import find_cjk_font
    from kiosk.shell.catalog_watch import DEMO_CATALOG

    now = dt.datetime.now()
    failures = 0
    if a4:
        queue_name, _, server = a4.partition("@")
        printer = CupsPrinter(queue_name, server=server or None)
        outcome = printing.print_test_page(
            printer, now, load_catalog(DEMO_CATALOG), find_cjk_font(), deadline_s=timeout_s
        )
        health = printer.health()
        print(_report(f"A4 {queue_name}", outcome.ok, outcome.reasons, health))
        failures += not outcome.ok
    if thermal:
        slip = EscposPrinter(thermal)
        outcome = printing.print_test_slip(slip, now, deadline_s=timeout_s)
        health = slip.health()
        print(_report(f"thermal {thermal}", outcome.ok, outcome.reasons, health))
        failures += not outcome.ok
    return 1 if failures else 0


def _report(label: str, ok: bool, reasons: tuple[str, ...], health: DeviceHealth) -> str:
    why = f" ({', '.join(reasons)})" if reasons else ""
    state = health.state.value + (f": {', '.join(health.reasons)}" if health.reasons else "")
    return f"{label}: {'printed' if ok else 'NOT printed'}{why}; printer {state}"
