"""Catalog rollouts in the console: the database's :class:`fleet.rollout.RolloutStore`, the
console's one :class:`fleet.rollout_mqtt.RolloutDriver`, and the pages and API that drive it.

- :class:`DbRolloutStore` keeps each :class:`fleet.rollout.RolloutRecord` as JSON in the
  ``rollouts`` table (with its id, state and times as columns) and the last ``desired`` rev issued
  in ``rollout_revs`` (raised by one ``UPDATE``, so two console processes never issue the same).
- :class:`RolloutService` owns the driver: it connects in the background (the console serves its
  pages while the broker is away) with the console's MQTT credentials, TLS if it has them.
- :class:`RolloutRoutes`: ``GET /rollouts`` (the page: a start form for operators and admins, and
  every rollout with its waves, updated live), ``POST /rollouts`` and ``POST /api/rollouts``
  (start), ``POST [/api]/rollouts/{id}/{pause|resume|abort}``, ``GET /api/rollouts`` and
  ``GET /api/rollouts/{id}`` (progress). Starting and steering need the ``rollout`` permission
  and the CSRF token; every attempt is audited.

What is rolled out is the ``desired`` of docs/decisions.md: ``{catalog: {target, version,
sha256, length}, metadata_url, targets_url?}`` (the rev is the driver's); the targets are every
station the console knows, one site, or a list of ``site/station`` keys.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from sqlalchemy import Integer, case, literal, select, update
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from fleet.broker import ClientCredentials
from fleet.rollout import (
    FINAL_STATES,
    Policy,
    Progress,
    Rollout,
    RolloutError,
    RolloutRecord,
)
from fleet.rollout_mqtt import RolloutDriver
from fleet.web_store import RolloutRev, RolloutRow, Station, Store, audit

if TYPE_CHECKING:
    from fleet.web_app import WebApp

log = logging.getLogger("fleet.console.rollouts")

SHA256 = re.compile(r"^[0-9a-f]{64}$")
TARGET = re.compile(r"^[A-Za-z0-9._\-/]{1,200}$")
KEY = re.compile(r"^[A-Za-z0-9._\-]{1,64}/[A-Za-z0-9._\-]{1,64}$")
SCOPES = ("all", "site", "list")
ACTIONS = ("pause", "resume", "abort")
POLICY_INTS = ("canary", "min_results")
POLICY_FLOATS = ("percent", "advance_at", "abort_above", "wave_timeout_s")
LISTED = 50  # rollouts on the page and in GET /api/rollouts


class RequestError(Exception):
    """A start request that cannot be carried out as asked (answered 400)."""


# --- the store -----------------------------------------------------------------------------------


class DbRolloutStore:
    """:class:`fleet.rollout.RolloutStore` in the console's database."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def save(self, record: RolloutRecord) -> None:
        data = record.to_dict()
        with self.store.session() as db:
            row = db.get(RolloutRow, record.id)
            if row is None:
                row = RolloutRow(id=record.id, created=record.created, started_by="")
                db.add(row)
            row.state, row.updated, row.record = record.state, record.updated, data

    def load(self, rollout_id: str) -> RolloutRecord | None:
        with self.store.session() as db:
            row = db.get(RolloutRow, rollout_id)
            return None if row is None else RolloutRecord.from_dict(row.record)

    def active_ids(self) -> list[str]:
        with self.store.session() as db:
            query = select(RolloutRow.id).where(RolloutRow.state.not_in(sorted(FINAL_STATES)))
            return list(db.scalars(query.order_by(RolloutRow.created)))

    def next_rev(self, floor: int = 0) -> int:
        above = literal(int(floor), Integer)
        raised = case((RolloutRev.last_rev > above, RolloutRev.last_rev), else_=above) + 1
        with self.store.session() as db:
            db.execute(update(RolloutRev).where(RolloutRev.id == 1).values(last_rev=raised))
            rev = db.scalar(select(RolloutRev.last_rev).where(RolloutRev.id == 1))
        if rev is None:
            raise RolloutError("the rollout_revs row is missing: is the schema migrated?")
        return int(rev)


