"""The Rollouts page's start form: filled from the signed catalog repository when it has a live
catalog, else from the query (the Catalogs page's "Roll out" link), else typed by hand.

:func:`signed_releases` lists the catalogs the repository signs now (:class:`fleet.console.catalogs.
Shelf`), each with the URLs a terminal fetches it from when the console knows where the
repository is served (``--catalog-url``); :func:`form_values` picks what the form shows. The
page offers every signed release in a list whose choice fills the fields (``console.js``);
whatever is typed in them is what is rolled out, checked as before
(:func:`fleet.console.rollout_service.desired_from`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fleet.console.catalogs import Shelf

FIELDS = ("target", "version", "sha256", "length", "metadata_url", "targets_url")
DEFAULT_TARGET = "catalog.toml"


def signed_releases(shelf: Shelf | None, catalog_url: str | None) -> list[dict[str, Any]]:
    """The live signed catalogs, newest first, with their metadata and targets URLs if known."""
    if shelf is None:
        return []
    base = catalog_url.rstrip("/") if catalog_url else None
    releases = []
    for row in shelf.versions():
        if not row["live"]:
            continue
        urls = {"metadata_url": f"{base}/metadata/", "targets_url": f"{base}/targets/"}
        releases.append(
            {k: row[k] for k in ("target", "version", "sha256", "length")}
            | (urls if base else {"metadata_url": None, "targets_url": None})
        )
    return releases


def form_values(query: Mapping[str, str], signed: list[dict[str, Any]]) -> dict[str, str]:
    """What the form's catalog fields show: the query's if it gives any, else the signed
    release of ``catalog.toml`` (or the newest one), else empty."""
    given = {k: str(query.get(k, "")) for k in FIELDS}
    if any(given.values()) or not signed:
        return given
    pick = next((r for r in signed if r["target"] == DEFAULT_TARGET), signed[0])
    return {k: "" if pick.get(k) is None else str(pick[k]) for k in FIELDS}
