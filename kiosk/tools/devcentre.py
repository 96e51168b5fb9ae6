"""``make run``'s centre: a signed catalog repository and a fleet CA of the run's own.

A console without them can only check catalogs and cannot enrol a terminal, so half of its pages
would be dead ends in the demo. On the first run, in ``station-data/centre/``:

- ``catalog-repo/``: a TUF repository made as an operator makes one (``fleet catalog init``),
  with the demo catalog signed into it (``fleet catalog sign``: the terminals' own checks first),
  its offline root keys beside it in ``catalog-root-keys/`` (a demo keeps them on the same disk;
  a centre never does). Every run signs a fresh timestamp (``fleet catalog refresh``: it
  expires daily) and serves the repository on a free local port (``fleet catalog serve``, a
  supervised process like the others), so a rollout from the console reaches this station.
- the station's trust anchor: the repository's root installed in the station's catalog store,
  as a terminal is provisioned (:func:`statedir.catalog_store.install_anchor`), unless one is
  there already.
- ``fleet-ca.crt`` / ``fleet-ca.key``: the fleet CA the console enrols terminals with
  (``--fleet-ca``), and ``fleet.crl``, the revocation list it writes (``--crl``).

Everything is made with the same commands and code an operator uses, so the demo shows the
product's behaviour, not a shortcut of its own.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from assets import ASSETS_DIR
from fleet.trust.pki import CertificateAuthority
from kiosk.shell.catalog_watch import store_dir
from statedir.catalog_store import CatalogStore, install_anchor

DEMO_CATALOG = ASSETS_DIR / "catalog" / "demo.toml"


@dataclass(frozen=True)
class Centre:
    repo: Path
    ca_cert: Path
    ca_key: Path
    crl: Path

    def console_options(self, catalog_url: str) -> list[str]:
        """What ``fleet console`` is started with to use this centre."""
        return [
            "--catalog-repo", str(self.repo),
            "--catalog-url", catalog_url,
            "--fleet-ca", str(self.ca_cert), str(self.ca_key),
            "--crl", str(self.crl),
        ]  # fmt: skip

    def serve_argv(self, host: str, port: int) -> list[str]:
        return [
            sys.executable, "-m", "fleet.cli", "catalog", "serve",
            "--repo", str(self.repo), "--http", f"{host}:{port}",
        ]  # fmt: skip


def _fleet(*args: str) -> bytes:
    done = subprocess.run(
        [sys.executable, "-m", "fleet.cli", *args], capture_output=True, check=False
    )
    if done.returncode != 0:
        words = (done.stderr or done.stdout).decode(errors="replace").strip()
        raise RuntimeError(f"fleet {' '.join(args[:2])} failed: {words}")
    return done.stdout


def prepare(data: Path, state: Path) -> Centre:
    """Make (first run) or refresh (later runs) the centre in ``data/centre`` and install its
    trust anchor in the station whose state directory is ``state``."""
    folder = data / "centre"
    folder.mkdir(parents=True, exist_ok=True)
    repo = folder / "catalog-repo"
    if not (repo / "metadata" / "1.root.json").exists():
        _fleet(
            "catalog", "init", "--repo", str(repo), "--root-keys", str(folder / "catalog-root-keys")
        )
        _fleet("catalog", "sign", "--repo", str(repo), str(DEMO_CATALOG))
    else:
        _fleet("catalog", "refresh", "--repo", str(repo))
    anchor_dir = store_dir(state)
    if not CatalogStore(anchor_dir).anchor.exists():
        install_anchor(anchor_dir, _fleet("catalog", "anchor", "--repo", str(repo)))
    centre = Centre(repo, folder / "fleet-ca.crt", folder / "fleet-ca.key", folder / "fleet.crl")
    if not (centre.ca_cert.exists() and centre.ca_key.exists()):
        CertificateAuthority.create("make run fleet CA").save(centre.ca_cert, centre.ca_key)
    return centre