def rollout_view(row: RolloutRow, live: Progress | None = None) -> dict[str, Any]:
    """A rollout as the page and the API show it (``live``: the driver's fresher progress;
    the stored record lags it by at most the driver's ``save_every_s``)."""
    record = RolloutRecord.from_dict(row.record)
    view = (live or Rollout(record).progress()).to_dict()
    failures = [
        {"station": key, "phase": r.phase, "error": r.error}
        for key, r in sorted(record.stations.items())
        if r.phase in ("failed", "timed_out")
    ]
    return view | {
        "catalog": record.desired.get("catalog", {}),
        "metadata_url": record.desired.get("metadata_url"),
        "policy": asdict(record.policy),
        "stations": len(record.stations),
        "failures": failures,
        "created": record.created,
        "updated": record.updated,
        "started_by": row.started_by,
        "finished": view["state"] in FINAL_STATES,
    }


# --- the driver ----------------------------------------------------------------------------------


class RolloutService:
    """The console's one rollout driver, connected in the background by :meth:`start`."""

    def __init__(
        self,
        store: Store,
        host: str,
        port: int,
        *,
        password: str = "",
        tls: ClientCredentials | None = None,
        tick_s: float = 0.5,
    ) -> None:
        self.store = DbRolloutStore(store)
        self.driver = RolloutDriver(host, port, self.store, password=password, tick_s=tick_s)
        if tls is not None:
            self.driver.client.tls_set(
                ca_certs=str(tls.ca_file), certfile=str(tls.cert_file), keyfile=str(tls.key_file)
            )
        self.ready = threading.Event()
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._connect, name="rollout-connect", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _connect(self) -> None:
        while not self._stop.is_set():
            try:
                self.driver.connect()
            except OSError as err:  # the broker is not there yet: nothing was started
                self.error = f"broker unreachable: {err}"
                log.warning("rollout driver: %s; retrying", self.error)
                self._stop.wait(2.0)
                continue
            except RolloutError as err:
                self.error = str(err)
                log.error("rollout driver: %s", err)
                return
            self.error = None
            self.ready.set()
            log.info("rollout driver connected")
            return

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=35)
        if self._thread.ident is not None:
            self.driver.close()


# --- requests ------------------------------------------------------------------------------------


def _number(value: Any, name: str, kind: type[int] | type[float]) -> int | float:
    if isinstance(value, bool):
        raise RequestError(f"{name} must be a number")
    if isinstance(value, str):
        value = value.strip()
    try:
        number = kind(value)
    except (TypeError, ValueError) as err:
        raise RequestError(f"{name} must be a number") from err
    if kind is int and isinstance(value, float) and value != number:
        raise RequestError(f"{name} must be a whole number")
    return number


def desired_from(data: Mapping[str, Any]) -> dict[str, Any]:
    """The ``desired`` (without rev) from the catalog fields of a request."""
    target = str(data.get("target") or "").strip()
    if not TARGET.match(target) or ".." in target:
        raise RequestError("target: the catalog's TUF target name, e.g. catalog.toml")
    version = int(_number(data.get("version"), "version", int))
    length = int(_number(data.get("length"), "length", int))
    if version < 1 or length < 1:
        raise RequestError("version and length must be positive")
    sha256 = str(data.get("sha256") or "").strip().lower()
    if not SHA256.match(sha256):
        raise RequestError("sha256: 64 hexadecimal digits")
    desired: dict[str, Any] = {
        "catalog": {"target": target, "version": version, "sha256": sha256, "length": length}
    }
    for name in ("metadata_url", "targets_url"):
        url = str(data.get(name) or "").strip()
        if not url and name == "targets_url":
            continue
        if not re.match(r"^https?://[^\s]{1,500}$", url):
            raise RequestError(f"{name}: an http(s) URL")
        desired[name] = url
    return desired


