"""Acknowledging an alert, and answering a resident's help request with it (帮办).

A technician acknowledges an alert on the alerts page, through ``POST /api/alerts/{id}/ack`` or
with ``fleet alerts ack ID``. For a ``help_request`` they may add one short answer
(:class:`fleet.protocol.help.HelpReply`): "on the way, about N minutes", "please call NUMBER", or
a free text of at most 60 characters. The answer goes to the station as the ``help_reply``
command; the kiosk shows and speaks it to the resident.

The web and API send the command at once (:meth:`fleet.console.ingest.Ingest.send_command`).
The CLI never speaks MQTT: it records the command as ``queued``, and the console's sweep
(:func:`send_queued`, every ``sweep_s``) claims and publishes it, so an answer given on the
command line reaches the station within a few seconds while a console runs. A queued answer no
console took up before its timeout is ``timed_out``: a resident is waiting, a late "on the way,
10 minutes" would mislead.

One function, :func:`acknowledge`, serves all three ways in, so that they follow the same rules
and leave the same audit: ``acknowledge_alert`` (with the answer, if any) and ``help_reply``
(with the command id). The answer is also kept in the alert's ``detail["reply"]``, for the
alerts page.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from fleet.console.conditions import momentary
from fleet.console.store import Alert, CommandRow, Station, audit, new_command
from fleet.protocol.commands import COMMANDS
from fleet.protocol.help import HELP_REPLY, HelpReply
from fleet.protocol.topics import StationTopics

if TYPE_CHECKING:
    from fleet.console.ingest import Ingest

log = logging.getLogger("fleet.console.help_reply")

__all__ = [
    "HELP_REPLY",
    "Acknowledged",
    "ReplyError",
    "acknowledge",
    "queue_command",
    "reply_from",
    "send_queued",
]

HELP_REQUEST = "help_request"
REPLY_TIMEOUT_S = COMMANDS[HELP_REPLY].timeout_s

Send = Callable[[Session, int, dict[str, Any]], str]
"""Send (or queue) the ``help_reply`` command to a station id; returns the command id."""


class ReplyError(ValueError):
    """The answer is not one a station takes; the message says why, for the technician."""


@dataclass(frozen=True, slots=True)
class Acknowledged:
    found: bool
    command_id: str | None = None


def reply_from(fields: Mapping[str, Any]) -> HelpReply | None:
    """The answer in a form's or a JSON body's fields (``reply`` = ``on_the_way``, ``call`` or
    ``text`` with ``minutes``, ``number`` or ``text``); None if no answer was chosen."""
    kind = str(fields.get("reply") or "").strip()
    if not kind or kind == "none":
        return None
    value = {"on_the_way": "minutes", "call": "number", "text": "text"}.get(kind)
    if value is None:
        raise ReplyError(f"unknown reply {kind[:20]!r}")
    raw = fields.get(value)
    if kind == "on_the_way":
        try:
            raw = int(str(raw).strip())
        except ValueError:
            raise ReplyError("minutes: a whole number from 1 to 240") from None
    try:
        return HelpReply.model_validate({"kind": kind, value: raw})
    except ValidationError as err:
        problem = err.errors()[0]
        where = ".".join(str(p) for p in problem["loc"]) or value
        raise ReplyError(f"{where}: {problem['msg']}") from None


def acknowledge(
    db: Session,
    alert_id: int,
    actor: str,
    reply: HelpReply | None,
    send: Send,
    **how: Any,
) -> Acknowledged:
    """Acknowledge the alert (a momentary one is resolved) and send the answer, if any."""
    alert = db.get(Alert, alert_id)
    if alert is None:
        return Acknowledged(False)
    if reply is not None and alert.kind != HELP_REQUEST:
        raise ReplyError("only a help request is answered")
    now = time.time()
    if alert.acknowledged_at is None:
        alert.acknowledged_at = now
        alert.acknowledged_by = actor
    if momentary(alert.kind) and alert.resolved_at is None:
        alert.resolved_at = now
        alert.active_key = None
    said: dict[str, Any] = {"reply": reply.args()} if reply is not None else {}
    audit(db, actor, "acknowledge_alert", f"alert/{alert_id}", kind=alert.kind, **said, **how)
    if reply is None:
        return Acknowledged(True)
    command_id = send(db, alert.station_id, reply.args())
    alert.detail = {**(alert.detail or {}), "reply": {**reply.args(), "by": actor, "at": now}}
    station = db.get_one(Station, alert.station_id)
    target = f"{station.site}/{station.station}"
    audit(db, actor, HELP_REPLY, target, alert=alert_id, id=command_id, **reply.args(), **how)
    return Acknowledged(True, command_id)


def queue_command(db: Session, station_id: int, args: dict[str, Any], actor: str) -> str:
    """The CLI's :data:`Send`: a ``queued`` command the console's sweep publishes."""
    row = new_command(
        station_id,
        HELP_REPLY,
        args,
        REPLY_TIMEOUT_S,
        actor,
        status="queued",
        note="queued by the command line",
    )
    db.add(row)
    return row.id


def send_queued(ingest: Ingest, now: float) -> int:
    """Publish the queued commands (one console claims each); expire the ones too old to help."""
    sent = 0
    with ingest.store.session() as db:
        queued = list(db.scalars(select(CommandRow).where(CommandRow.status == "queued")))
        for row in queued:
            late = now > row.created_at + row.timeout_s
            claim = db.execute(
                update(CommandRow)
                .where(CommandRow.id == row.id, CommandRow.status == "queued")
                .values(
                    status="timed_out" if late else "sent",
                    updated_at=now,
                    created_at=row.created_at if late else now,
                    note="no console sent it in time" if late else row.note,
                )
                .execution_options(synchronize_session=False)
            )
            if late or claim.rowcount != 1:  # type: ignore[attr-defined]
                continue
            station = db.get_one(Station, row.station_id)
            topic = StationTopics(station.site, station.station).command(row.id)
            ingest.publish_command(topic, row.name, dict(row.args), row.timeout_s)
            sent += 1
    if sent:
        log.info("sent %d queued command(s)", sent)
    return sent
