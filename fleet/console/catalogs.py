"""Catalogs in the console: upload, check, compare with what is live, sign, then roll out.

- ``GET /catalogs``: what is live, the catalog versions in the repository (when and by whom each
  was signed), the recent drafts, and (operators and admins) the upload form.
- ``POST /catalogs/drafts`` (a form with the file) and ``POST /api/catalogs/drafts`` (the TOML as
  the body, ``?target=`` and ``?filename=`` optional): at most
  :data:`flows.catalog.MAX_CATALOG_BYTES` (256 KiB, the terminals' own limit); checked with the
  terminals' own validation (:mod:`fleet.trust.catalog_review`), each problem on its own line in
  plain words; nothing is kept unless it is valid and its version rises above the live one. A valid
  upload is kept as a draft (:mod:`fleet.console.catalog_drafts`).
- ``GET /catalogs/drafts/{id}`` and ``GET /api/catalogs/drafts/{id}``: a draft and what it changes
  against the live catalog (services, bundles and categories by code, field by field; a unified
  text diff too); ``GET /api/catalogs/drafts/{id}/content``: the draft as uploaded.
- ``POST [/api]/catalogs/drafts/{id}/sign``: signs the draft into the TUF repository as a new
  version, with the repository's online keys (the root keys stay offline,
  :mod:`fleet.trust.catalog_repo`); then "Roll out" opens the Rollouts page filled in.

Uploading and signing need the ``rollout`` permission (operators, admins; a technician may look
but not push) and the session's CSRF token; every attempt, refused or not, is audited. The
repository is the folder given as ``fleet console --catalog-repo DIR``; signing takes a file lock
in it, so several console processes (and ``fleet catalog sign``) sign one at a time.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import Message

from fleet.console.catalog_drafts import CatalogDraft, draft_view, recent_drafts, signatures
from fleet.console.routing import Refused, is_api
from fleet.console.store import audit
from fleet.trust.catalog_repo import (
    CATALOG_VERSION_FIELD,
    ONLINE_ROLES,
    CatalogRepository,
    Release,
    RepositoryError,
    load_signer,
    locked,
)
from fleet.trust.catalog_review import (
    InvalidCatalog,
    Problem,
    check_catalog,
    diff_catalogs,
    locate,
)
from flows.catalog import MAX_CATALOG_BYTES, CatalogError

if TYPE_CHECKING:
    from fleet.console.app import WebApp
    from fleet.console.auth import Principal

MAX_BODY = MAX_CATALOG_BYTES + 16 * 1024  # the file and the form around it
TARGET_NAME = re.compile(r"^[A-Za-z0-9_\-][A-Za-z0-9._\-]{0,99}$")
DEFAULT_TARGET = "catalog.toml"
HISTORY = 300  # targets metadata versions read for the list of catalog versions


# --- the repository ------------------------------------------------------------------------------


class Shelf:
    """The console's hold on the catalog repository: it reads it, and signs into it one at a
    time (a thread lock, and :func:`fleet.trust.catalog_repo.locked` for other processes)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._lock = threading.Lock()
        repo = CatalogRepository(self.directory)  # refuses a folder that is no repository
        self.warnings: list[str] = []
        if any(load_signer(repo.keys_dir, key) for key in repo.keys_of("root")):
            self.warnings.append(
                f"a root key lies in {repo.keys_dir}: root keys belong offline, apart from the "
                "repository (see fleet catalog rotate-root)"
            )
        missing = [
            role
            for role in ONLINE_ROLES
            if not any(load_signer(repo.keys_dir, key) for key in repo.keys_of(role))
        ]
        if missing:
            self.warnings.append(
                f"the console cannot sign: no {', '.join(missing)} key in {repo.keys_dir}"
            )

    def open(self) -> CatalogRepository:
        return CatalogRepository(self.directory)  # read afresh: others may have signed

    def live(self, name: str) -> tuple[Release, bytes | None] | None:
        """The catalog signed as ``name`` now, and its content (None if the file is gone)."""
        return self.open().live_catalog(name)

    def versions(self) -> list[dict[str, Any]]:
        """Every catalog signed into the repository (of the last ``HISTORY`` targets metadata
        versions), newest first, with the time its targets metadata was written."""
        metadata = self.directory / "metadata"
        numbered = sorted(
            (int(p.name.split(".", 1)[0]), p)
            for p in metadata.glob("*.targets.json")
            if p.name.split(".", 1)[0].isdigit()
        )[-HISTORY:]
        found: dict[tuple[str, str], dict[str, Any]] = {}
        live: set[tuple[str, str]] = set()
        for number, path in numbered:
            try:
                targets = json.loads(path.read_bytes())["signed"]["targets"]
                written = path.stat().st_mtime
            except (OSError, ValueError, KeyError, TypeError):
                continue
            live = set()
            for name, info in targets.items():
                sha = str(info.get("hashes", {}).get("sha256", ""))
                custom = info.get("custom") or {}
                key = (name, sha)
                live.add(key)
                found.setdefault(
                    key,
                    {
                        "target": name,
                        "version": int(custom.get(CATALOG_VERSION_FIELD, 0)),
                        "sha256": sha,
                        "length": int(info.get("length", 0)),
                        "targets_version": number,
                        "written_at": written,
                    },
                )
        rows = [row | {"live": key in live} for key, row in found.items()]
        return sorted(rows, key=lambda r: (r["targets_version"], r["version"]), reverse=True)

    def before(self, name: str, sha256: str) -> tuple[Release, bytes | None] | None:
        """The catalog signed as ``name`` just before the one with ``sha256`` (and its content)."""
        same = [v for v in self.versions() if v["target"] == name]
        index = next((i for i, v in enumerate(same) if v["sha256"] == sha256), None)
        if index is None or index + 1 >= len(same):
            return None
        row = same[index + 1]
        release = Release(name, row["version"], row["sha256"], row["length"])
        path = self.directory / "targets" / f"{row['sha256']}.{name}"
        return release, path.read_bytes() if path.is_file() else None

    def sign(self, content: bytes, name: str) -> Release:
        with self._lock, locked(self.directory):
            return self.open().publish_catalog(content, name=name)


