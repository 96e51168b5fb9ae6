"""The centre's catalog repository: signed catalogs on disk, in the layout of TUF.

python-tuf's Metadata API builds and signs the four top-level roles; terminals verify them with
python-tuf's ngclient (:mod:`fleet.agent.catalog_update`). What each role defends against:

- ``root`` names the keys of every role and how many must sign (thresholds). Its keys are kept
  offline (``root_keys``, a folder apart from the repository, e.g. on a removable disk): only a
  new root signed by the old root's threshold *and* its own is believed, so a stolen online key
  is replaced by rotating it out of the root.
- ``targets`` signs each catalog's length, SHA-256 and catalog version (arbitrary content).
- ``snapshot`` and ``timestamp`` tie the repository's state together and expire quickly, so a
  mirror cannot serve an old state (rollback) nor keep serving one for ever (freeze).

Every version only goes up. Consistent snapshots are on: metadata is served as
``metadata/{version}.{role}.json`` and catalogs as ``targets/{sha256}.{name}``, so a terminal
reading while the repository changes never mixes two states.

Layout of the repository folder (everything under ``metadata/`` and ``targets/`` is public)::

    metadata/1.root.json, 2.root.json, ...   every root ever signed (terminals walk the chain)
    metadata/{n}.targets.json, {n}.snapshot.json, timestamp.json
    targets/{sha256}.{name}
    keys/{keyid}.pem                         the online keys: targets, snapshot, timestamp

A catalog is validated with :mod:`flows.catalog` (its size limit, nesting and schema: the
terminals' own checks) *before* it is signed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import http.server
import os
import secrets
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from securesystemslib.signer import CryptoSigner, Signer, SSlibKey
from tuf.api.metadata import (
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer

from fleet.errors import FleetError
from flows.catalog import CatalogError, catalog_table, parse_catalog, size_problem

ONLINE_ROLES = ("targets", "snapshot", "timestamp")
DEFAULT_EXPIRY = {
    "root": dt.timedelta(days=365),
    "targets": dt.timedelta(days=90),
    "snapshot": dt.timedelta(days=7),
    "timestamp": dt.timedelta(days=1),
}
CATALOG_VERSION_FIELD = "catalog_version"  # in a target's signed ``custom`` metadata


class RepositoryError(FleetError):
    """The repository cannot do what was asked (a missing key, a catalog that goes backwards)."""

    translation_key = "error.catalog_repository"


@dataclass(frozen=True, slots=True)
class Release:
    """A catalog signed into the repository: what ``desired.catalog`` tells a terminal."""

    target: str
    version: int
    sha256: str
    length: int

    def desired_catalog(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "version": self.version,
            "sha256": self.sha256,
            "length": self.length,
        }


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def new_key(folder: Path) -> CryptoSigner:
    """A new Ed25519 key, its private half stored as ``{folder}/{keyid}.pem`` (mode 0600)."""
    signer = CryptoSigner.generate_ed25519()
    _write_atomic(folder / f"{signer.public_key.keyid}.pem", signer.private_bytes, 0o600)
    return signer


def load_signer(folder: Path, key: SSlibKey) -> Signer | None:
    path = folder / f"{key.keyid}.pem"
    if not path.exists():
        return None
    return Signer.from_priv_key_uri(f"file2:{path}", key)


LOCK_FILE = ".console.lock"


@contextlib.contextmanager
def locked(directory: Path) -> Iterator[None]:
    """Hold the repository for a change (``flock`` on ``DIR/.console.lock``): the console's
    Catalogs page and ``fleet catalog sign|rotate-*|refresh`` take it, so neither signs from
    metadata the other has just replaced. Open the repository inside it."""
    with open(Path(directory) / LOCK_FILE, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class CatalogRepository:
    """A TUF repository of catalogs in ``directory``; root keys live apart, in ``root_keys``."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.metadata_dir = self.directory / "metadata"
        self.targets_dir = self.directory / "targets"
        self.keys_dir = self.directory / "keys"
        self.serializer = JSONSerializer(compact=False)
        if not (self.metadata_dir / "1.root.json").exists():
            raise RepositoryError(f"{self.directory}: not a catalog repository (no 1.root.json)")
        self.root = Metadata[Root].from_file(str(self._latest_path("root")))
        self.targets = Metadata[Targets].from_file(str(self._latest_path("targets")))
        self.snapshot = Metadata[Snapshot].from_file(str(self._latest_path("snapshot")))
        self.timestamp = Metadata[Timestamp].from_file(str(self.metadata_dir / "timestamp.json"))

    # --- creation ------------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        directory: Path,
        root_keys: Path,
        *,
        root_key_count: int = 3,
        root_threshold: int = 2,
        expiry: dict[str, dt.timedelta] | None = None,
    ) -> CatalogRepository:
        """A new repository: ``root_key_count`` root keys (threshold ``root_threshold``) written
        to ``root_keys`` (keep that folder offline), one online key per other role."""
        if not 1 <= root_threshold <= root_key_count:
            raise RepositoryError("the root threshold must be between 1 and the number of keys")
        directory = Path(directory)
        if (directory / "metadata" / "1.root.json").exists():
            raise RepositoryError(f"{directory}: a repository exists already")
        expiry = {**DEFAULT_EXPIRY, **(expiry or {})}
        now = _now()
        root = Root(expires=now + expiry["root"], consistent_snapshot=True)
        root_signers = [new_key(Path(root_keys)) for _ in range(root_key_count)]
        for signer in root_signers:
            root.add_key(signer.public_key, "root")
        root.roles["root"].threshold = root_threshold
        online: dict[str, CryptoSigner] = {}
        for role in ONLINE_ROLES:
            online[role] = new_key(directory / "keys")
            root.add_key(online[role].public_key, role)
        root_md = Metadata(root)
        for signer in root_signers:
            root_md.sign(signer, append=True)
        targets = Metadata(Targets(expires=now + expiry["targets"]))
        snapshot = Metadata(Snapshot(expires=now + expiry["snapshot"]))
        timestamp = Metadata(Timestamp(expires=now + expiry["timestamp"]))
        targets.sign(online["targets"])
        snapshot.sign(online["snapshot"])
        timestamp.sign(online["timestamp"])
        metadata = directory / "metadata"
        serializer = JSONSerializer(compact=False)
        _write_atomic(metadata / "1.root.json", root_md.to_bytes(serializer))
        _write_atomic(metadata / "1.targets.json", targets.to_bytes(serializer))
        _write_atomic(metadata / "1.snapshot.json", snapshot.to_bytes(serializer))
        _write_atomic(metadata / "timestamp.json", timestamp.to_bytes(serializer))
        (directory / "targets").mkdir(parents=True, exist_ok=True)
        return cls(directory)

    # --- reading -------------------------------------------------------------------------------

    def _latest_path(self, role: str) -> Path:
        versions = [
            int(p.name.split(".", 1)[0])
            for p in self.metadata_dir.glob(f"*.{role}.json")
            if p.name.split(".", 1)[0].isdigit()
        ]
        if not versions:
            raise RepositoryError(f"{self.directory}: no {role} metadata")
        return self.metadata_dir / f"{max(versions)}.{role}.json"

    def trusted_root(self) -> bytes:
        """The current root, to install on a new terminal as its trust anchor."""
        return self._latest_path("root").read_bytes()

    def keys_of(self, role: str) -> list[SSlibKey]:
        root = self.root.signed
        keys = [root.get_key(keyid) for keyid in root.roles[role].keyids]
        return [k for k in keys if isinstance(k, SSlibKey)]

    def _signers(self, role: str, root_keys: Path | None = None) -> list[Signer]:
        if role == "root" and root_keys is None:
            raise RepositoryError("the root keys are offline: pass the folder that holds them")
        folder = Path(root_keys) if root_keys is not None and role == "root" else self.keys_dir
        signers = [s for k in self.keys_of(role) if (s := load_signer(folder, k)) is not None]
        if len(signers) < self.root.signed.roles[role].threshold:
            raise RepositoryError(
                f"{len(signers)} key(s) of role {role} at hand in {folder}; "
                f"{self.root.signed.roles[role].threshold} must sign"
            )
        return signers

    def live_catalog(self, name: str) -> tuple[Release, bytes | None] | None:
        """The catalog signed as ``name`` now, and its content (None if the file is gone)."""
        target = self.targets.signed.targets.get(name)
        if target is None:
            return None
        sha = target.hashes.get("sha256", "")
        release = Release(name, self.latest_catalog_version(name), sha, target.length)
        path = self.targets_dir / f"{sha}.{name}"
        return release, path.read_bytes() if path.is_file() else None

    def latest_catalog_version(self, name: str) -> int:
        target = self.targets.signed.targets.get(name)
        if target is None:
            return 0
        return int(target.custom.get(CATALOG_VERSION_FIELD, 0)) if target.custom else 0

    # --- publishing ----------------------------------------------------------------------------

    def publish_catalog(self, source: Path | bytes, *, name: str = "catalog.toml") -> Release:
        """Validate a catalog (TOML) with the terminal's own checks (size, nesting, schema), then
        sign it.

        Refuses a catalog whose version does not rise above the one published under ``name``:
        to go back to older content, publish it again with a higher version.
        """
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
        label = name if isinstance(source, bytes) else str(source)
        too_large = size_problem(len(data))  # the terminals' limit: they would not download it
        if too_large:
            raise CatalogError(label, [("(file)", too_large)])
        catalog = parse_catalog(catalog_table(data, source=label), source=label)
        latest = self.latest_catalog_version(name)
        if catalog.version <= latest:
            raise RepositoryError(
                f"{label}: catalog version {catalog.version} does not rise above {latest}, "
                f"the version published as {name}"
            )
        return self.add_target(name, data, catalog_version=catalog.version)

    def add_target(self, name: str, data: bytes, *, catalog_version: int) -> Release:
        """Sign ``data`` as target ``name`` as it is: no schema check (see publish_catalog)."""
        if "/" in name or name.startswith(".") or not name:
            raise RepositoryError(f"{name!r}: a target name is one plain file name")
        target = TargetFile.from_data(name, data, ["sha256"])
        target.unrecognized_fields["custom"] = {CATALOG_VERSION_FIELD: catalog_version}
        sha = target.hashes["sha256"]
        _write_atomic(self.targets_dir / f"{sha}.{name}", data)
        self.targets.signed.targets[name] = target
        self.commit(["targets"])
        return Release(target=name, version=catalog_version, sha256=sha, length=len(data))

    def set_expiry(self, role: str, expires: dt.datetime, *, root_keys: Path | None = None) -> None:
        """Set when ``role``'s metadata expires (in the past, too: a test of freezing) and sign."""
        self._role_md(role).signed.expires = expires.replace(microsecond=0)
        if role == "root":
            self._sign_root(root_keys)
        else:
            self.commit([role], keep_expiry=True)

    def _role_md(self, role: str) -> Metadata[Any]:
        roles: dict[str, Metadata[Any]] = {
            "root": self.root,
            "targets": self.targets,
            "snapshot": self.snapshot,
            "timestamp": self.timestamp,
        }
        return roles[role]

    def commit(self, roles: Iterable[str], *, keep_expiry: bool = False) -> None:
        """Bump and sign ``roles`` and everything that covers them (snapshot, timestamp)."""
        todo = set(roles)
        if "targets" in todo:
            todo.add("snapshot")
        if "snapshot" in todo:
            todo.add("timestamp")
        now = _now()
        if "targets" in todo:
            self._bump(self.targets, "targets", now, keep_expiry)
            self._write(self.targets, f"{self.targets.signed.version}.targets.json")
        if "snapshot" in todo:
            self.snapshot.signed.meta["targets.json"] = MetaFile(self.targets.signed.version)
            self._bump(self.snapshot, "snapshot", now, keep_expiry)
            self._write(self.snapshot, f"{self.snapshot.signed.version}.snapshot.json")
        self.timestamp.signed.snapshot_meta = MetaFile(self.snapshot.signed.version)
        self._bump(self.timestamp, "timestamp", now, keep_expiry)
        self._write(self.timestamp, "timestamp.json")

    def _bump(self, md: Metadata[Any], role: str, now: dt.datetime, keep_expiry: bool) -> None:
        md.signed.version += 1
        if not keep_expiry:
            md.signed.expires = now + DEFAULT_EXPIRY[role]
        md.signatures.clear()
        for signer in self._signers(role):
            md.sign(signer, append=True)

    def _write(self, md: Metadata[Any], filename: str) -> None:
        _write_atomic(self.metadata_dir / filename, md.to_bytes(self.serializer))

    # --- keys ----------------------------------------------------------------------------------

    def rotate_key(self, role: str, root_keys: Path) -> SSlibKey:
        """Replace the online key of ``role`` (one suspected stolen): a new root names the new
        key, signed by the root keys; then the role is signed again with it."""
        if role not in ONLINE_ROLES:
            raise RepositoryError(f"{role}: only online keys rotate this way (see rotate_root)")
        self._signers("root", root_keys)  # refused before the old key is deleted, not after
        root = self.root.signed
        for key in self.keys_of(role):
            root.revoke_key(key.keyid, role)
            (self.keys_dir / f"{key.keyid}.pem").unlink(missing_ok=True)
        signer = new_key(self.keys_dir)
        root.add_key(signer.public_key, role)
        self._sign_root(root_keys, bump=True)
        self.commit([role])
        return signer.public_key

    def rotate_root(
        self,
        root_keys: Path,
        new_root_keys: Path,
        *,
        key_count: int = 3,
        threshold: int = 2,
        sign_with: Sequence[Signer] | None = None,
    ) -> list[SSlibKey]:
        """A new set of root keys (in ``new_root_keys``): the new root is signed by the old
        root's threshold and by the new one, as a terminal demands of every root it accepts.

        ``sign_with`` replaces the old keys' signatures (to show that a root without them is
        refused); normal use leaves it out.
        """
        old = self._signers("root", root_keys)
        root = self.root.signed
        for key in self.keys_of("root"):
            root.revoke_key(key.keyid, "root")
        fresh = [new_key(Path(new_root_keys)) for _ in range(key_count)]
        for signer in fresh:
            root.add_key(signer.public_key, "root")
        root.roles["root"].threshold = threshold
        root.version += 1
        root.expires = _now() + DEFAULT_EXPIRY["root"]
        self.root.signatures.clear()
        signers: list[Signer] = [*(old if sign_with is None else sign_with), *fresh]
        for one in signers:
            self.root.sign(one, append=True)
        self._write(self.root, f"{root.version}.root.json")
        return [s.public_key for s in fresh]

    def _sign_root(self, root_keys: Path | None, *, bump: bool = False) -> None:
        if bump:
            self.root.signed.version += 1
            self.root.signed.expires = _now() + DEFAULT_EXPIRY["root"]
        self.root.signatures.clear()
        for signer in self._signers("root", root_keys):
            self.root.sign(signer, append=True)
        self._write(self.root, f"{self.root.signed.version}.root.json")