def policy_from(data: Mapping[str, Any]) -> Policy:
    """A :class:`Policy` from the fields given (the others keep their defaults)."""
    values: dict[str, Any] = {}
    for name in POLICY_INTS:
        if data.get(name) not in (None, ""):
            values[name] = int(_number(data[name], name, int))
    for name in POLICY_FLOATS:
        if data.get(name) not in (None, ""):
            values[name] = float(_number(data[name], name, float))
    canaries = data.get("canary_stations")
    if canaries:
        if not isinstance(canaries, list) or not all(isinstance(k, str) for k in canaries):
            raise RequestError("canary_stations: a list of site/station keys")
        values["canary_stations"] = tuple(canaries)
    try:
        return Policy(**values)
    except RolloutError as err:
        raise RequestError(str(err)) from err


def split_keys(text: str) -> list[str]:
    return [k for k in re.split(r"[\s,;]+", text) if k]


def choose_stations(db: Session, scope: str, site: str, listed: list[str]) -> list[str]:
    """The ``site/station`` keys a rollout targets, in the order of the fleet page."""
    rows = db.execute(select(Station.site, Station.station).order_by(Station.site, Station.station))
    known = [f"{s}/{st}" for s, st in rows]
    if scope == "all":
        keys = known
    elif scope == "site":
        keys = [k for k in known if k.partition("/")[0] == site]
        if not keys:
            raise RequestError(f"no stations known at site {site[:64]!r}")
    elif scope == "list":
        members = set(known)
        unknown = [k for k in listed if k not in members]
        if unknown:
            raise RequestError(f"unknown stations: {', '.join(unknown[:5])[:300]}")
        keys = list(dict.fromkeys(listed))
    else:
        raise RequestError("scope: all, site or list")
    if not keys:
        raise RequestError("no stations to roll out to")
    return keys


# --- routes --------------------------------------------------------------------------------------