def rollout_link(release: dict[str, Any], catalog_url: str | None) -> str:
    """The Rollouts page with its form filled in for ``release``."""
    fields = {k: release[k] for k in ("target", "version", "sha256", "length")}
    if catalog_url:
        base = catalog_url.rstrip("/")
        fields |= {"metadata_url": f"{base}/metadata/", "targets_url": f"{base}/targets/"}
    return "/rollouts?" + urlencode(fields)


# --- requests ------------------------------------------------------------------------------------


async def bounded(request: Request, limit: int) -> Request:
    """``request`` with its body read, refused (413) beyond ``limit`` bytes."""

    too_large = Refused(413, f"too large: a catalog may be at most {MAX_CATALOG_BYTES // 1024} KiB")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large
    data = bytes(body)
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": data, "more_body": False}

    return Request(request.scope, receive)


def target_problems(target: str) -> list[Problem]:
    if TARGET_NAME.match(target):
        return []
    return [
        Problem(
            None,
            "the target name",
            "must be one plain file name such as catalog.toml (letters, digits, '.', '_', '-')",
        )
    ]


# --- routes --------------------------------------------------------------------------------------


class CatalogRoutes:
    def __init__(self, web: WebApp) -> None:
        self.web = web
        folder = web.settings.catalog_repo
        self.shelf = Shelf(folder) if folder is not None else None

    def routes(self) -> list[Route]:
        draft = "/catalogs/drafts/{draft_id:int}"
        return [
            Route("/catalogs", self.page, methods=["GET"]),
            Route("/catalogs/drafts", self.upload, methods=["POST"]),
            Route(draft, self.draft_page, methods=["GET"]),
            Route(f"{draft}/sign", self.sign, methods=["POST"]),
            Route("/api/catalogs", self.api_list, methods=["GET"]),
            Route("/api/catalogs/drafts", self.upload, methods=["POST"]),
            Route(f"/api{draft}", self.api_draft, methods=["GET"]),
            Route(f"/api{draft}/content", self.content, methods=["GET"]),
            Route(f"/api{draft}/sign", self.sign, methods=["POST"]),
        ]

    # --- reading -------------------------------------------------------------------------------

    async def overview(self) -> dict[str, Any]:
        """What is live, the versions in the repository, the recent drafts."""

        def load(db: Session) -> tuple[list[dict[str, Any]], dict[tuple[str, str], Any]]:
            return recent_drafts(db), signatures(db)

        drafts, signed = await self.web.db(load)
        versions: list[dict[str, Any]] = []
        if self.shelf is not None:
            versions = await run_in_threadpool(self.shelf.versions)
        for row in versions:
            by, at = signed.get((row["target"], row["sha256"]), ("", None))
            row["signed_by"] = by or None  # None: signed outside the console (fleet catalog sign)
            row["signed_at"] = at or row["written_at"]
            row["rollout_url"] = (
                rollout_link(row, self.web.settings.catalog_url) if row["live"] else None
            )
        return {
            "repository": self.shelf is not None,
            "warnings": self.shelf.warnings if self.shelf is not None else [],
            "live": [row for row in versions if row["live"]],
            "versions": versions,
            "drafts": drafts,
        }

    async def review(self, draft_id: int) -> dict[str, Any] | None:
        """A draft, the live catalog of its target, and what the draft changes."""

        def load(db: Session) -> tuple[dict[str, Any], bytes] | None:
            row = db.get(CatalogDraft, draft_id)
            return None if row is None else (draft_view(row), row.content)

        found = await self.web.db(load)
        if found is None:
            return None
        view, content = found
        live = None
        if self.shelf is not None:
            live = await run_in_threadpool(self.shelf.live, view["target"])
        release = live[0].desired_catalog() if live is not None else None
        is_live = release is not None and release["sha256"] == view["sha256"]
        against = live
        if is_live and self.shelf is not None:  # it is live itself: what it changed when signed
            against = await run_in_threadpool(self.shelf.before, view["target"], view["sha256"])
        label = f"{view['target']} version {against[0].version}" if against else ""
        diff = diff_catalogs(
            against[1] if against is not None else None,
            content,
            (label, f"draft {draft_id}: {view['filename']}"),
        )
        return {
            "draft": view,
            "live": release,
            "is_live": is_live,
            "compared_with": against[0].desired_catalog() if against is not None else None,
            "diff": diff,
            "rollout_url": rollout_link(view, self.web.settings.catalog_url) if is_live else None,
        }

    async def page(self, request: Request) -> Response:
        who = await self.web.require(request)
        return self.web.page(request, "catalogs.html", who, **await self._page_data())

    async def _page_data(self, **extra: Any) -> dict[str, Any]:
        data = await self.overview()
        data["live_catalogs"] = data.pop("live")  # "live" names a page's live part (web_app)
        return (
            data
            | {
                "problems": [],
                "max_kib": MAX_CATALOG_BYTES // 1024,
                "default_target": DEFAULT_TARGET,
            }
            | extra
        )

    async def draft_page(self, request: Request) -> Response:
        who = await self.web.require(request)
        data = await self.review(int(request.path_params["draft_id"]))
        if data is None:
            response = self.web.page(request, "error.html", who, message="no such draft")
            response.status_code = 404
            return response
        data["live_release"] = data.pop("live")  # "live" names a page's live part (web_app)
        return self.web.page(
            request, "catalog_draft.html", who, repository=self.shelf is not None, **data
        )

    async def api_list(self, request: Request) -> Response:
        await self.web.require(request)
        return JSONResponse(await self.overview())

    async def api_draft(self, request: Request) -> Response:
        await self.web.require(request)
        data = await self.review(int(request.path_params["draft_id"]))
        if data is None:
            return JSONResponse({"error": "no such draft"}, 404)
        return JSONResponse(data | {"diff": data["diff"].to_dict()})

    async def content(self, request: Request) -> Response:
        await self.web.require(request)
        draft_id = int(request.path_params["draft_id"])

        def load(db: Session) -> tuple[str, bytes] | None:
            row = db.get(CatalogDraft, draft_id)
            return None if row is None else (row.target, row.content)

        found = await self.web.db(load)
        if found is None:
            return JSONResponse({"error": "no such draft"}, 404)
        name = f"draft-{draft_id}-{found[0]}"
        return Response(
            found[1],
            media_type="application/toml; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    # --- upload --------------------------------------------------------------------------------

    async def upload(self, request: Request) -> Response:

        api = is_api(request)
        request = await bounded(request, MAX_BODY)
        try:
            return await self._upload(request, api)
        finally:
            await request.close()  # the uploaded file's spool (routing closes only its own)

    async def _upload(self, request: Request, api: bool) -> Response:
        who = await self.web.require(request, "rollout")
        filename, target, data = await self._upload_fields(request, api)
        problems = target_problems(target)
        version = 0
        if not problems and not data:
            problems = [Problem(None, "the file", "is missing: choose a catalog file (.toml)")]
        if not problems:
            try:
                version = check_catalog(data, source=filename).version
            except InvalidCatalog as err:
                problems = err.problems
        if not problems and self.shelf is not None:
            live = await run_in_threadpool(self.shelf.live, target)
            if live is not None and version <= live[0].version:
                line = locate(data.decode().splitlines(), ["version"])
                problems = [
                    Problem(
                        line,
                        "version",
                        f"is {version}, but version {live[0].version} of {target} is live: "
                        f"a new catalog needs a higher version ({live[0].version + 1} or more)",
                    )
                ]
        if problems:
            return await self._refuse_upload(request, who, api, target, filename, problems)
        sha = hashlib.sha256(data).hexdigest()

        def save(db: Session) -> int:
            row = CatalogDraft(
                target=target,
                catalog_version=version,
                sha256=sha,
                length=len(data),
                content=data,
                filename=filename,
                uploaded_by=who.name,
                uploaded_at=time.time(),
            )
            db.add(row)
            db.flush()
            audit(
                db,
                who.name,
                "catalog_upload",
                f"catalog/{target}",
                draft=row.id,
                version=version,
                sha256=sha,
                length=len(data),
                file=filename,
            )
            return row.id

        draft_id = await self.web.db(save)
        if not api:
            return RedirectResponse(f"/catalogs/drafts/{draft_id}", 303)
        review = await self.review(draft_id)
        assert review is not None
        return JSONResponse(review | {"diff": review["diff"].to_dict()}, 201)

    async def _upload_fields(self, request: Request, api: bool) -> tuple[str, str, bytes]:
        """(file name, target name, content) of an upload."""
        kind = request.headers.get("content-type", "")
        if "multipart/form-data" in kind or "application/x-www-form-urlencoded" in kind:
            form = await request.form()
            file = form.get("catalog")
            target = str(form.get("target") or DEFAULT_TARGET).strip()
            if isinstance(file, UploadFile):
                data = await file.read(MAX_CATALOG_BYTES + 1)
                return self._filename(file.filename or target), target, data
            return target, target, b""
        if not api:
            return DEFAULT_TARGET, DEFAULT_TARGET, b""
        target = request.query_params.get("target", DEFAULT_TARGET).strip()
        name = request.query_params.get("filename") or target
        return self._filename(name), target, await request.body()

    @staticmethod
    def _filename(name: str) -> str:
        return PurePosixPath(name.replace("\\", "/")).name[:200] or DEFAULT_TARGET

    async def _refuse_upload(
        self,
        request: Request,
        who: Principal,
        api: bool,
        target: str,
        filename: str,
        problems: list[Problem],
    ) -> Response:
        first = problems[0].text[:200]
        await self.web.db(
            lambda db: audit(
                db,
                who.name,
                "catalog_upload",
                f"catalog/{target[:100]}",
                ok=False,
                file=filename,
                problems=len(problems),
                first=first,
            )
        )
        if api:
            return JSONResponse(
                {
                    "error": f"{filename}: {len(problems)} problem(s); nothing was kept",
                    "problems": [p.to_dict() for p in problems],
                },
                422,
            )
        data = await self._page_data(problems=problems, rejected=filename)
        response = self.web.page(request, "catalogs.html", who, **data)
        response.status_code = 422
        return response

    # --- signing -------------------------------------------------------------------------------

    async def sign(self, request: Request) -> Response:

        who = await self.web.require(request, "rollout")
        api = is_api(request)
        draft_id = int(request.path_params["draft_id"])

        async def refuse(status: int, reason: str) -> Refused:
            await self.web.db(
                lambda db: audit(
                    db, who.name, "catalog_sign", f"draft/{draft_id}", ok=False, reason=reason
                )
            )
            return Refused(status, reason)

        shelf = self.shelf
        if shelf is None:
            raise await refuse(
                503, "the console has no catalog repository (start it with --catalog-repo DIR)"
            )

        def load(db: Session) -> tuple[str, bytes, str, int, float | None] | None:
            row = db.get(CatalogDraft, draft_id)
            if row is None:
                return None
            return row.target, row.content, row.sha256, row.catalog_version, row.signed_at

        found = await self.web.db(load)
        if found is None:
            raise await refuse(404, "no such draft")
        target, content, sha, version, signed_at = found
        if signed_at is not None:
            raise await refuse(409, f"draft {draft_id} is signed already (version {version})")
        try:
            release = await run_in_threadpool(shelf.sign, content, target)
        except (CatalogError, RepositoryError) as err:
            raise await refuse(409, str(err)[:300]) from err
        if release.sha256 != sha:  # the repository signed other bytes than the draft's
            raise await refuse(500, "the signed catalog differs from the draft")

        def note(db: Session) -> dict[str, Any]:
            row = db.get(CatalogDraft, draft_id)
            assert row is not None
            row.signed_by, row.signed_at = who.name, time.time()
            audit(
                db,
                who.name,
                "catalog_sign",
                f"catalog/{target}",
                draft=draft_id,
                version=release.version,
                sha256=release.sha256,
                length=release.length,
            )
            return draft_view(row)

        view = await self.web.db(note)
        if not api:
            return RedirectResponse(f"/catalogs/drafts/{draft_id}", 303)
        release_view = release.desired_catalog()
        return JSONResponse(
            {
                "release": release_view,
                "draft": view,
                "rollout_url": rollout_link(release_view, self.web.settings.catalog_url),
            },
            201,
        )
