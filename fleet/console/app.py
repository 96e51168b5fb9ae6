"""The console's web side: Starlette routes, Jinja2 pages, live updates (SSE), the JSON API.

Every route but ``/login``, ``/static`` and the public verification page ``/v/<token>``
(:mod:`fleet.console.verify_pages`) needs a session (pages redirect to the login, the API
and ``/events`` answer 401); ``/metrics`` also takes a bearer token for Prometheus. Every
state-changing request needs the session's CSRF token (:mod:`fleet.console.auth`); failed logins
slow further ones down (:mod:`fleet.console.throttle`). Pages are rendered on the server;
``static/console.js`` listens to ``/events`` and, when the server says something changed, fetches
the page's live part again (``?fragment=1``) and merges it in place: only what changed is
written, a field being edited and a list opened are left alone.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import (
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from fleet.console import auth as auth
from fleet.console import help_reply, i18n, overview
from fleet.console import throttle as throttle
from fleet.console import views as views
from fleet.console.admin import AdminRoutes
from fleet.console.call_record_pages import CallRecordRoutes
from fleet.console.calls import CallRoutes
from fleet.console.catalogs import CatalogRoutes
from fleet.console.enrolment import EnrolRoutes
from fleet.console.followup_pages import FollowUpRoutes
from fleet.console.ingest import Ingest
from fleet.console.rollout_pages import RolloutRoutes, RolloutService
from fleet.console.routing import Refused, is_api
from fleet.console.stats import StatsRoutes
from fleet.console.store import CommandRow, Store, audit
from fleet.console.verify_pages import VerifyRoutes
from fleet.console.zone import LocalTime
from fleet.protocol.commands import COMMANDS as PROTOCOL_COMMANDS

log = logging.getLogger("fleet.console.web")
TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"

COMMANDS: dict[str, float] = {
    name: spec.timeout_s for name, spec in PROTOCOL_COMMANDS.items() if spec.by_hand
}
"""Commands a technician may send, with their default timeouts (fleet.protocol.commands)."""


@dataclass(frozen=True)
class WebSettings:
    secure_cookies: bool = True  # False only for plain HTTP on loopback (development)
    metrics_token: str | None = None
    token_keys_dir: Path | None = None  # *.pub station document-signing keys
    crl_file: Path | None = None  # the CRL a revocation rewrites (mosquitto's crlfile)
    live_poll_s: float = 1.0
    session_ttl_s: float = auth.SESSION_TTL_S
    catalog_repo: Path | None = None  # the TUF catalog repository the console signs into
    catalog_url: str | None = None  # where that repository is served (fills in rollouts)
    ice_servers: list[dict[str, Any]] | None = None  # STUN/TURN for calls (docs/deploy.md)


def no_station() -> str:
    """What a page or the API says of a station the console does not know."""
    return i18n.gettext("error.no_station")


class WebApp:
    def __init__(
        self,
        store: Store,
        ingest: Ingest,
        settings: WebSettings,
        registry: CollectorRegistry,
        rollouts: RolloutService | None = None,
    ) -> None:
        self.store = store
        self.ingest = ingest
        self.settings = settings
        self.registry = registry
        self.timers = ingest.settings.timers
        self.templates = Jinja2Templates(directory=str(TEMPLATE_DIR))
        self.local_time = LocalTime(ingest.settings.timezone)  # the stations' zone, named
        self.templates.env.filters["when"] = self.local_time.when
        self.templates.env.filters["ago"] = views.ago
        i18n.install(self.templates.env)
        self.throttle = throttle.Throttle()
        admin = AdminRoutes(self)
        routes = [
            Route("/login", self.login_form, methods=["GET"]),
            Route("/login", self.login, methods=["POST"]),
            Route("/logout", self.logout, methods=["POST"]),
            Route("/lang", i18n.switch(settings.secure_cookies)),
            Route("/", self.fleet_page),
            Route("/events", self.events),
            Route("/alerts", self.alerts_page),
            Route("/alerts/{alert_id:int}/ack", self.acknowledge, methods=["POST"]),
            Route("/stations/{site}/{station}", self.station_page),
            Route("/stations/{site}/{station}/commands", self.command, methods=["POST"]),
            Route("/stations/{site}/{station}/screenshots/{command_id}.png", self.screenshot),
            Route("/api/stations", self.api_stations),
            Route("/api/stations/{site}/{station}", self.api_station),
            Route("/api/stations/{site}/{station}/commands", self.command, methods=["POST"]),
            Route("/api/commands/{command_id}", self.api_command),
            Route("/api/alerts", self.api_alerts),
            Route("/api/alerts/{alert_id:int}/ack", self.acknowledge, methods=["POST"]),
            Route("/metrics", self.metrics),
            *admin.routes(),
            *StatsRoutes(self).routes(),
            *RolloutRoutes(self, rollouts).routes(),
            *CatalogRoutes(self).routes(),
            *EnrolRoutes(self).routes(),
            *FollowUpRoutes(self).routes(),
            *VerifyRoutes(self).routes(),
            *CallRoutes(self, settings.ice_servers).routes(),
            *CallRecordRoutes(self).routes(),
            Mount("/static", StaticFiles(directory=str(TEMPLATE_DIR / "static")), name="static"),
        ]
        self.app = Starlette(
            routes=routes,
            exception_handlers={Refused: self._refused},
            middleware=[Middleware(i18n.LanguageMiddleware)],
        )

    # --- plumbing ------------------------------------------------------------------------------

    def db(self, fn: Callable[..., Any], *args: Any) -> Awaitable[Any]:
        """Run ``fn(db, *args)`` in one unit of work on a worker thread."""

        def work() -> Any:
            with self.store.session() as db:
                return fn(db, *args)

        return run_in_threadpool(work)

    async def require(self, request: Request, permission: str = "view") -> auth.Principal:
        token = request.cookies.get(auth.SESSION_COOKIE)
        who: auth.Principal | None = await self.db(auth.principal, token)
        if who is None:
            raise Refused(401, "login")
        if request.method not in ("GET", "HEAD"):
            try:
                await self._check_csrf(request, who.csrf)
            except Refused as refused:
                raise Refused(refused.status, refused.reason, who) from None
        if not who.may(permission):
            await self.db(
                lambda db: audit(
                    db, who.name, "denied", request.url.path, ok=False, needs=permission
                )
            )
            role = i18n.word("role", who.role)
            raise Refused(403, i18n.gettext("error.role", role=role), who)
        return who

    async def _check_csrf(self, request: Request, expected: str) -> None:
        origin = request.headers.get("origin")
        if origin and urlsplit(origin).netloc != request.url.netloc:
            raise Refused(403, "cross-origin request")
        given = request.headers.get("x-csrf-token")
        if given is None and "form" in request.headers.get("content-type", ""):
            form = await request.form()
            value = form.get("csrf_token")
            given = value if isinstance(value, str) else None
        if not auth.same_token(given, expected):
            raise Refused(403, "missing or wrong CSRF token")

    async def _refused(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Refused)
        if is_api(request):
            headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
            return JSONResponse({"error": exc.reason}, exc.status, headers=headers)
        if exc.status == 401:
            target = quote(request.url.path, safe="/")
            return RedirectResponse(f"/login?next={target}", 303)
        context = {"who": exc.who, "path": request.url.path, "message": exc.reason}
        return self.templates.TemplateResponse(
            request, "error.html", context, status_code=exc.status
        )

    def page(
        self, request: Request, name: str, who: auth.Principal | None, **context: Any
    ) -> Response:
        fragment = request.query_params.get("fragment") == "1" and context.pop("live", None)
        template = fragment or name
        return self.templates.TemplateResponse(
            request, template, {"who": who, "path": request.url.path, **context}
        )

    # --- login ---------------------------------------------------------------------------------

    async def login_form(self, request: Request, error: str = "", status: int = 200) -> Response:
        token = auth.secret_token()
        response = self.templates.TemplateResponse(
            request,
            "login.html",
            {"who": None, "csrf": token, "error": error, "next": request.query_params.get("next")},
            status_code=status,
        )
        response.set_cookie(
            auth.LOGIN_CSRF_COOKIE,
            token,
            max_age=1800,
            httponly=True,
            samesite="strict",
            secure=self.settings.secure_cookies,
        )
        return response

    async def login(self, request: Request) -> Response:
        """Log in, throttled (:mod:`fleet.console.throttle`): a login whose keys are blocked is
        refused before its password is looked at; a success leaves a trusted-device cookie."""
        form = await request.form()
        name = str(form.get("name", ""))[:64]
        password = str(form.get("password", ""))
        if not auth.same_token(
            str(form.get("csrf_token", "")), request.cookies.get(auth.LOGIN_CSRF_COOKIE, "")
        ):
            return await self.login_form(request, i18n.gettext("login.expired"), 403)
        address = request.client.host if request.client else "unknown"
        shown = request.cookies.get(throttle.DEVICE_COOKIE, "")

        def gate(db: Any) -> tuple[throttle.Attempt, float]:
            attempt = self.throttle.attempt(db, name, address, shown)
            wait = self.throttle.wait(db, attempt.counted)
            if wait > 0:
                audit(
                    db,
                    name,
                    "login",
                    ok=False,
                    reason="throttled",
                    wait_s=math.ceil(wait),
                    client=address,
                    device=attempt.device is not None,
                )
            return attempt, wait

        attempt, wait = await self.db(gate)
        if wait > 0:
            refused = await self.login_form(request, throttle.wait_message(wait), 429)
            refused.headers["Retry-After"] = str(math.ceil(wait))
            return refused

        def check(db: Any) -> tuple[str, str] | None:
            user = auth.check_password(db, name, password)
            if user is None:
                audit(db, name, "login", ok=False, reason="bad_credentials")
                self.throttle.failed(db, attempt.counted)
                return None
            audit(db, name, "login")
            self.throttle.clear(db, attempt.cleared)
            session = auth.open_session(db, user, self.settings.session_ttl_s)
            return session, throttle.device_cookie(user, self.throttle.clock())

        opened = await self.db(check)
        if opened is None:
            return await self.login_form(request, i18n.gettext("login.wrong"), 401)
        token, device = opened
        target = str(form.get("next") or "/")
        if not target.startswith("/") or target.startswith("//"):
            target = "/"
        response = RedirectResponse(target, 303)
        response.set_cookie(
            auth.SESSION_COOKIE,
            token,
            max_age=int(self.settings.session_ttl_s),
            httponly=True,
            samesite="strict",
            secure=self.settings.secure_cookies,
        )
        response.set_cookie(
            throttle.DEVICE_COOKIE,
            device,
            max_age=int(throttle.DEVICE_TTL_S),
            path="/login",
            httponly=True,
            samesite="strict",
            secure=self.settings.secure_cookies,
        )
        response.delete_cookie(auth.LOGIN_CSRF_COOKIE)
        return response

    async def logout(self, request: Request) -> Response:
        who = await self.require(request)
        token = request.cookies.get(auth.SESSION_COOKIE, "")

        def close(db: Any) -> None:
            auth.close_session(db, token)
            audit(db, who.name, "logout")

        await self.db(close)
        response = RedirectResponse("/login", 303)
        response.delete_cookie(auth.SESSION_COOKIE)
        return response

    # --- pages ---------------------------------------------------------------------------------

    async def fleet_page(self, request: Request) -> Response:
        who = await self.require(request)
        q = request.query_params
        filters = {k: q.get(k, "")[:64] for k in ("site", "status", "q", "fault", "attention")}
        page = int(q.get("page", "1")) if q.get("page", "1").isdigit() else 1

        def load(db: Any) -> dict[str, Any]:
            shown = {k: v for k, v in filters.items() if k != "attention"}
            data = overview.fleet_page(
                db, self.timers, **shown, only_attention=filters["attention"] == "1", page=page
            )
            data["alerts"] = views.alerts(db, limit=overview.ALERTS_SHOWN)
            data["alerts_total"] = views.alert_total(db)
            return data

        data = await self.db(load)
        return self.page(
            request, "fleet.html", who, live="_fleet_live.html", filters=filters, **data
        )

    async def alerts_page(self, request: Request) -> Response:
        who = await self.require(request)
        data = await self.db(
            lambda db: {
                "alerts": views.alerts(db),
                "alerts_total": views.alert_total(db),
                "recent": views.alerts(db, active_only=False, limit=50),
                "recent_total": views.alert_total(db, active_only=False),
            }
        )
        return self.page(request, "alerts.html", who, live="_alerts_live.html", **data)

    async def _station(self, request: Request) -> dict[str, Any] | None:
        """The station named by the path (``/stations/{site}/{station}``) as its page shows it;
        None if the console does not know it."""
        site, station = request.path_params["site"], request.path_params["station"]

        def load(db: Any) -> dict[str, Any] | None:
            row = views.find_station(db, site, station)
            return None if row is None else views.station_page(db, row, self.timers)

        data: dict[str, Any] | None = await self.db(load)
        return data

    async def station_page(self, request: Request) -> Response:
        who = await self.require(request)
        data = await self._station(request)
        if data is None:
            missing = self.page(request, "error.html", who, message=no_station())
            missing.status_code = 404
            return missing
        return self.page(
            request,
            "station.html",
            who,
            live="_station_live.html",
            command_names=sorted(COMMANDS),
            **data,
        )

    async def screenshot(self, request: Request) -> Response:
        await self.require(request)
        p = request.path_params

        def load(db: Any) -> bytes | None:
            row = db.get(CommandRow, p["command_id"])
            station = views.find_station(db, p["site"], p["station"])
            if row is None or station is None or row.station_id != station.id:
                return None
            png = (row.detail or {}).get("png_base64")
            return base64.b64decode(png) if isinstance(png, str) else None

        data = await self.db(load)
        if data is None:
            return Response("not found", 404)
        return Response(data, media_type="image/png")

    # --- live updates --------------------------------------------------------------------------

    async def events(self, request: Request) -> Response:
        await self.require(request)

        async def stream() -> AsyncIterator[str]:
            last = ""
            quiet = 0.0
            yield "retry: 2000\n\n"
            while not await request.is_disconnected():
                current = await run_in_threadpool(views.digest, self.store, self.timers)
                if current != last:
                    if last:
                        yield f"event: refresh\ndata: {current}\n\n"
                    last, quiet = current, 0.0
                elif quiet > 15:
                    yield ": keep-alive\n\n"
                    quiet = 0.0
                await asyncio.sleep(self.settings.live_poll_s)
                quiet += self.settings.live_poll_s

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    # --- actions -------------------------------------------------------------------------------

    async def acknowledge(self, request: Request) -> Response:
        """Acknowledge an alert; a help request may be answered (fleet.console.help_reply)."""
        who = await self.require(request, "acknowledge")
        alert_id = int(request.path_params["alert_id"])
        api = is_api(request)
        body = await (request.json() if api and await request.body() else request.form())
        try:
            reply = help_reply.reply_from(body if isinstance(body, dict | FormData) else {})
        except help_reply.ReplyError as err:
            raise Refused(400, str(err), who) from None

        def send(db: Any, station_id: int, args: dict[str, Any]) -> str:
            timeout, name = help_reply.REPLY_TIMEOUT_S, help_reply.HELP_REPLY
            return self.ingest.send_command(station_id, name, args, timeout, who.name, db=db)

        def ack(db: Any) -> help_reply.Acknowledged:
            return help_reply.acknowledge(db, alert_id, who.name, reply, send)

        try:
            done: help_reply.Acknowledged = await self.db(ack)
        except help_reply.ReplyError as err:
            raise Refused(400, str(err), who) from None
        if api:
            answer: dict[str, Any] = {"acknowledged": done.found}
            if done.command_id:
                answer["reply_command"] = done.command_id
            return JSONResponse(answer, 200 if done.found else 404)
        return RedirectResponse(await self._back(request), 303)

    async def _back(self, request: Request) -> str:
        form = await request.form()
        target = str(form.get("back") or "/")
        return target if target.startswith("/") and not target.startswith("//") else "/"

    async def command(self, request: Request) -> Response:
        who = await self.require(request, "command")
        site, station = request.path_params["site"], request.path_params["station"]
        api = is_api(request)
        if api:
            body = await request.json()
            name = str(body.get("name", ""))
            args = body.get("args") or {}
            timeout = body.get("timeout_s")
        else:
            form = await request.form()
            name = str(form.get("name", ""))
            printer = form.get("printer")
            args = {"printer": printer} if name == "test_print" and printer else {}
            timeout = None
        if name not in COMMANDS or not isinstance(args, dict):
            raise Refused(400, f"unknown command {name[:32]!r}")
        timeout_s = float(timeout) if isinstance(timeout, int | float) else COMMANDS[name]
        timeout_s = min(max(timeout_s, 5.0), 3600.0)

        def send(db: Any) -> str | None:
            row = views.find_station(db, site, station)
            if row is None:
                return None
            command_id = self.ingest.send_command(row.id, name, args, timeout_s, who.name, db=db)
            audit(db, who.name, "command", f"{site}/{station}", name=name, id=command_id)
            return command_id

        command_id = await self.db(send)
        if command_id is None:
            raise Refused(404, no_station())
        if api:
            return JSONResponse({"id": command_id}, 202)
        return RedirectResponse(f"/stations/{site}/{station}", 303)

    # --- API -----------------------------------------------------------------------------------

    async def api_stations(self, request: Request) -> Response:
        await self.require(request)
        return JSONResponse(await self.db(lambda db: views.stations(db, self.timers)))

    async def api_station(self, request: Request) -> Response:
        await self.require(request)
        data = await self._station(request)
        if data is None:
            return JSONResponse({"error": "no such station"}, 404)
        return JSONResponse(data)

    async def api_command(self, request: Request) -> Response:
        await self.require(request)
        command_id = request.path_params["command_id"]

        def load(db: Any) -> dict[str, Any] | None:
            row = db.get(CommandRow, command_id)
            return None if row is None else views.command_view(row)

        data = await self.db(load)
        if data is None:
            return JSONResponse({"error": "no such command"}, 404)
        return JSONResponse(data)

    async def api_alerts(self, request: Request) -> Response:
        await self.require(request)
        active = request.query_params.get("all") != "1"
        shown, total = await self.db(
            lambda db: (
                views.alerts(db, active_only=active),
                views.alert_total(db, active_only=active),
            )
        )
        # the list stays a list; how much of it this is goes in headers (the first by priority)
        headers = {"X-Total-Count": str(total), "X-Shown-Count": str(len(shown))}
        return JSONResponse(shown, headers=headers)

    async def metrics(self, request: Request) -> Response:
        bearer = request.headers.get("authorization", "")
        token = self.settings.metrics_token
        if not (token and auth.same_token(bearer.removeprefix("Bearer "), token)):
            await self.require(request)
        data = await run_in_threadpool(generate_latest, self.registry)
        return Response(data, media_type=CONTENT_TYPE_LATEST)
