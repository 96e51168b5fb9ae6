"""Catalog updates on the terminal: ``desired`` in, a verified catalog swapped in, ``reported``.

The agent hands every ``desired`` message to :class:`CatalogUpdater`, which applies it on a thread
of its own (never on paho's network thread):

1. **stage**: python-tuf's ngclient refreshes the repository's metadata from the trust anchor
   (root, then timestamp, snapshot, targets: signatures and thresholds, versions that only rise,
   expiry) and downloads the catalog into ``staging/``, checking its length and SHA-256.
   Phase ``downloading``.
2. **verify**: the signed target must match what ``desired`` says (sha256, length, catalog
   version), stay under the size limit, and its catalog version must rise above the active one.
   Phase ``verified``.
3. **atomic swap**: the active catalog is kept as ``rollback.toml``, the staged one replaces
   ``active.toml`` (``os.replace``, files and folder fsynced). ``swap.json`` marks a swap in
   progress: the UI does not pick a catalog up while it exists, and a restart rolls it back.
4. **self-test**: ``active.toml`` is read back, its SHA-256 checked and parsed with
   :func:`flows.catalog.load_catalog` (the schema).
5. **commit**: the old active becomes ``previous.toml``; ``applied.json`` records rev, version
   and hash. Phase ``staged``: the kiosk takes the catalog up between sessions, never in the
   middle of one (``kiosk.shell.catalog_watch``).
6. **applied**: when the kiosk serves residents with it (the version it notes in the journal's
   ``catalog_version``, read through ``serving``), :meth:`CatalogUpdater.check_serving`, which the
   agent calls every second, reports phase ``applied`` for the same rev. Where no kiosk has ever
   noted a version (``serving`` gives None: a bare agent, a state directory being provisioned)
   there is no session to wait for, and ``applied`` follows ``staged`` at once.

Any failure leaves (or puts back) the previous ``active.toml`` byte for byte, and ``reported``
says ``phase: failed`` with ``error`` (a short reason, :class:`Reason`) and ``detail``.

Every download (each metadata file, the catalog) ends ``timeout_s`` after its start at the
latest, and all of one update's downloads ``update_timeout_s`` after the first
(:mod:`fleet.agent.deadline_fetch`): a mirror that drips bytes cannot hold the worker, and the
next revision is taken up. Such a failure is ``timeout``, retried like ``download``. The size
limit is :data:`flows.catalog.MAX_CATALOG_BYTES`, the one the signer applies.

The files live in the catalog store, :mod:`statedir.catalog_store`.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuf.api import exceptions as tuf_errors
from tuf.ngclient import Updater, UpdaterConfig

from fleet.agent.deadline_fetch import DeadlineFetcher, DownloadDeadline
from flows.catalog import MAX_CATALOG_BYTES as MAX_CATALOG_BYTES  # the signer's limit too
from flows.catalog import Catalog, CatalogError, load_catalog
from statedir.catalog_store import CatalogStore, read_json, write_json

log = logging.getLogger("kiosk.agent.catalog")

CATALOG_VERSION_FIELD = "catalog_version"  # the signed custom field (fleet.trust.catalog_repo)


class Reason(enum.StrEnum):
    """Why an update failed: the ``error`` field of ``reported``."""

    SIGNATURE = "signature"  # metadata not signed by the threshold of trusted keys (forged)
    ROLLBACK = "rollback"  # metadata or catalog version lower than one already seen
    EXPIRED = "expired"  # metadata past its expiry (a frozen repository)
    TOO_LARGE = "too_large"  # the catalog is over the terminal's size limit
    HASH_MISMATCH = "hash_mismatch"  # content differs from what is signed or desired
    VERSION_MISMATCH = "version_mismatch"  # catalog version differs from the signed/desired one
    MALFORMED = "malformed"  # the catalog fails the schema (self-test)
    UNKNOWN_TARGET = "unknown_target"  # the repository signs no such catalog
    UNTRUSTED = "untrusted"  # no trust anchor installed, or it cannot be read
    METADATA = "metadata"  # metadata the client cannot use (missing, unparsable)
    DOWNLOAD = "download"  # the repository could not be reached (transient: retried)
    TIMEOUT = "timeout"  # a download or the whole update outlasted its deadline (retried)
    INVALID_DESIRED = "invalid_desired"  # the desired message lacks or mistypes a field
    STORAGE = "storage"  # the catalog store could not be written


TRANSIENT = {Reason.DOWNLOAD, Reason.TIMEOUT, Reason.STORAGE}


class ApplyError(Exception):
    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Desired:
    rev: int
    target: str
    version: int
    sha256: str
    length: int
    metadata_url: str
    targets_url: str

    @classmethod
    def parse(cls, payload: dict[str, Any]) -> Desired | None:
        """The catalog part of a ``desired`` message; None when it names no catalog."""
        rev = payload.get("rev")
        if not isinstance(rev, int) or isinstance(rev, bool) or rev < 1:
            raise ApplyError(Reason.INVALID_DESIRED, "rev must be a positive integer")
        catalog = payload.get("catalog")
        if catalog is None:
            return None
        if not isinstance(catalog, dict):
            raise ApplyError(Reason.INVALID_DESIRED, "catalog must be an object")
        try:
            target = str(catalog["target"])
            version, length = int(catalog["version"]), int(catalog["length"])
            sha = str(catalog["sha256"]).lower()
            metadata_url = str(payload["metadata_url"])
            targets_url = str(payload.get("targets_url") or _sibling_targets(metadata_url))
        except (KeyError, TypeError, ValueError) as err:
            raise ApplyError(
                Reason.INVALID_DESIRED, f"catalog field missing or mistyped: {err}"
            ) from err
        if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
            raise ApplyError(Reason.INVALID_DESIRED, "catalog.sha256 must be 64 hex digits")
        if not target or "/" in target or target.startswith("."):
            raise ApplyError(Reason.INVALID_DESIRED, "catalog.target must be a plain file name")
        for url in (metadata_url, targets_url):
            if not url.startswith(("http://", "https://")):
                raise ApplyError(Reason.INVALID_DESIRED, f"{url!r} is not an http(s) URL")
        if version < 1 or length < 0:
            raise ApplyError(Reason.INVALID_DESIRED, "catalog version and length must be positive")
        return cls(rev, target, version, sha, length, metadata_url, targets_url)


def _sibling_targets(metadata_url: str) -> str:
    """``.../metadata/`` → ``.../targets/``, the layout of :mod:`fleet.trust.catalog_repo`."""
    base = metadata_url.rstrip("/")
    if not base.endswith("/metadata"):
        raise ValueError("targets_url is needed when metadata_url does not end in /metadata/")
    return base.removesuffix("metadata") + "targets/"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(65536), b""):
            digest.update(block)
    return digest.hexdigest()


def _classify(err: Exception) -> ApplyError:
    """Map python-tuf's exceptions to the reasons ``reported`` gives."""
    if isinstance(err, ApplyError):
        return err
    detail = f"{type(err).__name__}: {err}"
    if isinstance(err, tuf_errors.UnsignedMetadataError):
        return ApplyError(Reason.SIGNATURE, detail)
    if isinstance(err, tuf_errors.BadVersionNumberError):
        return ApplyError(Reason.ROLLBACK, detail)
    if isinstance(err, tuf_errors.ExpiredMetadataError):
        return ApplyError(Reason.EXPIRED, detail)
    if isinstance(
        err, tuf_errors.LengthOrHashMismatchError | tuf_errors.DownloadLengthMismatchError
    ):
        return ApplyError(Reason.HASH_MISMATCH, detail)
    if isinstance(err, tuf_errors.RepositoryError):
        return ApplyError(Reason.METADATA, detail)
    if isinstance(err, DownloadDeadline):
        return ApplyError(Reason.TIMEOUT, str(err))
    if isinstance(err, tuf_errors.DownloadError):
        cause = err.__cause__
        return ApplyError(Reason.DOWNLOAD, f"{detail}" + (f" ({cause})" if cause else ""))
    if isinstance(err, CatalogError):
        return ApplyError(Reason.MALFORMED, str(err))
    if isinstance(err, OSError):
        return ApplyError(Reason.STORAGE, detail)
    return ApplyError(Reason.METADATA, detail)


