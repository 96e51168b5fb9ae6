"""Catalog rollouts in the console's pages and API (the store, the service that drives rollouts
and the checks of requests are :mod:`fleet.console.rollout_service`).

:class:`RolloutRoutes`: ``GET /rollouts`` (the page: a start form for operators and admins, and
every rollout with its waves, updated live), ``POST /rollouts`` and ``POST /api/rollouts``
(start), ``POST [/api]/rollouts/{id}/{pause|resume|abort|retry}`` (retry: a new rollout over
a finished one's failed stations; the API answers with the new one), ``GET /api/rollouts`` and
``GET /api/rollouts/{id}`` (progress). Starting and steering need the ``rollout`` permission
and the CSRF token; every attempt is audited. A console process that does not drive rollouts
leaves the start or the command for the one that does and answers with its outcome.

The page and the errors speak the request's language (:mod:`fleet.console.i18n`): states,
phases, waves and the terminals' failure codes in words (:mod:`fleet.console.words`), a refused
start in the words of :meth:`RequestError.words`, and the reasons the engine gives for aborting
by itself in the reader's language (:func:`reason_words`; stored, the API and the CLI keep them
in English).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from fleet.console import i18n
from fleet.console.catalogs import Shelf
from fleet.console.rollout import (
    FINAL_STATES,
    Policy,
    Progress,
    RolloutError,
)
from fleet.console.rollout_form import form_values, signed_releases
from fleet.console.rollout_service import (
    ACTIONS,
    POLICY_INTS,
    POLICY_PERCENTS,
    DbRolloutStore,
    NotDriving,
    RequestError,
    RolloutService,
    choose_stations,
    desired_from,
    new_rollout_id,
    policy_from,
    rollout_view,
    split_keys,
    start_detail,
)
from fleet.console.routing import Refused, is_api
from fleet.console.store import RolloutRow, Station, audit

if TYPE_CHECKING:
    from fleet.console.app import WebApp

__all__ = [
    "DbRolloutStore",
    "RequestError",
    "RolloutRoutes",
    "RolloutService",
    "choose_stations",
    "desired_from",
    "policy_from",
    "reason_words",
    "rollout_view",
]

LISTED = 50  # rollouts on the page and in GET /api/rollouts

# the reasons fleet.console.rollout gives when it aborts by itself, and the "(by NAME)" the
# pages add to a reason given by hand
FAILURE_RATE = re.compile(
    r"^failure rate (?P<rate>\d+%) > (?P<limit>\d+%) after (?P<results>\d+) results"
    r" in wave (?P<wave>\S+)$"
)
BELOW_TARGET = re.compile(
    r"^wave (?P<wave>\S+) ended at success rate (?P<rate>\d+%) < (?P<target>\d+%)$"
)
BY_HAND = "aborted by hand"
BY = re.compile(r"^(?P<reason>.*) \(by (?P<who>[^()]+)\)$", re.S)


def reason_words(reason: str | None) -> str | None:
    """Why a rollout was aborted, in the request's language: the engine's own reasons and the
    default of an abort by hand are worded, a reason typed by hand is shown as typed."""
    if not reason:
        return reason
    by = BY.match(reason)
    if by:
        return i18n.gettext(
            "rollouts.reason_by", reason=reason_words(by["reason"]) or "", who=by["who"]
        )
    if reason == BY_HAND:
        return i18n.gettext("rollouts.reason_by_hand")
    rate = FAILURE_RATE.match(reason)
    if rate:
        wave = i18n.word("wave", rate["wave"])
        return i18n.gettext("rollouts.reason_failure_rate", **(rate.groupdict() | {"wave": wave}))
    below = BELOW_TARGET.match(reason)
    if below:
        wave = i18n.word("wave", below["wave"])
        return i18n.gettext("rollouts.reason_below_target", **(below.groupdict() | {"wave": wave}))
    return reason


# --- routes --------------------------------------------------------------------------------------


class RolloutRoutes:
    def __init__(self, web: WebApp, service: RolloutService | None) -> None:
        self.web = web
        self.service = service
        folder = web.settings.catalog_repo
        self.shelf = Shelf(folder) if folder is not None else None

    def routes(self) -> list[Route]:
        return [
            Route("/rollouts", self.page, methods=["GET"]),
            Route("/rollouts", self.start, methods=["POST"]),
            Route("/api/rollouts", self.api_list, methods=["GET"]),
            Route("/api/rollouts", self.start, methods=["POST"]),
            Route("/api/rollouts/{rollout_id}", self.api_one, methods=["GET"]),
            Route("/rollouts/{rollout_id}/{action}", self.steer, methods=["POST"]),
            Route("/api/rollouts/{rollout_id}/{action}", self.steer, methods=["POST"]),
        ]

    def _service(self) -> RolloutService:

        if self.service is None:
            raise Refused(503, i18n.gettext("rollouts.error.no_service"))
        return self.service

    async def _execute(
        self, action: str, rollout_id: str, who: str, detail: dict[str, Any]
    ) -> Progress:

        service = self._service()
        try:
            return await run_in_threadpool(service.execute, action, rollout_id, who, "web", detail)
        except NotDriving as err:
            raise Refused(503, i18n.gettext("rollouts.error.not_driven", detail=str(err))) from err
        except RolloutError as err:  # audited by the console that refused it
            raise Refused(409, str(err)) from err

    def _views(self, db: Session) -> list[dict[str, Any]]:
        rows = db.scalars(select(RolloutRow).order_by(RolloutRow.created.desc()).limit(LISTED))
        return [rollout_view(row) for row in rows]

    def _worded(self, db: Session) -> list[dict[str, Any]]:
        """The rollouts as the page shows them: their reasons in the reader's language."""
        return [view | {"reason_words": reason_words(view["reason"])} for view in self._views(db)]

    async def page(self, request: Request) -> Response:
        who = await self.web.require(request)

        def load(db: Session) -> dict[str, Any]:
            sites = db.scalars(select(Station.site).distinct().order_by(Station.site))
            return {"rollouts": self._worded(db), "sites": list(sites)}

        data = await self.web.db(load)
        signed: list[dict[str, Any]] = []
        if self.shelf is not None and request.query_params.get("fragment") != "1":
            signed = await run_in_threadpool(
                signed_releases, self.shelf, self.web.settings.catalog_url
            )
        service = self.service
        ready = service is not None and await run_in_threadpool(service.available)
        return self.web.page(
            request,
            "rollouts.html",
            who,
            live="_rollouts_live.html",
            ready=ready,
            defaults=Policy(),
            signed=signed,
            form=form_values(request.query_params, signed),
            **data,
        )

    async def api_list(self, request: Request) -> Response:
        await self.web.require(request)
        return JSONResponse(await self.web.db(self._views))

    async def api_one(self, request: Request) -> Response:
        await self.web.require(request)
        rollout_id = request.path_params["rollout_id"]
        # the driver's lock is never taken inside a unit of work: the driver saves under it
        row = await self.web.db(lambda db: db.get(RolloutRow, rollout_id))
        if row is None:
            return JSONResponse({"error": i18n.gettext("rollouts.error.no_such")}, 404)
        live = None
        service, final = self.service, row.state in FINAL_STATES
        driver = service.driver if service is not None else None
        if driver is not None and service is not None and service.driving() and not final:
            live = await run_in_threadpool(driver.status, rollout_id)
            if live.state in FINAL_STATES:  # finished meanwhile: saved at once, read it again
                row = await self.web.db(lambda db: db.get(RolloutRow, rollout_id))
                live = None
        view = rollout_view(row, live)
        stations = row.record.get("stations", {})
        view["station_results"] = {k: dict(v) for k, v in stations.items()}
        return JSONResponse(view)

    async def start(self, request: Request) -> Response:

        who = await self.web.require(request, "rollout")
        api = is_api(request)

        async def refuse(status: int, err: RequestError) -> Refused:
            reason = str(err)  # the audit's English
            await self.web.db(lambda db: audit(db, who.name, "rollout", ok=False, reason=reason))
            return Refused(status, err.words())

        try:
            data, policy_data, scope, site, listed = await self._start_fields(request, api)
            desired = desired_from(data)
            policy = policy_from(policy_data)
            keys = await self.web.db(choose_stations, scope, site, listed)
        except RequestError as err:
            raise await refuse(400, err) from err
        rollout_id = new_rollout_id()
        detail = start_detail(desired, keys, policy, scope)
        progress = await self._execute("start", rollout_id, who.name, detail)
        if api:
            return JSONResponse({"id": rollout_id, **progress.to_dict()}, 201)
        return RedirectResponse("/rollouts", 303)

    async def _start_fields(
        self, request: Request, api: bool
    ) -> tuple[dict[str, Any], dict[str, Any], str, str, list[str]]:
        if api:
            try:
                body = await request.json()
            except ValueError as err:
                raise RequestError("rollouts.error.body") from err
            if not isinstance(body, dict):
                raise RequestError("rollouts.error.body")
            policy = body.get("policy") or {}
            if not isinstance(policy, dict):
                raise RequestError("rollouts.error.policy_object")
            stations = body.get("stations") or []
            if isinstance(stations, str):
                stations = split_keys(stations)
            if not isinstance(stations, list) or not all(isinstance(k, str) for k in stations):
                raise RequestError("rollouts.error.stations")
            scope = str(body.get("scope") or ("list" if stations else "all"))
            return body, policy, scope, str(body.get("site") or ""), stations
        form = await request.form()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        names = (*POLICY_INTS, *POLICY_PERCENTS, "percent", "wave_timeout_s", "soak_s")
        policy = {k: fields.get(k) for k in names}
        canaries = split_keys(fields.get("canary_stations", ""))
        if canaries:
            policy["canary_stations"] = canaries
        scope = fields.get("scope", "all")
        return fields, policy, scope, fields.get("site", ""), split_keys(fields.get("stations", ""))

    async def steer(self, request: Request) -> Response:

        who = await self.web.require(request, "rollout")
        rollout_id, action = request.path_params["rollout_id"], request.path_params["action"]
        api = is_api(request)
        if action not in ACTIONS:
            raise Refused(404, i18n.gettext("rollouts.error.no_action", action=action[:16]))
        reason = ""
        if action == "abort":
            if api:
                try:
                    body = await request.json()
                except ValueError:
                    body = {}
                given = body.get("reason") if isinstance(body, dict) else None
            else:
                given = (await request.form()).get("reason")
            text = given.strip()[:200] if isinstance(given, str) else ""
            reason = f"{text or BY_HAND} (by {who.name})"
        exists = await self.web.db(lambda db: db.get(RolloutRow, rollout_id) is not None)
        if not exists:
            raise Refused(404, i18n.gettext("rollouts.error.no_such"))
        detail: dict[str, Any] = {"reason": reason} if reason else {}
        if action == "retry":
            detail["new_id"] = new_rollout_id()
        progress = await self._execute(action, rollout_id, who.name, detail)
        if action == "retry":
            service = self._service()
            fresh = await run_in_threadpool(service.progress, detail["new_id"])
            progress = fresh or progress
        if api:
            return JSONResponse(progress.to_dict())
        return RedirectResponse("/rollouts", 303)
