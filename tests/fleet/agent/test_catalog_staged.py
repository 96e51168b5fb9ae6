"""``staged`` and ``applied`` reported apart: a catalog is staged when the agent has verified and
swapped it into the store, applied when the kiosk serves residents with it (the version it notes
in the journal), which a kiosk in a session does only after it. A real repository served over
HTTP, the real updater; the kiosk's note is the ``serving`` the agent reads from the journal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fleet.agent.catalog_update import CatalogUpdater
from fleet.trust.catalog_repo import CatalogRepository, RepositoryServer, desired_payload
from statedir.catalog_store import CatalogStore, install_anchor
from tests.fleet.trust.test_catalogs import catalog, until


def test_staged_until_the_kiosk_serves_it_then_applied_for_the_same_rev(tmp_path: Path) -> None:
    repo = CatalogRepository.create(tmp_path / "repo", tmp_path / "root-keys")
    release = repo.publish_catalog(catalog(2))
    store = CatalogStore(tmp_path / "catalogs")
    install_anchor(store.dir, repo.trusted_root())
    reports: list[dict[str, Any]] = []
    serving = {"version": 1}  # a resident is being served with version 1
    updater = CatalogUpdater(store.dir, reports.append, serving=lambda: serving["version"])
    server = RepositoryServer(repo.directory).start()
    updater.start()
    try:
        updater.submit(desired_payload(3, release, server.metadata_url, server.targets_url))
        until(lambda: reports and reports[-1]["phase"] == "staged", what="staged")
        assert [r["phase"] for r in reports] == ["downloading", "verified", "staged"]
        assert (reports[-1]["rev"], reports[-1]["catalog_version"]) == (3, 2)
        assert store.active.read_bytes() == catalog(2)  # in the store, not serving yet
        assert updater.check_serving() is None
        serving["version"] = 2  # the session ended: the kiosk took it up
        applied = updater.check_serving()
        assert applied is not None and (applied["phase"], applied["rev"]) == ("applied", 3)
        assert reports[-1] == applied and updater.check_serving() is None  # once
        assert updater.last_report() == applied  # kept on disk for the next connect
    finally:
        updater.stop()
        server.close()


def test_without_a_kiosk_that_noted_a_version_applied_follows_staged(tmp_path: Path) -> None:
    repo = CatalogRepository.create(tmp_path / "repo", tmp_path / "root-keys")
    release = repo.publish_catalog(catalog(2))
    store = CatalogStore(tmp_path / "catalogs")
    install_anchor(store.dir, repo.trusted_root())
    reports: list[dict[str, Any]] = []
    updater = CatalogUpdater(store.dir, reports.append, serving=lambda: None)
    server = RepositoryServer(repo.directory).start()
    try:
        payload = desired_payload(1, release, server.metadata_url, server.targets_url)
        final = updater.handle(payload)
        assert final is not None and final["phase"] == "applied"
        assert [r["phase"] for r in reports] == ["downloading", "verified", "staged", "applied"]
    finally:
        server.close()
