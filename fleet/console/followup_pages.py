"""The console's Follow-ups page (回访): bad reviews to answer, and the forms that move them on.

- ``GET /followups`` (``?site=&station=&state=``; ``state`` is ``pending`` by default, i.e. not
  yet resolved, or ``all`` or one state): the list, open first and oldest first, each with its
  stars, the tags the resident ticked in words (the user's language; the API gives both), the
  service's name, when it was rated, when it is due (overdue marked) and its history; people
  who may move it on get a form per follow-up with the next states and a note.
  ``GET /api/followups``: the same as JSON, with ``X-Total-Count`` and ``X-Shown-Count`` as
  ``/api/alerts``.
- ``POST /followups/{id}`` (form: ``state``, ``note``, ``back``) and ``POST /api/followups/{id}``
  (JSON ``{"state", "note"}``): one step (:data:`fleet.console.followups.STEPS`), with a note.

Moving one on needs the ``followup`` permission (technicians, operators, admins) and the
session's CSRF token; every change and every refusal is audited (a refused role by
:meth:`fleet.console.app.WebApp.require`). The station page shows its station's pending ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from fleet.console import followups
from fleet.console.routing import Refused, is_api
from fleet.console.store import Station

if TYPE_CHECKING:
    from fleet.console.app import WebApp


class FollowUpRoutes:
    def __init__(self, web: WebApp) -> None:
        self.web = web
        globals_ = web.templates.env.globals  # the station page shows follow-ups too
        globals_["followup_note_max"] = followups.NOTE_MAX

    def routes(self) -> list[Route]:
        return [
            Route("/followups", self.page, methods=["GET"]),
            Route("/followups/{followup_id:int}", self.move, methods=["POST"]),
            Route("/api/followups", self.api_list, methods=["GET"]),
            Route("/api/followups/{followup_id:int}", self.move, methods=["POST"]),
        ]

    async def _load(self, request: Request) -> dict[str, Any]:
        filters = followups.Filters.of(request.query_params)

        def load(db: Session) -> dict[str, Any]:
            shown, total = followups.listing(db, filters)
            places = db.execute(select(Station.site, Station.station)).all()
            return {
                "followups": shown,
                "total": total,
                "filters": filters,
                "sites": sorted({site for site, _ in places}),
            }

        data: dict[str, Any] = await self.web.db(load)
        return data

    async def page(self, request: Request) -> Response:
        who = await self.web.require(request)
        data = await self._load(request)
        back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return self.web.page(
            request,
            "followups.html",
            who,
            states=followups.STATES,
            back=back,
            **data,
        )

    async def api_list(self, request: Request) -> Response:
        await self.web.require(request)
        data = await self._load(request)
        headers = {
            "X-Total-Count": str(data["total"]),
            "X-Shown-Count": str(len(data["followups"])),
        }
        return JSONResponse(data["followups"], headers=headers)

    async def move(self, request: Request) -> Response:
        who = await self.web.require(request, "followup")
        followup_id = int(request.path_params["followup_id"])
        api = is_api(request)
        if api:
            body = await request.json()
            source: Any = body if isinstance(body, dict) else {}
        else:
            source = await request.form()
        state = str(source.get("state") or "")[:32]
        note = str(source.get("note") or "")[: followups.NOTE_MAX * 4]  # the check says how long

        def work(db: Session) -> dict[str, Any] | followups.FollowUpError:
            done = followups.change(db, followup_id, state, note, who.name, "api" if api else "web")
            if isinstance(done, followups.FollowUpError):
                return done
            station = db.get_one(Station, done.station_id)
            return followups.view(done, station, followups.service_names(db), done.updated_at)

        result = await self.web.db(work)
        if isinstance(result, followups.FollowUpError):
            if api:
                return JSONResponse({"error": str(result)}, result.status)
            raise Refused(result.status, str(result), who)
        if api:
            return JSONResponse(result)
        back = str(source.get("back") or "/followups")
        if not back.startswith("/") or back.startswith("//"):
            back = "/followups"
        return RedirectResponse(back, 303)