class RolloutRoutes:
    def __init__(self, web: WebApp, service: RolloutService | None) -> None:
        self.web = web
        self.service = service

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

    def _driver(self) -> RolloutDriver:
        from fleet.web_app import Refused

        if self.service is None or not self.service.ready.is_set():
            error = self.service.error if self.service is not None else "no rollout driver"
            raise Refused(503, f"rollouts are not connected to the broker ({error or 'yet'})")
        return self.service.driver

    def _views(self, db: Session) -> list[dict[str, Any]]:
        rows = db.scalars(select(RolloutRow).order_by(RolloutRow.created.desc()).limit(LISTED))
        return [rollout_view(row) for row in rows]

    async def page(self, request: Request) -> Response:
        who = await self.web.require(request)

        def load(db: Session) -> dict[str, Any]:
            sites = db.scalars(select(Station.site).distinct().order_by(Station.site))
            return {"rollouts": self._views(db), "sites": list(sites)}

        data = await self.web.db(load)
        ready = self.service is not None and self.service.ready.is_set()
        return self.web.page(
            request,
            "rollouts.html",
            who,
            live="_rollouts_live.html",
            ready=ready,
            defaults=Policy(),
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
            return JSONResponse({"error": "no such rollout"}, 404)
        live = None
        service = self.service
        if service is not None and service.ready.is_set() and row.state not in FINAL_STATES:
            live = await run_in_threadpool(service.driver.status, rollout_id)
            if live.state in FINAL_STATES:  # finished meanwhile: saved at once, read it again
                row = await self.web.db(lambda db: db.get(RolloutRow, rollout_id))
                live = None
        view = rollout_view(row, live)
        stations = row.record.get("stations", {})
        view["station_results"] = {k: dict(v) for k, v in stations.items()}
        return JSONResponse(view)

    async def start(self, request: Request) -> Response:
        from fleet.web_app import Refused, is_api

        who = await self.web.require(request, "rollout")
        api = is_api(request)

        async def refuse(status: int, reason: str) -> Refused:
            await self.web.db(lambda db: audit(db, who.name, "rollout", ok=False, reason=reason))
            return Refused(status, reason)

        try:
            data, policy_data, scope, site, listed = await self._start_fields(request, api)
            desired = desired_from(data)
            policy = policy_from(policy_data)
            keys = await self.web.db(choose_stations, scope, site, listed)
        except RequestError as err:
            raise await refuse(400, str(err)) from err
        driver = self._driver()
        try:
            rollout_id = await run_in_threadpool(driver.start, desired, keys, policy)
        except RolloutError as err:
            raise await refuse(409, str(err)) from err

        def note(db: Session) -> None:
            row = db.get(RolloutRow, rollout_id)
            if row is not None:
                row.started_by = who.name
            audit(
                db,
                who.name,
                "rollout",
                f"rollout/{rollout_id}",
                version=desired["catalog"]["version"],
                stations=len(keys),
                scope=scope,
            )

        await self.web.db(note)
        if api:
            progress = await run_in_threadpool(driver.status, rollout_id)
            return JSONResponse({"id": rollout_id, **progress.to_dict()}, 201)
        return RedirectResponse("/rollouts", 303)

    async def _start_fields(
        self, request: Request, api: bool
    ) -> tuple[dict[str, Any], dict[str, Any], str, str, list[str]]:
        if api:
            try:
                body = await request.json()
            except ValueError as err:
                raise RequestError("the body must be a JSON object") from err
            if not isinstance(body, dict):
                raise RequestError("the body must be a JSON object")
            policy = body.get("policy") or {}
            if not isinstance(policy, dict):
                raise RequestError("policy must be an object")
            stations = body.get("stations") or []
            if isinstance(stations, str):
                stations = split_keys(stations)
            if not isinstance(stations, list) or not all(isinstance(k, str) for k in stations):
                raise RequestError("stations: a list of site/station keys")
            scope = str(body.get("scope") or ("list" if stations else "all"))
            return body, policy, scope, str(body.get("site") or ""), stations
        form = await request.form()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        policy = {k: fields.get(k) for k in (*POLICY_INTS, "percent", "wave_timeout_s")}
        for name in ("advance_at", "abort_above"):  # the form says percent
            given = fields.get(f"{name}_pct", "").strip()
            if given:
                policy[name] = float(_number(given, f"{name} (%)", float)) / 100
        canaries = split_keys(fields.get("canary_stations", ""))
        if canaries:
            policy["canary_stations"] = canaries
        scope = fields.get("scope", "all")
        return fields, policy, scope, fields.get("site", ""), split_keys(fields.get("stations", ""))

    async def steer(self, request: Request) -> Response:
        from fleet.web_app import Refused, is_api

        who = await self.web.require(request, "rollout")
        rollout_id, action = request.path_params["rollout_id"], request.path_params["action"]
        api = is_api(request)
        if action not in ACTIONS:
            raise Refused(404, f"no action {action[:16]!r}")
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
            reason = f"{text or 'aborted by hand'} (by {who.name})"
        exists = await self.web.db(lambda db: db.get(RolloutRow, rollout_id) is not None)
        if not exists:
            raise Refused(404, "no such rollout")
        driver = self._driver()

        def act() -> dict[str, Any]:
            if action == "pause":
                return driver.pause(rollout_id).to_dict()
            if action == "resume":
                return driver.resume(rollout_id).to_dict()
            return driver.abort(rollout_id, reason).to_dict()

        try:
            progress = await run_in_threadpool(act)
        except RolloutError as err:
            why, target = str(err), f"rollout/{rollout_id}"
            await self.web.db(lambda db: audit(db, who.name, action, target, ok=False, reason=why))
            raise Refused(409, why) from err
        detail: dict[str, Any] = {"reason": reason} if reason else {}
        await self.web.db(lambda db: audit(db, who.name, action, f"rollout/{rollout_id}", **detail))
        if api:
            return JSONResponse(progress)
        return RedirectResponse("/rollouts", 303)
