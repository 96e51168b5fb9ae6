"""The console's Enrolment page: enrolled terminals, their certificates' expiry, revocation.

- ``GET /enrolment``: every enrolled station with its certificate's expiry (days left, marked
  within 30 days), document-signing key id and revocation; admins also get the enrol form and a
  revoke button per station. ``GET /api/enrolments``: the same as JSON.
- ``POST /enrolment`` (form: site, station, days, doc_key_pub) issues the certificate with the
  console's fleet CA (``fleet console --fleet-ca CERT KEY``) and answers with the terminal's files
  as a zip download (``ca.crt``, ``station.crt``, ``station.key``, ``kiosk-fleet.toml``). The key
  exists only in that answer: it is not stored, logged or audited, and the answer is
  ``Cache-Control: no-store``. ``POST /api/enrolments`` (JSON) answers with the same files as
  PEM text in JSON.
- ``POST [/api]/enrolment[s]/{site}/{station}/revoke`` (reason required) records the revocation
  and, when the console has ``--crl FILE``, rewrites the CRL there; mosquitto must then be
  reloaded (SIGHUP). ``GET /enrolment/crl.pem``: the CRL made from the database, to copy to the
  broker when it runs elsewhere.

Enrolling and revoking need the ``enroll`` permission (admins) and the session's CSRF token;
every attempt is audited (a refused role by :meth:`fleet.console.app.WebApp.require`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from fleet.console import enroll
from fleet.console.store import Station, audit
from fleet.trust.pki import PkiError

if TYPE_CHECKING:
    from fleet.console.app import WebApp
    from fleet.console.auth import Principal

log = logging.getLogger("fleet.console.enrol")
NO_CA = "this console has no fleet CA: start it with --fleet-ca CERT KEY to enrol terminals"
MAX_FIELD = 4096  # a PEM public key is about 113 characters


def _field(source: Any, name: str, default: str = "") -> str:
    value = source.get(name, default)
    return str(value if value is not None else default)[:MAX_FIELD].strip()


class EnrolRoutes:
    def __init__(self, web: WebApp) -> None:
        self.web = web

    def routes(self) -> list[Route]:
        return [
            Route("/enrolment", self.page, methods=["GET"]),
            Route("/enrolment", self.enrol, methods=["POST"]),
            Route("/enrolment/crl.pem", self.crl, methods=["GET"]),
            Route("/enrolment/{site}/{station}/revoke", self.revoke, methods=["POST"]),
            Route("/api/enrolments", self.api_list, methods=["GET"]),
            Route("/api/enrolments", self.enrol, methods=["POST"]),
            Route("/api/enrolments/{site}/{station}/revoke", self.revoke, methods=["POST"]),
        ]

    # --- pages ---------------------------------------------------------------------------------

    async def page(
        self, request: Request, error: str = "", status: int = 200, **form: str
    ) -> Response:
        who = await self.web.require(request)
        rows = await self.web.db(_listing_with_seen)
        q = request.query_params
        revoked = q.get("revoked", "")  # shown only for a station that is revoked indeed
        if not any(r["station"] == revoked and r["state"] == "revoked" for r in rows):
            revoked = ""
        response = self.web.page(
            request,
            "enrolment.html",
            who,
            enrolments=rows,
            window_days=enroll.EXPIRY_WINDOW_DAYS,
            has_ca=self.web.ingest.ca is not None,
            crl_file=self.web.settings.crl_file,
            error=error,
            form=form,
            revoked=revoked,
            crl=q.get("crl", "")[:16],
            install_dir=enroll.TERMINAL_TLS_DIR,
        )
        response.status_code = status
        return response

    async def api_list(self, request: Request) -> Response:
        await self.web.require(request)
        return JSONResponse(await self.web.db(enroll.listing))

    async def crl(self, request: Request) -> Response:
        await self.web.require(request)
        ca = self.web.ingest.ca
        if ca is None:
            return Response(NO_CA, 404, media_type="text/plain")
        pem: bytes = await self.web.db(lambda db: enroll.crl_pem(db, ca))
        return Response(
            pem,
            media_type="application/x-pem-file",
            headers={"Content-Disposition": 'attachment; filename="fleet.crl"'},
        )

    # --- actions -------------------------------------------------------------------------------

    async def _input(self, request: Request, api: bool) -> dict[str, str]:
        if api:
            body = await request.json()
            source: Any = body if isinstance(body, dict) else {}
        else:
            source = await request.form()
        names = ("site", "station", "days", "doc_key_pub", "reason")
        return {name: _field(source, name) for name in names}

    async def enrol(self, request: Request) -> Response:
        who = await self.web.require(request, "enroll")
        api = request.url.path.startswith("/api/")
        fields = await self._input(request, api)
        site, station = fields["site"], fields["station"]
        ca = self.web.ingest.ca

        def work(db: Session) -> enroll.Issued | str:
            try:
                if ca is None:
                    raise enroll.EnrolError(NO_CA)
                days = float(fields["days"] or 365)
                return enroll.enrol(
                    db, ca, site, station, who.name, days=days, doc_key_pem=fields["doc_key_pub"]
                )
            except (PkiError, ValueError) as err:
                message = str(err) if isinstance(err, PkiError) else "days: a number"
                audit(db, who.name, "enroll", f"{site}/{station}"[:200], ok=False, reason=message)
                return message

        result = await self.web.db(work)
        if isinstance(result, str):
            status = 409 if "enrolled" in result else 400
            if api:
                return JSONResponse({"error": result}, status)
            return await self.page(request, result, status, **fields)
        files = {name: data.decode() for name, (data, _mode) in result.files().items()}
        if api:
            return JSONResponse({"enrolment": result.view, "files": files}, 201)
        return Response(
            result.zip(),
            media_type="application/zip",
            headers={
                "Content-Disposition": f'attachment; filename="{site}-{station}.zip"',
                "Cache-Control": "no-store",
            },
        )

    async def revoke(self, request: Request) -> Response:
        who = await self.web.require(request, "enroll")
        api = request.url.path.startswith("/api/")
        site, station = request.path_params["site"], request.path_params["station"]
        reason = (await self._input(request, api))["reason"]
        ca, crl_file = self.web.ingest.ca, self.web.settings.crl_file

        def work(db: Session) -> tuple[dict[str, Any] | str, bytes | None]:
            try:
                row = enroll.revoke(db, site, station, who.name, reason)
            except enroll.EnrolError as err:
                audit(db, who.name, "revoke", f"{site}/{station}"[:200], ok=False, reason=str(err))
                return str(err), None
            db.flush()
            return row, enroll.crl_pem(db, ca) if ca is not None and crl_file else None

        row, pem = await self.web.db(work)
        if isinstance(row, str):
            status = 404 if "not enrolled" in row else 400
            if api:
                return JSONResponse({"error": row}, status)
            return await self.page(request, row, status)
        crl = self._write_crl(who, site, station, pem)
        if api:
            return JSONResponse({"enrolment": row, "crl": crl})
        return RedirectResponse(f"/enrolment?revoked={station}&crl={crl}", 303)

    def _write_crl(self, who: Principal, site: str, station: str, pem: bytes | None) -> str:
        """Write the CRL the revocation made: "written", "none" (no --crl or no CA), "failed"."""
        path = self.web.settings.crl_file
        if pem is None or path is None:
            return "none"
        try:
            enroll.write_crl(path, pem)
        except OSError as err:
            log.error("revoked %s/%s but could not write the CRL %s: %s", site, station, path, err)
            return "failed"
        log.info("%s revoked %s/%s; CRL written to %s", who.name, site, station, path)
        return "written"


def _listing_with_seen(db: Session) -> list[dict[str, Any]]:
    """:func:`enroll.listing`, each row with ``seen``: the console has heard from the terminal
    (only then has it a station page)."""
    rows = enroll.listing(db)
    seen = {(site, station) for site, station in db.execute(select(Station.site, Station.station))}
    for row in rows:
        row["seen"] = (row["site"], row["station"]) in seen
    return rows