class CatalogUpdater:
    """Applies ``desired`` catalogs to the store and says how it went through ``publish``.

    ``publish`` receives each ``reported`` payload; the agent sends it retained, QoS 1.
    """

    def __init__(
        self,
        store_dir: Path,
        publish: Callable[[dict[str, Any]], None],
        *,
        max_bytes: int = MAX_CATALOG_BYTES,
        timeout_s: float = 30.0,
        update_timeout_s: float = 120.0,
        retry_s: float = 60.0,
        serving: Callable[[], int | None] | None = None,
    ) -> None:
        self.store = CatalogStore(store_dir)
        self.serving = serving  # the catalog version the kiosk serves residents with, if known
        self._reporting = threading.Lock()  # the worker's and check_serving's reports in order
        self.store.prepare()
        self.store.recover()
        self.publish = publish
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s  # each download, from its start (a drip cannot outlast it)
        self.update_timeout_s = update_timeout_s  # all the downloads of one update together
        self.retry_s = retry_s  # after a transient failure (repository unreachable), try again
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self.idle = threading.Event()
        self.idle.set()

    # --- the worker ----------------------------------------------------------------------------

    def submit(self, payload: dict[str, Any]) -> None:
        """Any thread (paho's): queue a ``desired`` payload for the worker."""
        self.idle.clear()
        self._queue.put(payload)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="agent-catalog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout=self.timeout_s + 5)  # a download in progress ends by then

    def _run(self) -> None:
        retry: dict[str, Any] | None = None  # a desired that failed for a transient reason
        while True:
            try:
                payload = self._queue.get(timeout=self.retry_s if retry is not None else None)
            except queue.Empty:
                payload = retry
            if payload is None:
                return
            while True:  # only the newest desired matters
                try:
                    newer = self._queue.get_nowait()
                except queue.Empty:
                    break
                if newer is None:
                    return
                payload = newer
            retry = None
            try:
                report = self.handle(payload)
                if report and report["phase"] == "failed" and report["error"] in TRANSIENT:
                    retry = payload
            except Exception:
                log.exception("applying a desired catalog failed unexpectedly")
            finally:
                if self._queue.empty():
                    self.idle.set()

    # --- one desired ---------------------------------------------------------------------------

    def last_report(self) -> dict[str, Any] | None:
        report = read_json(self.store.report_file)
        return report or None

    def check_serving(self) -> dict[str, Any] | None:
        """Report ``applied`` once the kiosk serves the staged catalog; the report, or None."""
        with self._reporting:
            last = self.last_report()
            if not last or last.get("phase") != "staged":
                return None
            serving = self.serving() if self.serving is not None else None
            if serving is not None and serving != last.get("catalog_version"):
                return None
            log.info("catalog version %s serves residents (rev %s)", serving, last.get("rev"))
            return self._report_now(int(last["rev"]), "applied")

    def _staged(self, desired: Desired) -> dict[str, Any]:
        report = self._report(desired.rev, "staged")
        return self.check_serving() or report

    def _report(self, rev: int, phase: str, error: ApplyError | None = None) -> dict[str, Any]:
        with self._reporting:
            return self._report_now(rev, phase, error)

    def _report_now(self, rev: int, phase: str, error: ApplyError | None = None) -> dict[str, Any]:
        applied = self.store.applied()
        report = {
            "rev": rev,
            "rev_applied": applied.get("rev", 0),
            "catalog_version": applied.get("catalog_version"),
            "phase": phase,
            "error": str(error.reason) if error else None,
            "detail": error.detail[:500] if error else None,
            "ts": time.time(),
        }
        try:
            write_json(self.store.report_file, report)
        except OSError:
            log.exception("cannot keep the report on disk")
        self.publish(report)
        return report

    def handle(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        """Apply one ``desired`` payload; returns the final report, None if it was ignored."""
        rev = payload.get("rev")
        try:
            desired = Desired.parse(payload)
        except ApplyError as err:
            if isinstance(rev, int) and rev <= int(self.store.applied().get("rev", 0)):
                return None
            log.warning("desired rejected: %s", err)
            return self._report(rev if isinstance(rev, int) else 0, "failed", err)
        if desired is None:
            return None
        applied_rev = int(self.store.applied().get("rev", 0))
        if desired.rev <= applied_rev:
            log.info("desired rev %d is applied already (rev %d)", desired.rev, applied_rev)
            return None
        last = self.last_report() or {}
        if desired.rev < int(last.get("rev", 0)):
            log.info("desired rev %d is older than rev %s; ignored", desired.rev, last["rev"])
            return None
        if (
            last.get("rev") == desired.rev
            and last.get("phase") == "failed"
            and last.get("error") not in TRANSIENT
        ):
            log.info("desired rev %d failed before (%s): not again", desired.rev, last["error"])
            return None
        return self.apply(desired)

    def apply(self, desired: Desired) -> dict[str, Any]:
        self._report(desired.rev, "downloading")
        staged: Path | None = None
        try:
            staged = self._stage_and_verify(desired)
        except Exception as err:
            failure = _classify(err)
            log.warning("catalog rev %d rejected: %s", desired.rev, failure)
            self._discard(staged)
            return self._report(desired.rev, "failed", failure)
        if staged is None:  # this very catalog is active already
            self.store.commit(self._record(desired))
            return self._staged(desired)
        self._report(desired.rev, "verified")
        try:
            self.store.swap(staged, desired.rev)
        except OSError as err:
            self.store.roll_back()
            self._discard(staged)
            return self._report(desired.rev, "failed", _classify(err))
        try:
            self._self_test(desired)
            self.store.commit(self._record(desired))
        except Exception as err:
            failure = _classify(err)
            self.store.roll_back()
            log.warning("catalog rev %d rolled back: %s", desired.rev, failure)
            return self._report(desired.rev, "failed", failure)
        log.info("catalog version %d staged (rev %d)", desired.version, desired.rev)
        return self._staged(desired)

    def _record(self, desired: Desired) -> dict[str, Any]:
        return {
            "rev": desired.rev,
            "catalog_version": desired.version,
            "sha256": desired.sha256,
            "target": desired.target,
            "ts": time.time(),
        }

    def _discard(self, staged: Path | None) -> None:
        if staged is not None:
            staged.unlink(missing_ok=True)

    def _active_version(self) -> tuple[int, str] | None:
        """Version and SHA-256 of the active catalog (None if there is none that parses)."""
        if not self.store.active.exists():
            return None
        try:
            return load_catalog(self.store.active).version, _sha256(self.store.active)
        except CatalogError:
            return None

    def _stage_and_verify(self, desired: Desired) -> Path | None:
        store = self.store
        if desired.length > self.max_bytes:
            raise ApplyError(
                Reason.TOO_LARGE, f"desired catalog of {desired.length} bytes > {self.max_bytes}"
            )
        try:
            anchor = store.anchor.read_bytes()
        except OSError as err:
            raise ApplyError(
                Reason.UNTRUSTED, f"no trust anchor at {store.anchor}: {err.strerror}"
            ) from err
        updater = Updater(
            metadata_dir=str(store.tuf_dir),
            metadata_base_url=desired.metadata_url,
            target_dir=str(store.staging),
            target_base_url=desired.targets_url,
            fetcher=DeadlineFetcher(
                self.timeout_s,
                socket_timeout=max(1, int(self.timeout_s)),
                user_agent="station-kiosk",
                until=time.monotonic() + self.update_timeout_s,
            ),
            config=UpdaterConfig(targets_max_length=4 * self.max_bytes),
            bootstrap=anchor,
        )
        updater.refresh()
        info = updater.get_targetinfo(desired.target)
        if info is None:
            raise ApplyError(Reason.UNKNOWN_TARGET, f"the repository signs no {desired.target!r}")
        if info.length > self.max_bytes:
            raise ApplyError(
                Reason.TOO_LARGE, f"signed catalog of {info.length} bytes > {self.max_bytes}"
            )
        signed_sha = info.hashes.get("sha256", "")
        if signed_sha != desired.sha256 or info.length != desired.length:
            raise ApplyError(
                Reason.HASH_MISMATCH,
                f"desired sha256 {desired.sha256[:12]}…/{desired.length} B, "
                f"signed {signed_sha[:12]}…/{info.length} B",
            )
        custom = info.custom if isinstance(info.custom, dict) else {}
        signed_version = custom.get(CATALOG_VERSION_FIELD)
        if signed_version != desired.version:
            raise ApplyError(
                Reason.VERSION_MISMATCH,
                f"desired catalog version {desired.version}, signed {signed_version}",
            )
        active = self._active_version()
        if active is not None:
            version, sha = active
            if version == desired.version and sha == desired.sha256:
                return None
            if desired.version <= version:
                raise ApplyError(
                    Reason.ROLLBACK,
                    f"catalog version {desired.version} does not rise above the active {version}",
                )
        staged = store.staging / f"{desired.sha256}.{desired.target}"
        updater.download_target(info, filepath=str(staged))
        return staged

    def _self_test(self, desired: Desired) -> Catalog:
        active = self.store.active
        sha = _sha256(active)
        if sha != desired.sha256:
            raise ApplyError(Reason.HASH_MISMATCH, f"active catalog reads back as {sha[:12]}…")
        catalog = load_catalog(active)
        if catalog.version != desired.version:
            raise ApplyError(
                Reason.VERSION_MISMATCH,
                f"the catalog says version {catalog.version}, its signature {desired.version}",
            )
        return catalog
