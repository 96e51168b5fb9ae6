"""The console's less frequent pages: users, the audit log, token verification, duty hours
(rollouts are :mod:`fleet.console.rollout_pages`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from fleet.console import auth as auth
from fleet.console import documents, enroll
from fleet.console import views as views
from fleet.console.store import ROLES, AuditEntry, User, audit, valid_duty_hours
from flows.tokens import Verdict, key_id, load_public, verify

if TYPE_CHECKING:
    from fleet.console.app import WebApp


def load_token_keys(folder: Path | None) -> dict[str, Any]:
    keys: dict[str, Any] = {}
    if folder is None or not folder.is_dir():
        return keys
    for path in sorted(folder.glob("*.pub")):
        try:
            public = load_public(path.read_bytes())
        except (OSError, ValueError):
            continue
        keys[key_id(public)] = public
    return keys


class AdminRoutes:
    def __init__(self, web: WebApp) -> None:
        self.web = web

    def routes(self) -> list[Route]:
        return [
            Route("/verify", self.verify_page, methods=["GET", "POST"]),
            Route("/stations/{site}/{station}/duty-hours", self.duty_hours, methods=["POST"]),
            Route("/admin/users", self.users, methods=["GET", "POST"]),
            Route("/admin/users/{user_id:int}/disable", self.disable_user, methods=["POST"]),
            Route("/admin/audit", self.audit_page),
        ]

    async def verify_page(self, request: Request) -> Response:
        who = await self.web.require(request)
        result: dict[str, Any] | None = None
        if request.method == "POST":
            form = await request.form()
            token = str(form.get("token", ""))[:2000]
            keys = load_token_keys(self.web.settings.token_keys_dir)
            keys |= await self.web.db(enroll.token_keys)  # keys recorded at enrolment
            verdict, claims = verify(token, keys)
            result = {"verdict": verdict.value, "valid": verdict is Verdict.VALID}
            if claims is not None:
                result |= {
                    "doc_type": claims.doc_type,
                    "doc_id": claims.doc_id,
                    "issued": self.web.local_time.when(claims.issued),
                }
            await self.web.db(
                lambda db: audit(
                    db, who.name, "verify_token", verdict=verdict.value, valid=result["valid"]
                )
            )
        listed = await self.web.db(documents.withdrawn)
        return self.web.page(request, "verify.html", who, result=result, withdrawn=listed)

    async def duty_hours(self, request: Request) -> Response:
        who = await self.web.require(request, "rollout")  # operators decide what stations offer
        site, station = request.path_params["site"], request.path_params["station"]
        form = await request.form()
        spec = str(form.get("duty_hours", "")).strip()[:32]
        if not valid_duty_hours(spec):
            return self.web.page(request, "error.html", who, message=f"bad duty hours {spec!r}")

        def save(db: Any) -> None:
            row = views.find_station(db, site, station)
            if row is not None:
                row.duty_hours = spec
                audit(db, who.name, "duty_hours", f"{site}/{station}", duty_hours=spec)

        await self.web.db(save)
        return RedirectResponse(f"/stations/{site}/{station}", 303)

    async def users(self, request: Request) -> Response:
        who = await self.web.require(request, "admin")
        error = ""
        if request.method == "POST":
            form = await request.form()
            name = str(form.get("name", "")).strip()
            role = str(form.get("role", ""))

            def create(db: Any) -> str:
                try:
                    auth.create_user(db, name, str(form.get("password", "")), role)
                except auth.AuthError as err:
                    return str(err)
                audit(db, who.name, "create_user", f"user/{name}", role=role)
                return ""

            error = await self.web.db(create)
            if not error:
                return RedirectResponse("/admin/users", 303)

        def load(db: Any) -> list[dict[str, Any]]:
            return [
                {"id": u.id, "name": u.name, "role": u.role, "disabled": u.disabled}
                for u in db.scalars(select(User).order_by(User.name))
            ]

        return self.web.page(
            request, "users.html", who, users=await self.web.db(load), roles=ROLES, error=error
        )

    async def disable_user(self, request: Request) -> Response:
        who = await self.web.require(request, "admin")
        user_id = int(request.path_params["user_id"])

        def disable(db: Any) -> None:
            user = db.get(User, user_id)
            if user is not None and user.id != who.user_id:
                user.disabled = True
                audit(db, who.name, "disable_user", f"user/{user.name}")

        await self.web.db(disable)
        return RedirectResponse("/admin/users", 303)

    async def audit_page(self, request: Request) -> Response:
        who = await self.web.require(request, "admin")

        def load(db: Any) -> list[dict[str, Any]]:
            rows = db.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(300))
            return [
                {
                    "ts": r.ts,
                    "actor": r.actor,
                    "action": r.action,
                    "target": r.target,
                    "ok": r.ok,
                    "detail": r.detail,
                }
                for r in rows
            ]

        return self.web.page(request, "audit.html", who, entries=await self.web.db(load))
