"""The console's side of a call to a station (远程帮办): the call page and the signalling relay.

The console carries no media and runs no WebRTC stack: it relays the technician's offer to the
station as the ``call_offer`` command (:mod:`fleet.protocol.call`) and the kiosk's answer back,
and it audits the call. Every route needs the ``call`` permission (technicians, admins) and the
session's CSRF token for a POST, as every other command; a refused role is audited by
:meth:`fleet.console.app.WebApp.require`.

- ``GET /stations/{site}/{station}/call``: the call page (``call.html``, ``static/call.js``): the
  browser asks for the microphone, makes the offer, and shows the call's state.
- ``POST /api/stations/{site}/{station}/calls`` (JSON ``{"sdp"}``): sends the offer with the
  technician's name as the staff member's display name; ``202 {"id"}``. The page polls
  ``/api/commands/{id}`` for the answer (``succeeded``, ``detail.sdp``) or the refusal
  (``failed``, ``detail.reason``: ``no_help_request`` when the resident did not ask for help).
- ``POST /api/calls/{id}/connected``: the page's media and data channel are up: ``call_start``
  is audited (once).
- ``POST /api/calls/{id}/screen``: while the call is connected, a ``screenshot`` of the kiosk's
  current screen (masked as on the kiosk), which the page asks for every few seconds.
- ``POST /api/calls/{id}/end`` (JSON ``{"reason"}``: ``staff``, ``resident``, ``dropped``,
  ``failed``): ``call_end`` is audited with the call's duration (from ``call_start``; 0 if it
  never connected). Only the technician who made the call reports on it. The kiosk reports the
  end too (``evt/call_end``, :mod:`fleet.console.call_audit`): whichever comes first is the
  call's one ``call_end``; the other is answered ``409``.

Recording, when a deployment enables it, is :mod:`fleet.console.call_record_pages`: the offer
then says ``record`` and the kiosk asks the resident's consent. Otherwise nothing of the call's
content reaches the console; its audit holds the station, the technician,
times, the duration and how it ended.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fleet.console import call_audit, views
from fleet.console.routing import Refused
from fleet.console.store import CommandRow, audit
from fleet.protocol.call import (
    ANSWER_TIMEOUT_S,
    CALL_OFFER,
    RECORD_CHUNK_S,
    SCREEN_EVERY_S,
    SCREEN_TIMEOUT_S,
    CallOffer,
    ScreenArgs,
)

if TYPE_CHECKING:
    from fleet.console.app import WebApp

PERMISSION = "call"
END_REASONS = frozenset({"staff", "resident", "dropped", "failed"})


class CallRoutes:
    def __init__(self, web: WebApp, ice_servers: list[dict[str, Any]] | None = None) -> None:
        self.web = web
        self.ice_servers = ice_servers or []

    def routes(self) -> list[Route]:
        return [
            Route("/stations/{site}/{station}/call", self.page, methods=["GET"]),
            Route("/api/stations/{site}/{station}/calls", self.offer, methods=["POST"]),
            Route("/api/calls/{command_id}/connected", self.connected, methods=["POST"]),
            Route("/api/calls/{command_id}/end", self.end, methods=["POST"]),
            Route("/api/calls/{command_id}/screen", self.screen, methods=["POST"]),
        ]

    async def page(self, request: Request) -> Response:
        who = await self.web.require(request, PERMISSION)
        site, station = request.path_params["site"], request.path_params["station"]
        known = await self.web.db(lambda db: views.find_station(db, site, station) is not None)
        if not known:
            raise Refused(404, "no such station", who)
        return self.web.page(
            request,
            "call.html",
            who,
            site=site,
            station=station,
            ice_servers=self.ice_servers,
            screen_every_ms=int(SCREEN_EVERY_S * 1000),
            recording=self.web.ingest.settings.recording.on,
            recording_days=self.web.ingest.settings.recording.days,
            record_chunk_ms=int(RECORD_CHUNK_S * 1000),
        )

    async def offer(self, request: Request) -> Response:
        who = await self.web.require(request, PERMISSION)
        site, station = request.path_params["site"], request.path_params["station"]
        body = await request.json()
        recording = self.web.ingest.settings.recording
        try:
            offer = CallOffer.model_validate(
                {
                    "sdp": body.get("sdp") if isinstance(body, dict) else None,
                    "staff": who.name,
                    "record": recording.on,  # the kiosk asks the resident's consent
                    "record_days": recording.days if recording.on else 0,  # and says this
                }
            )
        except ValidationError:
            raise Refused(400, "not a WebRTC offer", who) from None

        def send(db: Session) -> str | None:
            row = views.find_station(db, site, station)
            if row is None:
                return None
            command_id = self.web.ingest.send_command(
                row.id, CALL_OFFER, offer.args(), ANSWER_TIMEOUT_S, who.name, db=db
            )
            audit(db, who.name, "call_offer", f"{site}/{station}", id=command_id)
            return command_id

        command_id: str | None = await self.web.db(send)
        if command_id is None:
            raise Refused(404, "no such station", who)
        return JSONResponse({"id": command_id}, 202)

    def _started(self, db: Session, row: CommandRow, target: str) -> float | None:
        mine = call_audit.entries(db, row, target)
        if any(e.action == "call_end" for e in mine):
            raise Refused(409, "the call has ended")
        return next((e.ts for e in mine if e.action == "call_start"), None)

    async def connected(self, request: Request) -> Response:
        who = await self.web.require(request, PERMISSION)

        def start(db: Session) -> None:
            row, target = self._call_sync(request, who.name, db)
            if self._started(db, row, target) is None:
                audit(db, who.name, "call_start", target, id=row.id, staff=who.name)

        await self.web.db(start)
        return JSONResponse({"ok": True})

    async def end(self, request: Request) -> Response:
        who = await self.web.require(request, PERMISSION)
        body = await request.json() if await request.body() else {}
        reason = str(body.get("reason", "")) if isinstance(body, dict) else ""
        if reason not in END_REASONS:
            raise Refused(400, f"reason: one of {', '.join(sorted(END_REASONS))}", who)

        def finish(db: Session) -> float:
            row, target = self._call_sync(request, who.name, db)
            started = self._started(db, row, target)
            duration = 0.0 if started is None else round(time.time() - started, 1)
            audit(
                db,
                who.name,
                "call_end",
                target,
                id=row.id,
                staff=who.name,
                reason=reason,
                connected=started is not None,
                duration_s=duration,
            )
            return duration

        duration: float = await self.web.db(finish)
        return JSONResponse({"duration_s": duration})

    async def screen(self, request: Request) -> Response:
        """The kiosk's current screen for the technician guiding the resident: a ``screenshot``
        command naming the call (:class:`fleet.protocol.call.ScreenArgs`), sent only while the
        technician's own call is connected and not ended; ``202 {"id"}``, the page polls it and
        shows ``/stations/{site}/{station}/screenshots/{id}.png``. Not audited one by one (one
        every few seconds): the call's start and end say when the screen could be seen."""
        who = await self.web.require(request, PERMISSION)

        def send(db: Session) -> str:
            row, target = self._call_sync(request, who.name, db)
            if self._started(db, row, target) is None:
                raise Refused(409, "the call is not connected")
            args = ScreenArgs(call=row.id).args()
            return self.web.ingest.send_command(
                row.station_id, "screenshot", args, SCREEN_TIMEOUT_S, who.name, db=db
            )

        command_id: str = await self.web.db(send)
        return JSONResponse({"id": command_id}, 202)

    def _call_sync(self, request: Request, who_name: str, db: Session) -> tuple[CommandRow, str]:
        row = db.get(CommandRow, request.path_params["command_id"])
        if row is None or row.name != CALL_OFFER:
            raise Refused(404, "no such call")
        if row.actor != who_name:
            raise Refused(403, "another technician's call")
        return row, call_audit.target_of(db, row)
