"""The console's routes for recording a call with the resident's consent (issue 22); the files
and the rules are :mod:`fleet.console.call_records`.

The technician's page (``call.js``) calls, with the ``call`` permission and the session's CSRF
token, only for its own call (another technician's: ``403``; no such call: ``404``):

- ``POST /api/calls/{id}/consent`` (JSON ``{"consent": "yes"|"no"}``): what the kiosk said on the
  data channel, relayed; audited once as ``call_consent``. ``200 {"consent"}``; ``409`` when
  this console does not record, the call was not offered to be recorded, it has ended, or a
  different answer was relayed before; ``400`` for anything but yes or no.
- ``POST /api/calls/{id}/recording?seq=N`` (body: ``audio/webm``, at most
  :data:`~fleet.console.call_records.MAX_PIECE`): piece N of the recording, 0, 1, 2, ... in
  order. ``200 {"seq", "appended", "bytes"}`` (a piece stored before: ``appended`` false); ``409``
  for a gap, recording off, a call not offered to be recorded or ended more than
  :data:`~fleet.console.call_records.LATE_S` ago; ``403`` without the resident's consent (none
  relayed, or the kiosk's end event did not say yes); ``413`` for a piece or a call too large;
  ``415`` for another content type; ``400`` for a bad ``seq``.

Listening is for the ``recordings`` permission (admins) only:

- ``GET /calls``: the recent calls from the audit (station, staff, start, duration, how it
  ended, consent, the recording's size and a link);
- ``GET /calls/{id}/recording.webm``: the recording, ``audio/webm``; each fetch audited
  ``recording_fetched``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from fleet.console import call_audit, call_records
from fleet.console.call_records import LATE_S, MAX_PIECE, RecordingError, RecordingPolicy
from fleet.console.routing import Refused
from fleet.console.store import CommandRow, audit
from fleet.protocol.call import CALL_OFFER

if TYPE_CHECKING:
    from fleet.console.app import WebApp

CALL = "call"
LISTEN = "recordings"
CONSENTS = frozenset({"yes", "no"})


class CallRecordRoutes:
    def __init__(self, web: WebApp) -> None:
        self.web = web

    @property
    def policy(self) -> RecordingPolicy:
        return self.web.ingest.settings.recording

    def routes(self) -> list[Route]:
        return [
            Route("/api/calls/{command_id}/consent", self.consent, methods=["POST"]),
            Route("/api/calls/{command_id}/recording", self.piece, methods=["POST"]),
            Route("/calls", self.listing, methods=["GET"]),
            Route("/calls/{command_id}/recording.webm", self.fetch, methods=["GET"]),
        ]

    # --- the technician's page -----------------------------------------------------------------

    def _recorded_call(self, db: Session, command_id: str, who: str) -> tuple[CommandRow, str]:
        """The technician's own call, offered to be recorded by a console that records."""
        row = db.get(CommandRow, command_id)
        if row is None or row.name != CALL_OFFER:
            raise Refused(404, "no such call")
        if row.actor != who:
            raise Refused(403, "another technician's call")
        if not self.policy.on:
            raise Refused(409, "this console does not record calls")
        if not row.args.get("record"):
            raise Refused(409, "this call was not offered to be recorded")
        return row, call_audit.target_of(db, row)

    async def consent(self, request: Request) -> Response:
        who = await self.web.require(request, CALL)
        try:
            body = await request.json() if await request.body() else {}
        except ValueError:
            body = {}
        said = str(body.get("consent", "")) if isinstance(body, dict) else ""
        if said not in CONSENTS:
            raise Refused(400, "consent: yes or no", who)

        def relay(db: Session) -> None:
            row, target = self._recorded_call(db, request.path_params["command_id"], who.name)
            if call_records.call_entries(db, row, ("call_end",)):
                raise Refused(409, "the call has ended")
            before = call_records.call_entries(db, row, ("call_consent",))
            if before:
                if (before[0].detail or {}).get("consent") != said:
                    raise Refused(409, "the resident's answer was relayed already")
                return
            audit(db, who.name, "call_consent", target, id=row.id, consent=said)

        await self.web.db(relay)
        return JSONResponse({"consent": said})

    async def piece(self, request: Request) -> Response:
        who = await self.web.require(request, CALL)
        seq_text = request.query_params.get("seq", "")
        if not seq_text.isdigit() or len(seq_text) > 6:
            raise Refused(400, "seq: the piece's number, 0, 1, 2, ...", who)
        seq = int(seq_text)
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "audio/webm":
            raise Refused(415, "a piece of the recording is audio/webm", who)
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > MAX_PIECE:
            raise Refused(413, "a piece of the recording is too large", who)
        chunks = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_PIECE:
                raise Refused(413, "a piece of the recording is too large", who)
            chunks.append(chunk)
        data = b"".join(chunks)
        if not data:
            raise Refused(400, "an empty piece", who)
        folder = self.policy.folder

        def store(db: Session) -> tuple[bool, int]:
            row, _ = self._recorded_call(db, request.path_params["command_id"], who.name)
            assert folder is not None
            if call_records.station_said_no(db, row):
                raise Refused(403, "the station did not confirm the resident's consent")
            consents = call_records.call_entries(db, row, ("call_consent",))
            if not consents or (consents[0].detail or {}).get("consent") != "yes":
                raise Refused(403, "the resident has not consented to recording")
            ends = call_records.call_entries(db, row, ("call_end",))
            if ends and time.time() - ends[0].ts > LATE_S:
                raise Refused(409, "the call ended too long ago")
            try:
                appended = call_records.append(folder, row.id, seq, data)
            except RecordingError as err:
                raise Refused(err.status, err.reason) from None
            kept = call_records.stored(folder, row.id)
            return appended, kept[1] if kept else 0

        appended, total = await self.web.db(store)
        await self.web.db(self._after_station_no, request.path_params["command_id"])
        return JSONResponse({"seq": seq, "appended": appended, "bytes": total})

    def _after_station_no(self, db: Session, command_id: str) -> None:
        """The kiosk's "no" may have been taken while a piece was being written: it wins."""
        row = db.get(CommandRow, command_id)
        folder = self.policy.folder
        if row is not None and folder is not None and call_records.station_said_no(db, row):
            call_records.delete(folder, row.id)

    # --- listening -----------------------------------------------------------------------------

    async def listing(self, request: Request) -> Response:
        who = await self.web.require(request, LISTEN)
        folder = self.policy.folder

        def load(db: Session) -> list[dict[str, Any]]:
            return call_records.calls(db, folder)

        listed = await self.web.db(load)
        return self.web.page(
            request,
            "calls.html",
            who,
            calls=listed,
            recording=self.policy.on,
            days=self.policy.days,
        )

    async def fetch(self, request: Request) -> Response:
        who = await self.web.require(request, LISTEN)
        command_id = request.path_params["command_id"]
        folder = self.policy.folder

        def find(db: Session) -> int | None:
            row = db.get(CommandRow, command_id)
            if row is None or row.name != CALL_OFFER or folder is None:
                return None
            kept = call_records.stored(folder, row.id)
            if kept is None:
                return None
            target = call_audit.target_of(db, row)
            audit(db, who.name, "recording_fetched", target, id=row.id, bytes=kept[1])
            return kept[1]

        size: int | None = await self.web.db(find)
        if size is None or folder is None:
            raise Refused(404, "no recording of this call", who)
        return StreamingResponse(
            call_records.read(folder, command_id),
            media_type="audio/webm",
            headers={
                "Content-Length": str(size),
                "Content-Disposition": f'inline; filename="call-{command_id}.webm"',
            },
        )
