"""The console's Catalogs page: upload, check, compare with what is live, sign, roll out.

Real peers only: the console's Starlette app with its database (every test runs on SQLite and on
a private PostgreSQL, ``db_url``), a real TUF repository made by :class:`CatalogRepository` in
``tmp_path`` (its root keys in a folder apart), and a terminal's own TUF updater
(:class:`fleet.agent.catalog_update.CatalogUpdater`) fetching over HTTP what the console signed.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.testclient import TestClient

from fleet.agent.catalog_update import CatalogUpdater
from fleet.console import Console, WebSettings
from fleet.console.catalog_drafts import CatalogDraft
from fleet.trust.catalog_repo import CatalogRepository, Release, desired_payload, serve_repository
from fleet.trust.catalog_review import check_catalog, diff_catalogs
from statedir.catalog_store import CatalogStore, install_anchor
from tests.fleet.console.test_console import audit_actions, make_console
from tests.fleet.console.test_console import login as login_zh

DEMO = (Path(__file__).resolve().parents[3] / "assets" / "catalog" / "demo.toml").read_text("utf-8")
REPO_URL = "http://repo.example/catalogs/"
NEW_SERVICE = """
[[services]]
code = "library_card"
category = "civil"
name = { zh = "借书证", en = "Library card" }
description = { zh = "办理镇图书馆借书证。", en = "A card for the town library." }
icon = "document"
template = "record_certificate"
outputs = ["a4"]
spoken = { zh = "借书证。", en = "Library card." }
"""


def login(console: Console, name: str) -> tuple[TestClient, str]:
    """Logged in, reading the pages in English (the catalog checks explain in English)."""
    http, csrf = login_zh(console, name)
    http.headers["Accept-Language"] = "en"
    return http, csrf


def catalog(version: int, *, changed: bool = False) -> bytes:
    """The demo catalog as ``version``; ``changed``: one service reworded, one added."""
    text = DEMO.replace("\nversion = 1\n", f"\nversion = {version}\n", 1)
    if changed:
        old = "Proof of your household registration."
        assert old in text
        text = text.replace(old, "Proof of your household registration, for any office.")
        text = text.replace("\n[[bundles]]", NEW_SERVICE + "\n[[bundles]]", 1)
    return text.encode()


@dataclass
class Rig:
    console: Console
    repo_dir: Path
    root_keys: Path
    live: Release

    def drafts(self) -> list[CatalogDraft]:
        with self.console.store.session() as db:
            return list(db.query(CatalogDraft).order_by(CatalogDraft.id))

    def signed(self) -> dict[str, Any]:
        target = CatalogRepository(self.repo_dir).targets.signed.targets["catalog.toml"]
        return {"sha256": target.hashes["sha256"], "length": target.length, **target.custom}


@pytest.fixture
def rig(tmp_path: Path, db_url: str) -> Iterator[Rig]:
    root_keys = tmp_path / "offline-root-keys"
    repo = CatalogRepository.create(tmp_path / "repo", root_keys)
    live = repo.publish_catalog(catalog(2))  # version 2 is live, signed with the CLI's path
    console = make_console(
        None, db_url, web=WebSettings(catalog_repo=repo.directory, catalog_url=REPO_URL)
    )
    yield Rig(console, repo.directory, root_keys, live)
    console.stop()


def upload(
    http: TestClient, csrf: str | None, data: bytes, name: str = "new.toml", **form: str
) -> Any:
    fields = form | ({"csrf_token": csrf} if csrf else {})
    return http.post(
        "/catalogs/drafts",
        data=fields,
        files={"catalog": (name, data, "application/toml")},
    )


def text_of(page: str) -> str:
    spaced = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))
    return html.unescape(re.sub(r" ([:,.])", r"\1", spaced)).strip()


# --- checking ------------------------------------------------------------------------------------


def test_an_invalid_catalog_is_explained_line_by_line_and_nothing_is_kept(rig: Rig) -> None:
    oper, csrf = login(rig.console, "oper")
    bad = (
        catalog(3)
        .decode()
        .replace('help_phone = "0533-12345"', 'help_phone = "call us"')
        .replace('code = "retirement_status"', 'code = "Retirement"')
        .replace('en = "Medical insurance payment record" }', "}", 1)
        .replace('icon = "home"', 'icon = "home"\ncolour = "red"')
        .replace('zh = "医疗保险缴费记录", }', 'zh = "医疗保险缴费记录" }')
    )
    lines = bad.splitlines()
    page = upload(oper, csrf, bad.encode(), "bad.toml")
    assert page.status_code == 422
    problems = [text_of(li) for li in re.findall(r'<li class="problem">(.*?)</li>', page.text)]

    def line_of(needle: str) -> int:
        return next(n for n, line in enumerate(lines, 1) if needle in line)

    assert problems == [
        f"line {line_of('call us')}: station › help_phone must be a phone number: "
        "3 to 20 digits, '+', '-' or spaces",
        f"line {line_of('医疗保险缴费记录')}: "
        "service #2 (medical_insurance_record) › name › en is missing",
        f"line {line_of('Retirement')}: service #3 (Retirement) › code must be a code: "
        "2 to 41 small letters (a-z), digits or _, starting with a letter",
        f"line {line_of('colour')}: service #4 (residence_certificate) › colour "
        "is not a field a catalog has (misspelt?)",
    ]
    assert "bad.toml cannot be used: 4 problems. Nothing was kept" in text_of(page.text)

    # the API says the same, as data; a file that is not TOML at all names its line
    broken = oper.post(
        "/api/catalogs/drafts?filename=broken.toml",
        content=b"version = 3\n\n[station\nname = 1\n",
        headers={"X-CSRF-Token": csrf, "Content-Type": "application/toml"},
    )
    assert broken.status_code == 422
    (problem,) = broken.json()["problems"]
    assert problem["line"] == 3 and "is not valid TOML" in problem["message"]
    # a version that does not rise above the live one is refused before anything is kept
    again = upload(oper, csrf, catalog(2), "same.toml")
    assert again.status_code == 422
    assert "version is 2, but version 2 of catalog.toml is live" in text_of(again.text)
    # too large: refused before it is read to the end
    huge = upload(oper, csrf, catalog(3) + b"#" * (300 * 1024))
    assert huge.status_code == 413 and "256 KiB" in huge.text
    bad_name = upload(oper, csrf, catalog(3), target="../catalog.toml")
    assert bad_name.status_code == 422 and "one plain file name" in text_of(bad_name.text)

    assert rig.drafts() == []
    refused = [a for a in audit_actions(rig.console) if a[1] == "catalog_upload"]
    assert refused == [("oper", "catalog_upload", False)] * 4
    assert rig.signed()["sha256"] == rig.live.sha256  # the repository did not change


def test_a_valid_upload_becomes_a_draft_that_shows_what_it_changes(rig: Rig) -> None:
    oper, csrf = login(rig.console, "oper")
    data = catalog(3, changed=True)
    done = upload(oper, csrf, data, "spring.toml")
    assert done.status_code == 303, done.text
    location = done.headers["location"]
    assert re.fullmatch(r"/catalogs/drafts/\d+", location)
    (draft,) = rig.drafts()
    assert (draft.content, draft.catalog_version, draft.uploaded_by) == (data, 3, "oper")
    assert draft.sha256 == hashlib.sha256(data).hexdigest() and draft.signed_at is None

    page = oper.get(location)
    assert page.status_code == 200
    rows = dict(re.findall(r'data-code="([a-z_]+)" data-state="(\w+)"', page.text))
    assert rows == {"library_card": "added", "residence_certificate": "changed"}
    shown = text_of(page.text)
    assert "1 service added, 1 service changed." in shown
    assert (
        "description.en Proof of your household registration. → "
        "Proof of your household registration, for any office." in shown
    )
    assert "Compared with the live catalog.toml, version 2." in shown
    assert "+version = 3" in html.unescape(page.text)  # the text diff below
    assert 'id="sign-form"' in page.text

    api = oper.get(f"/api{location}").json()
    assert api["draft"]["uploaded_by"] == "oper" and api["live"]["version"] == 2
    assert api["diff"]["counts"] == {"service added": 1, "service changed": 1}
    changed = next(i for i in api["diff"]["items"] if i["state"] == "changed")
    assert [f["field"] for f in changed["fields"]] == ["description.en"]
    assert oper.get(f"/api{location}/content").content == data
    listed = oper.get("/catalogs")
    assert "spring.toml" in listed.text and 'id="upload-form"' in listed.text
    for path in ("/catalogs?fragment=1", f"{location}?fragment=1"):  # no live part: whole pages
        assert oper.get(path).status_code == 200
    assert ("oper", "catalog_upload", True) in audit_actions(rig.console)


# --- who may sign ---------------------------------------------------------------------------------


def test_technicians_may_look_but_not_upload_or_sign(rig: Rig) -> None:
    oper, csrf = login(rig.console, "oper")
    assert upload(oper, csrf, catalog(3)).status_code == 303
    (draft,) = rig.drafts()
    tech, tech_csrf = login(rig.console, "tech")
    page = tech.get("/catalogs")
    assert page.status_code == 200 and 'id="upload-form"' not in page.text
    assert 'id="sign-form"' not in tech.get(f"/catalogs/drafts/{draft.id}").text
    sign = tech.post(f"/catalogs/drafts/{draft.id}/sign", data={"csrf_token": tech_csrf})
    assert sign.status_code == 403 and "technician" in sign.text
    api = tech.post(f"/api/catalogs/drafts/{draft.id}/sign", headers={"X-CSRF-Token": tech_csrf})
    assert api.status_code == 403 and "technician" in api.json()["error"]
    assert upload(tech, tech_csrf, catalog(4)).status_code == 403
    denied = [a for a in audit_actions(rig.console) if a[0] == "tech" and a[1] == "denied"]
    assert denied == [("tech", "denied", False)] * 3
    assert rig.signed()["catalog_version"] == 2 and rig.drafts()[0].signed_at is None


def test_without_the_csrf_token_nothing_is_uploaded_or_signed(rig: Rig) -> None:
    oper, csrf = login(rig.console, "oper")
    assert upload(oper, None, catalog(3)).status_code == 403
    assert rig.drafts() == []
    assert upload(oper, csrf, catalog(3)).status_code == 303
    (draft,) = rig.drafts()
    assert oper.post(f"/catalogs/drafts/{draft.id}/sign").status_code == 403
    assert oper.post(f"/api/catalogs/drafts/{draft.id}/sign").status_code == 403
    wrong = oper.post(f"/catalogs/drafts/{draft.id}/sign", data={"csrf_token": "x" * 43})
    assert wrong.status_code == 403
    cross = oper.post(
        f"/api/catalogs/drafts/{draft.id}/sign",
        headers={"X-CSRF-Token": csrf, "Origin": "https://evil.example"},
    )
    assert cross.status_code == 403
    assert rig.signed()["catalog_version"] == 2 and rig.drafts()[0].signed_at is None


# --- signing --------------------------------------------------------------------------------------


def test_an_operator_signs_a_draft_that_a_terminal_then_accepts(rig: Rig, tmp_path: Path) -> None:
    oper, csrf = login(rig.console, "oper")
    data = catalog(3, changed=True)
    location = upload(oper, csrf, data, "spring.toml").headers["location"]
    signed = oper.post(f"{location}/sign", data={"csrf_token": csrf})
    assert signed.status_code == 303 and signed.headers["location"] == location
    sha = hashlib.sha256(data).hexdigest()
    assert rig.signed() == {"sha256": sha, "length": len(data), "catalog_version": 3}
    assert (rig.repo_dir / "targets" / f"{sha}.catalog.toml").read_bytes() == data
    assert oper.get("/api/catalogs").json()["warnings"] == []  # no root key beside the online
    (draft,) = rig.drafts()
    assert draft.signed_by == "oper" and draft.signed_at is not None
    assert ("oper", "catalog_sign", True) in audit_actions(rig.console)

    # the draft page offers the rollout, filled in; the Rollouts page reads it
    page = oper.get(location)
    assert 'id="signed"' in page.text and 'id="sign-form"' not in page.text
    assert "Compared with version 2, live before it." in text_of(page.text)
    assert 'data-code="library_card" data-state="added"' in page.text  # what signing changed
    link = re.search(r'id="rollout-link" href="([^"]+)"', page.text)
    assert link is not None
    url = html.unescape(link.group(1))
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert query == {
        "target": "catalog.toml",
        "version": "3",
        "sha256": sha,
        "length": str(len(data)),
        "metadata_url": REPO_URL + "metadata/",
        "targets_url": REPO_URL + "targets/",
    }
    rollouts = oper.get(url)
    assert rollouts.status_code == 200
    for name, value in query.items():
        assert f'id="{name}"' in rollouts.text
        assert re.search(
            rf'name="{name}" id="{name}"[^>]*value="{re.escape(value)}"', rollouts.text
        )

    # the list of versions: 3 signed here by oper, 2 from the command line
    overview = oper.get("/api/catalogs").json()
    versions = [(v["version"], v["signed_by"], v["live"]) for v in overview["versions"]]
    assert versions == [(3, "oper", True), (2, None, False)]
    assert [v["version"] for v in overview["live"]] == [3]
    listing = text_of(oper.get("/catalogs").text)
    assert "catalog.toml version 3" in listing and "by oper" in listing

    # a terminal's own TUF updater, trusting the repository's root, accepts it
    store = CatalogStore(tmp_path / "terminal" / "catalogs")
    install_anchor(store.dir, CatalogRepository(rig.repo_dir).trusted_root())
    server = serve_repository(rig.repo_dir)
    reports: list[dict[str, Any]] = []
    try:
        updater = CatalogUpdater(store.dir, reports.append)
        release = Release("catalog.toml", 3, sha, len(data))
        report = updater.handle(
            desired_payload(1, release, server.metadata_url, server.targets_url)
        )
    finally:
        server.close()
    assert report is not None and report["phase"] == "applied", report
    assert report["catalog_version"] == 3 and store.active.read_bytes() == data

    # once signed, it is not signed again; a second draft goes through the API
    again = oper.post(f"/api{location}/sign", headers={"X-CSRF-Token": csrf})
    assert again.status_code == 409 and "signed already" in again.json()["error"]
    made = oper.post(
        "/api/catalogs/drafts?filename=summer.toml",
        content=catalog(4),
        headers={"X-CSRF-Token": csrf, "Content-Type": "application/toml"},
    )
    assert made.status_code == 201, made.text
    assert made.json()["diff"]["counts"] == {"service changed": 1, "service removed": 1}
    second = oper.post(
        f"/api/catalogs/drafts/{made.json()['draft']['id']}/sign", headers={"X-CSRF-Token": csrf}
    )
    assert second.status_code == 201, second.text
    assert second.json()["release"]["version"] == 4
    assert second.json()["rollout_url"].startswith("/rollouts?target=catalog.toml&version=4&")
    assert rig.signed()["catalog_version"] == 4
    assert [a[2] for a in audit_actions(rig.console) if a[1] == "catalog_sign"] == [
        True,
        False,
        True,
    ]


def test_a_draft_whose_version_was_overtaken_is_not_signed(rig: Rig) -> None:
    oper, csrf = login(rig.console, "oper")
    first = upload(oper, csrf, catalog(3)).headers["location"]
    second = upload(oper, csrf, catalog(3, changed=True)).headers["location"]
    assert oper.post(f"{second}/sign", data={"csrf_token": csrf}).status_code == 303
    late = oper.post(f"/api{first}/sign", headers={"X-CSRF-Token": csrf})
    assert late.status_code == 409 and "does not rise above 3" in late.json()["error"]
    assert rig.signed()["sha256"] == hashlib.sha256(catalog(3, changed=True)).hexdigest()


def test_without_a_repository_catalogs_are_checked_but_not_signed(db_url: str) -> None:
    console = make_console(None, db_url)
    try:
        oper, csrf = login(console, "oper")
        page = oper.get("/catalogs")
        assert page.status_code == 200 and 'id="no-repository"' in page.text
        location = upload(oper, csrf, catalog(3)).headers["location"]
        sign = oper.post(f"/api{location}/sign", headers={"X-CSRF-Token": csrf})
        assert sign.status_code == 503 and "--catalog-repo" in sign.json()["error"]
        assert ("oper", "catalog_sign", False) in audit_actions(console)
    finally:
        console.stop()


# --- the review itself ----------------------------------------------------------------------------


def test_the_review_validates_as_a_terminal_and_compares_by_meaning() -> None:
    assert check_catalog(catalog(3)).version == 3
    # writing out a default, or reordering keys, changes nothing a terminal would show
    explicit = catalog(3).replace(b'icon = "home"', b'icon = "home"\nenabled = true')
    diff = diff_catalogs(catalog(3), explicit)
    assert diff.items == () and diff.station == () and not diff.same  # the text differs
    nothing_live = diff_catalogs(None, catalog(2))
    assert nothing_live.live_version is None
    demo = check_catalog(catalog(2))  # every item of the demo catalog is new
    assert nothing_live.counts == {
        "service added": len(demo.services),
        "bundle added": len(demo.bundles),
        "category added": len(demo.categories),
    }
    assert len(demo.services) >= 12 and demo.bundles and demo.categories
