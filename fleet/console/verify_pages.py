"""The public verification page, ``/v/<token>``, and withdrawing documents.

A certificate's QR code carries ``https://VERIFY-HOST/v/<token>`` (:mod:`flows.tokens`); whoever
holds the paper (a school, a bank, an employer) opens it on a phone, with no account. The page
answers valid or not, and for a token that verifies: the document's type, its number, the
issuing station and agency, the time of issue and the hash of the signed content; never a name or
an ID number, which the token does not hold. It says what "valid" means, and what the centre has
learnt since: withdrawn, or signed after its station's key was revoked
(:mod:`fleet.console.documents`). Each client address may open
:data:`~fleet.console.throttle.VERIFY_PER_MINUTE` pages a minute
(:meth:`fleet.console.throttle.Throttle.spend`); the rest wait, with 429 and ``Retry-After``.

``POST /verify/withdraw`` (permission ``withdraw``: operators and admins) withdraws a document by
its number, with a reason, audited; ``fleet document withdraw`` does the same from a shell.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from fleet.console import documents, i18n
from fleet.console import throttle as throttle

if TYPE_CHECKING:
    from fleet.console.app import WebApp

TOKEN_MAX = 1000  # a token is about 400 characters; anything longer is not one


class VerifyRoutes:
    def __init__(self, web: WebApp) -> None:
        self.web = web

    def routes(self) -> list[Route]:
        return [
            Route("/v/{token}", self.public_page),
            Route("/verify/withdraw", self.withdraw, methods=["POST"]),
        ]

    async def public_page(self, request: Request) -> Response:
        token = request.path_params["token"][:TOKEN_MAX]
        address = request.client.host if request.client else "unknown"
        folder = self.web.settings.token_keys_dir

        def load(db: Any) -> tuple[float, documents.Verification | None]:
            wait = self.web.throttle.spend(
                db, f"verify:{address}", throttle.VERIFY_PER_MINUTE, 60.0
            )
            return wait, None if wait > 0 else documents.check(db, token, folder)

        wait, found = await self.web.db(load)
        context: dict[str, Any] = {"request": request, "result": None, "wait": 0}
        if found is None:
            context["wait"] = max(1, int(wait + 0.999))
            response = self.web.templates.TemplateResponse(
                request, "verify_public.html", context, status_code=429
            )
            response.headers["Retry-After"] = str(context["wait"])
            return response
        context["result"] = self._shown(found)
        return self.web.templates.TemplateResponse(request, "verify_public.html", context)

    def _shown(self, found: documents.Verification) -> dict[str, Any]:
        when, day = self.web.local_time.minute, self.web.local_time.day
        shown: dict[str, Any] = {"status": found.status.value, "valid": found.valid}
        claims = found.claims
        if claims is not None:
            shown |= {
                "doc_type": claims.title or claims.doc_type,
                "doc_code": claims.doc_type,
                "doc_id": claims.doc_id,
                "issuer": claims.issuer,
                "station": found.station,
                "issued": when(claims.issued),
                "content_hash": claims.content_hash,
            }
        if found.key_revoked_at is not None:
            shown["key_revoked"] = day(found.key_revoked_at)
        if found.withdrawn_at is not None:
            shown["withdrawn"] = day(found.withdrawn_at)
        return shown

    async def withdraw(self, request: Request) -> Response:
        who = await self.web.require(request, "withdraw")
        form = await request.form()
        doc_id = str(form.get("doc_id", ""))[:80]
        reason = str(form.get("reason", ""))[:400]

        def act(db: Any) -> str:
            return documents.withdraw(db, doc_id, who.name, reason)

        try:
            await self.web.db(act)
        except documents.DocumentError as err:
            message = i18n.gettext("verify.withdraw_refused", why=str(err))
            return self.web.page(request, "error.html", who, message=message)
        return RedirectResponse("/verify", 303)
