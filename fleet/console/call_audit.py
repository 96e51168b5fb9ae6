"""The audit of a staff member's call (issue 22): one start and one end per call, whoever
reports it.

A call's end reaches the console two ways: the technician's page (``POST /api/calls/{id}/end``,
:mod:`fleet.console.calls`) and the kiosk's own ``evt/call_end`` (:class:`CallEndEvent`, through
the station's outbox, so it arrives even after an outage). The first to arrive is audited as the
call's ``call_end``; the other finds it and adds nothing. So a call whose technician's browser
died still has its end, with the kiosk's duration and reason (``by: "station"``).

The entries are the technician's (the ``call_offer`` command's actor): the audit answers "who
talked to which station, when, for how long", never what was said.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from fleet.console import call_records
from fleet.console.call_records import RecordingPolicy
from fleet.console.store import AuditEntry, CommandRow, Station, audit
from fleet.protocol.call import CALL_OFFER
from fleet.protocol.models import CallEndEvent

log = logging.getLogger("fleet.console.call_audit")


def entries(db: Session, row: CommandRow, target: str) -> list[AuditEntry]:
    """The ``call_start`` and ``call_end`` entries of the call ``row`` started."""
    found = db.scalars(
        select(AuditEntry).where(
            AuditEntry.action.in_(("call_start", "call_end")),
            AuditEntry.target == target,
            AuditEntry.ts >= row.created_at,
        )
    )
    return [e for e in found if (e.detail or {}).get("id") == row.id]


def target_of(db: Session, row: CommandRow) -> str:
    station = db.get_one(Station, row.station_id)
    return f"{station.site}/{station.station}"


def record_station_end(
    db: Session,
    station_id: int,
    payload: dict[str, Any],
    recording: RecordingPolicy | None = None,
) -> bool:
    """The kiosk's ``call_end`` event: audit the call's end unless it has one; True if audited.
    An event about a call this station was not offered is logged and ignored. The kiosk's word
    on recording wins whoever ended first (:func:`fleet.console.call_records.station_end`)."""
    try:
        event = CallEndEvent.model_validate(payload)
    except ValidationError:
        return False  # the edge checked it; a stored payload from another version
    row = db.get(CommandRow, event.call_id)
    if row is None or row.name != CALL_OFFER or row.station_id != station_id:
        log.warning("a call_end event for a call this station was not offered")
        return False
    target = target_of(db, row)
    call_records.station_end(db, recording or RecordingPolicy(), row, target, event.consent)
    if any(e.action == "call_end" for e in entries(db, row, target)):
        return False
    consent: dict[str, Any] = {"consent": event.consent} if event.consent else {}
    audit(
        db,
        row.actor,
        "call_end",
        target,
        id=row.id,
        staff=row.actor,
        reason=event.reason,
        connected=event.connected,
        duration_s=round(event.duration_s, 1),
        by="station",
        **consent,
    )
    return True
