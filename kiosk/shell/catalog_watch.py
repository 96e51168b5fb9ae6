"""The UI's side of catalog updates: notice a newly committed catalog and offer it to the session.

The agent verifies and swaps catalogs into the store (:mod:`statedir.catalog_store`); the UI never
talks to the network. This watcher polls the store (a stat every few seconds), loads a changed
``active.toml`` with the schema and hands it to ``offer`` (``Runtime.offer_catalog``), which the
session applies only between sessions. It ignores the store while a swap is in progress, and a
catalog that does not load (the agent's self-test rolls such a swap back).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from assets import ASSETS_DIR
from flows.catalog import Catalog, CatalogError, load_catalog
from kiosk.config import Config
from statedir.catalog_store import CatalogStore, committed_catalog

log = logging.getLogger("kiosk.catalog")

POLL_S = 3.0


def store_dir(state_dir: Path) -> Path:
    """Where the agent keeps the catalogs of the station whose state directory is ``state_dir``."""
    return state_dir / "catalogs"


class CatalogWatch:
    def __init__(
        self,
        directory: Path,
        offer: Callable[[Catalog], object],
        current: Catalog,
        *,
        interval_s: float = POLL_S,
    ) -> None:
        self.store = CatalogStore(directory)
        self.offer = offer
        self.current = current
        self.interval_s = interval_s
        self._seen: tuple[int, int, int] | None = None
        self._thread: threading.Thread | None = None

    def _signature(self) -> tuple[int, int, int] | None:
        try:
            st = self.store.active.stat()
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_mtime_ns, st.st_size

    def poll_once(self) -> Catalog | None:
        """Offer the active catalog if it changed and differs from the current one."""
        if self.store.swapping():
            return None  # not committed yet: it may still be rolled back
        signature = self._signature()
        if signature is None or signature == self._seen:
            return None
        try:
            catalog = load_catalog(self.store.active)
        except CatalogError as err:
            log.error(
                "the active catalog does not load; keeping version %d: %s",
                self.current.version,
                err,
            )
            self._seen = signature  # not again until it changes
            return None
        if self.store.swapping() or self._signature() != signature:
            return None  # it changed while we read it: next round
        self._seen = signature
        if catalog == self.current:
            return None
        log.info("catalog version %d is in the store; offering it", catalog.version)
        self.current = catalog
        self.offer(catalog)
        return catalog

    def start(self, stop: threading.Event) -> None:
        """Poll on a thread of its own until ``stop`` is set."""
        self._thread = threading.Thread(
            target=self._loop, args=(stop,), name="catalog-watch", daemon=True
        )
        self._thread.start()

    def _loop(self, stop: threading.Event) -> None:
        while not stop.wait(self.interval_s):
            try:
                self.poll_once()
            except Exception:
                log.exception("watching the catalog store failed")


DEMO_CATALOG = ASSETS_DIR / "catalog" / "demo.toml"


def active_catalog(config: Config) -> Catalog:
    """The catalog the agent committed to the store, else the configured one (or the demo)."""
    configured = Path(config.station.catalog) if config.station.catalog else DEMO_CATALOG
    store = store_dir(config.state_dir)
    for path in (committed_catalog(store), store / "previous.toml"):
        if path is not None and path.exists():
            try:
                return load_catalog(path)
            except CatalogError:
                logging.getLogger("kiosk.catalog").exception("%s does not load", path)
    return load_catalog(configured)