# --- serving -----------------------------------------------------------------------------------


PUBLIC_FOLDERS = ("metadata", "targets")  # never keys/: the online private keys live there


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Files under ``metadata/`` and ``targets/`` only; no folder listings."""

    def send_head(self) -> Any:
        resolved = Path(self.translate_path(self.path)).resolve()
        root = Path(self.directory).resolve()
        public = any(resolved.is_relative_to(root / folder) for folder in PUBLIC_FOLDERS)
        if not public or resolved.is_dir():
            self.send_error(404, "Not found")
            return None
        return super().send_head()

    def log_message(self, format: str, *args: Any) -> None:
        server = self.server
        if isinstance(server, RepositoryServer):
            server.requests.append(self.path)


class RepositoryServer(http.server.ThreadingHTTPServer):
    """The repository's public files over plain HTTP (TUF needs no TLS for integrity; put a
    TLS front in production for privacy). ``requests`` records the paths asked for."""

    daemon_threads = True

    def __init__(self, directory: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.requests: list[str] = []
        super().__init__((host, port), partial(_QuietHandler, directory=str(directory)))
        self._thread = threading.Thread(target=self.serve_forever, name="catalog-repo", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def metadata_url(self) -> str:
        return f"{self.url}/metadata/"

    @property
    def targets_url(self) -> str:
        return f"{self.url}/targets/"

    def start(self) -> RepositoryServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=5)


def serve_repository(directory: Path, host: str = "127.0.0.1", port: int = 0) -> RepositoryServer:
    """Serve ``directory`` (a repository's folder) on a thread; ``close()`` stops it."""
    return RepositoryServer(directory, host, port).start()


def desired_payload(
    rev: int, release: Release, metadata_url: str, targets_url: str
) -> dict[str, Any]:
    """The ``desired`` message that asks a terminal to apply ``release``."""
    return {
        "rev": rev,
        "catalog": release.desired_catalog(),
        "metadata_url": metadata_url,
        "targets_url": targets_url,
    }
