"""The catalog store in a terminal's state directory, shared by the agent and the UI.

The agent (:mod:`fleet.agent.catalog_update`) is its only writer; the kiosk
(:mod:`kiosk.shell.catalog_watch`, its ``active_catalog``) only reads it. Stdlib only, so the
kiosk does not import TUF::

    {state_dir}/catalogs/
        root.json        the trust anchor installed with the terminal (a root of the repository)
        tuf/             ngclient's metadata cache (verified roots, timestamp, snapshot, targets)
        staging/         downloads
        active.toml      the catalog the UI uses
        previous.toml    the one committed before it
        rollback.toml    during a swap: the active catalog as it was before
        swap.json        during a swap: {rev, had_active}; a restart rolls the swap back
        applied.json     the last commit: {rev, catalog_version, sha256, target, ts}
        report.json      the last ``reported`` payload
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shutil
from pathlib import Path
from typing import Any

log = logging.getLogger("kiosk.agent.catalog")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json(path: Path, value: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(value, f, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


class CatalogStore:
    """The catalog files in the state directory, shared by the agent (writer) and the UI."""

    def __init__(self, directory: Path) -> None:
        self.dir = Path(directory)
        self.anchor = self.dir / "root.json"
        self.tuf_dir = self.dir / "tuf"
        self.staging = self.dir / "staging"
        self.active = self.dir / "active.toml"
        self.previous = self.dir / "previous.toml"
        self.rollback_copy = self.dir / "rollback.toml"
        self.swap_marker = self.dir / "swap.json"
        self.applied_file = self.dir / "applied.json"
        self.report_file = self.dir / "report.json"

    def prepare(self) -> None:
        for folder in (self.dir, self.tuf_dir, self.staging):
            folder.mkdir(parents=True, exist_ok=True)

    def applied(self) -> dict[str, Any]:
        return read_json(self.applied_file)

    def swapping(self) -> bool:
        return self.swap_marker.exists()

    def recover(self) -> bool:
        """Undo a swap a crash interrupted before its commit; True if there was one."""
        if not self.swapping():
            return False
        rev = self.roll_back()
        log.warning("an interrupted catalog swap (rev %s) was rolled back", rev)
        return True

    def swap(self, staged: Path, rev: int) -> None:
        """Make ``staged`` the active catalog, keeping the current one for a rollback."""
        had_active = self.active.exists()
        write_json(self.swap_marker, {"rev": rev, "had_active": had_active})
        if had_active:
            tmp = self.rollback_copy.with_suffix(".tmp")
            shutil.copyfile(self.active, tmp)
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            os.replace(tmp, self.rollback_copy)
        with open(staged, "rb") as f:
            os.fsync(f.fileno())
        os.replace(staged, self.active)
        _fsync_dir(self.dir)

    def roll_back(self) -> Any:
        """Put the catalog active before the swap back (or none, if there was none)."""
        marker = read_json(self.swap_marker)
        if self.rollback_copy.exists():
            os.replace(self.rollback_copy, self.active)
        elif not marker.get("had_active", True):
            self.active.unlink(missing_ok=True)
        self.swap_marker.unlink(missing_ok=True)
        _fsync_dir(self.dir)
        return marker.get("rev")

    def commit(self, record: dict[str, Any]) -> None:
        if self.rollback_copy.exists():
            os.replace(self.rollback_copy, self.previous)
        write_json(self.applied_file, record)
        self.swap_marker.unlink(missing_ok=True)
        _fsync_dir(self.dir)


def committed_catalog(store_dir: Path) -> Path | None:
    """The catalog the UI should use: the committed active one, or during a swap the one it
    replaces; None if the store holds none."""
    store = CatalogStore(store_dir)
    if store.swapping():
        return store.rollback_copy if store.rollback_copy.exists() else None
    return store.active if store.active.exists() else None


def install_anchor(store_dir: Path, root: bytes) -> None:
    """Install the trust anchor (a root of the repository) on a terminal being provisioned."""
    store = CatalogStore(store_dir)
    store.prepare()
    tmp = store.anchor.with_suffix(".tmp")
    tmp.write_bytes(root)
    os.replace(tmp, store.anchor)
    with contextlib.suppress(OSError):
        _fsync_dir(store.dir)
