"""Catalog downloads end by their deadline, however slowly a mirror drips its bytes.

A real repository (:class:`fleet.trust.catalog_repo.CatalogRepository`) is served by a real HTTP
server on a thread, which can be told to drip one file (its headers or its body) at about one
byte a second: the terminal's update gives up by the deadline, says ``timeout`` in its report,
and takes the next revision up.
"""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from fleet.agent.catalog_update import CatalogUpdater
from fleet.agent.deadline_fetch import DeadlineFetcher, DownloadDeadline
from fleet.trust.catalog_repo import CatalogRepository, desired_payload
from kiosk.shell.catalog_watch import DEMO_CATALOG
from statedir.catalog_store import CatalogStore, install_anchor

DEMO = DEMO_CATALOG.read_text(encoding="utf-8")
MARGIN_S = 1.5  # thread wake-ups and a loaded CI machine (2 cores)


def catalog(version: int) -> bytes:
    return DEMO.replace("\nversion = 1\n", f"\nversion = {version}\n", 1).encode()


def until(cond: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


class _DripHandler(http.server.SimpleHTTPRequestHandler):
    server: DripServer

    def do_GET(self) -> None:
        name = self.path.rsplit("/", 1)[-1]
        drip = self.server.take_drip(name)
        if drip is None:
            super().do_GET()
            return
        path = Path(self.translate_path(self.path))
        body = path.read_bytes() if path.is_file() else b""
        head = (
            f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n"
            "Content-Type: application/json\r\n\r\n"
        ).encode()
        try:
            if drip == "headers":
                self._drip(head)
            else:
                self.wfile.write(head)
                self.wfile.flush()
            self._drip(body)
        except OSError:  # the terminal gave up and closed the connection
            self.server.dropped.set()
        self.close_connection = True

    def _drip(self, data: bytes) -> None:
        for i in range(len(data)):
            if self.server.closing.is_set():
                return
            self.wfile.write(data[i : i + 1])
            self.wfile.flush()
            time.sleep(1.0)

    def log_message(self, format: str, *args: Any) -> None:
        self.server.requests.append(self.path)


class DripServer(http.server.ThreadingHTTPServer):
    """A repository's files; ``drips`` maps a file name to ``"headers"`` or ``"body"``: the next
    request for it is answered at one byte a second (once; later requests are served at once)."""

    daemon_threads = True

    def __init__(self, directory: Path) -> None:
        self.drips: dict[str, str] = {}
        self.requests: list[str] = []
        self.dropped = threading.Event()
        self.closing = threading.Event()
        self._lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), partial(_DripHandler, directory=str(directory)))
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()

    def take_drip(self, name: str) -> str | None:
        with self._lock:
            return self.drips.pop(name, None)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def close(self) -> None:
        self.closing.set()
        self.shutdown()
        self.server_close()


@pytest.fixture
def repo(tmp_path: Path) -> CatalogRepository:
    return CatalogRepository.create(tmp_path / "repo", tmp_path / "root-keys")


@pytest.fixture
def server(repo: CatalogRepository) -> Iterator[DripServer]:
    s = DripServer(repo.directory)
    yield s
    s.close()


def test_a_dripped_timestamp_fails_by_the_deadline_and_the_next_rev_is_taken_up(
    tmp_path: Path, repo: CatalogRepository, server: DripServer
) -> None:
    urls = (f"{server.url}/metadata/", f"{server.url}/targets/")
    store = CatalogStore(tmp_path / "catalogs")
    install_anchor(store.dir, repo.trusted_root())
    reports: list[dict[str, Any]] = []
    timeout_s = 2.0  # per download; the drip would take ~600 s (timestamp.json at 1 byte/s)
    updater = CatalogUpdater(store.dir, reports.append, timeout_s=timeout_s, retry_s=600)
    updater.start()
    try:
        server.drips["timestamp.json"] = "body"
        started = time.monotonic()
        updater.submit(desired_payload(1, repo.publish_catalog(catalog(2)), *urls))
        until(lambda: reports and reports[-1]["phase"] == "downloading", what="rev 1 starts")
        updater.submit(desired_payload(2, repo.publish_catalog(catalog(3)), *urls))  # queued
        until(lambda: any(r["phase"] == "failed" for r in reports), what="rev 1 gives up")
        elapsed = time.monotonic() - started
        [failed] = [r for r in reports if r["phase"] == "failed"]
        assert (failed["rev"], failed["error"]) == (1, "timeout"), failed
        assert "timestamp.json" in failed["detail"] and "after its start" in failed["detail"]
        assert elapsed < timeout_s + MARGIN_S, elapsed
        until(lambda: reports[-1]["phase"] == "applied", what="rev 2 applied")
        assert reports[-1]["rev"] == 2 and store.active.read_bytes() == catalog(3)
        assert time.monotonic() - started < timeout_s + 2 * MARGIN_S + 3.0
        until(server.dropped.is_set, timeout=5, what="the dripped connection closed")
        until(
            lambda: not [t for t in threading.enumerate() if t.name == "agent-catalog-fetch"],
            timeout=5,
            what="no reader left",
        )
    finally:
        updater.stop()


@pytest.mark.parametrize("drip", ["headers", "body"])
def test_each_download_ends_by_its_deadline_whatever_is_dripped(
    repo: CatalogRepository, server: DripServer, drip: str
) -> None:
    server.drips["1.root.json"] = drip
    fetcher = DeadlineFetcher(1.0, socket_timeout=30)
    started = time.monotonic()
    with pytest.raises(DownloadDeadline) as refused:
        fetcher.download_bytes(f"{server.url}/metadata/1.root.json", 1024 * 1024)
    assert time.monotonic() - started < 1.0 + MARGIN_S
    assert "1.root.json" in str(refused.value)
    # served at once, the same file downloads whole
    root = (repo.metadata_dir / "1.root.json").read_bytes()
    assert fetcher.download_bytes(f"{server.url}/metadata/1.root.json", len(root)) == root


def test_all_downloads_of_one_update_share_a_deadline(
    repo: CatalogRepository, server: DripServer
) -> None:
    fetcher = DeadlineFetcher(30.0, until=time.monotonic() + 1.0)
    server.drips["1.root.json"] = "body"
    started = time.monotonic()
    with pytest.raises(DownloadDeadline):
        fetcher.download_bytes(f"{server.url}/metadata/1.root.json", 1024 * 1024)
    assert time.monotonic() - started < 1.0 + MARGIN_S


def test_http_errors_and_oversize_bodies_are_python_tufs_own(
    repo: CatalogRepository, server: DripServer
) -> None:
    from tuf.api import exceptions as tuf_errors

    fetcher = DeadlineFetcher(5.0)
    with pytest.raises(tuf_errors.DownloadHTTPError):
        fetcher.download_bytes(f"{server.url}/metadata/99.root.json", 1024)
    with pytest.raises(tuf_errors.DownloadLengthMismatchError):
        fetcher.download_bytes(f"{server.url}/metadata/1.root.json", 10)
