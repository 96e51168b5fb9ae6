"""The signer applies the terminals' own limits: what a terminal would refuse (too large, nested
too deeply, too many services) is refused before it is signed, in one line and without a
traceback, and the terminal reports such a catalog in the same words."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import fleet.agent.catalog_update as agent_side
import fleet.trust.catalog_review as review
import flows.catalog as schema
from fleet.agent.catalog_update import CatalogUpdater
from fleet.trust.catalog_repo import CatalogRepository, desired_payload, serve_repository
from flows.catalog import MAX_CATALOG_BYTES, MAX_DEPTH, CatalogError
from kiosk.shell.catalog_watch import DEMO_CATALOG
from statedir.catalog_store import CatalogStore, install_anchor

REPO_ROOT = Path(__file__).resolve().parents[3]
DEMO = DEMO_CATALOG.read_text(encoding="utf-8")
NESTED = "version = 3\nx = " + "[" * 5_000 + "]" * 5_000 + "\n"


def catalog(version: int) -> str:
    return DEMO.replace("\nversion = 1\n", f"\nversion = {version}\n", 1)


def oversize() -> str:
    return catalog(3) + "# padding\n" * (2 * 1024 * 1024 // 10)  # 2 MiB of it


def many_services(count: int) -> str:
    one = DEMO[
        DEMO.index("[[services]]") : DEMO.index("[[services]]", DEMO.index("[[services]]") + 1)
    ]
    head = catalog(3)[: catalog(3).index("[[services]]")]
    return head + "".join(
        one.replace('code = "social_insurance_certificate"', f'code = "service_{i}"')
        for i in range(count)
    )


def until(cond: Callable[[], Any], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_the_signer_and_the_terminal_share_one_size_limit() -> None:
    assert agent_side.MAX_CATALOG_BYTES is schema.MAX_CATALOG_BYTES
    assert review.size_problem is schema.size_problem  # the review's check, with its default
    assert schema.size_problem.__defaults__ == (schema.MAX_CATALOG_BYTES,)
    updater_default = CatalogUpdater.__init__.__kwdefaults__["max_bytes"]  # type: ignore[index]
    assert updater_default is schema.MAX_CATALOG_BYTES


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    from fleet.cli import main

    folder = tmp_path / "repo"
    assert main(["catalog", "init", "--repo", str(folder), "--root-keys", str(tmp_path / "k")]) == 0
    return folder


REFUSED = [
    ("oversize", oversize, f"a catalog may be at most {MAX_CATALOG_BYTES // 1024} KiB"),
    ("nested", lambda: NESTED, f"is nested too deeply (at most {MAX_DEPTH} levels)"),
    ("many", lambda: many_services(250), "has 250 entries; a catalog may list at most 200"),
]


@pytest.mark.parametrize(("kind", "content", "said"), REFUSED, ids=[r[0] for r in REFUSED])
@pytest.mark.parametrize("command", ["sign", "validate"])
def test_the_cli_refuses_what_a_terminal_would_refuse_in_one_line(
    tmp_path: Path,
    repo: Path,
    capsys: pytest.CaptureFixture[str],
    kind: str,
    content: Callable[[], str],
    said: str,
    command: str,
) -> None:
    from fleet.cli import main

    source = tmp_path / f"{kind}.toml"
    source.write_text(content(), encoding="utf-8")
    capsys.readouterr()
    args = ["catalog", command, str(source)] + (["--repo", str(repo)] if command == "sign" else [])
    assert main(args) == (2 if command == "sign" else 1)
    out, err = capsys.readouterr()
    assert out == ""
    [line] = err.splitlines()
    assert line.startswith(f"fleet catalog {command}: {source}: ") and said in line, line
    assert not CatalogRepository(repo).targets.signed.targets  # nothing was signed


def test_the_cli_as_a_process_says_one_line_and_no_traceback(tmp_path: Path, repo: Path) -> None:
    source = tmp_path / "nested.toml"
    source.write_text(NESTED)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    for command in (["sign", "--repo", str(repo)], ["validate"]):
        done = subprocess.run(
            [sys.executable, "-m", "fleet.cli", "catalog", *command, str(source)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode != 0
        assert "Traceback" not in done.stderr and "RecursionError" not in done.stderr
        [line] = [x for x in done.stderr.splitlines() if "nested too deeply" in x]
        assert done.stderr.strip() == line


def test_the_repository_api_refuses_them_too(tmp_path: Path) -> None:
    repo = CatalogRepository.create(tmp_path / "repo", tmp_path / "root-keys")
    for content in (oversize(), NESTED, many_services(250)):
        with pytest.raises(CatalogError):
            repo.publish_catalog(content.encode())
    assert not repo.targets.signed.targets


def test_a_terminal_reports_a_nested_catalog_as_malformed(tmp_path: Path) -> None:
    """Signed as is (past the signer's checks, as a stolen targets key could): the terminal's
    self-test says ``malformed``, in the words the signer uses, and keeps what it had."""
    repo = CatalogRepository.create(tmp_path / "repo", tmp_path / "root-keys")
    server = serve_repository(repo.directory)
    store = CatalogStore(tmp_path / "catalogs")
    install_anchor(store.dir, repo.trusted_root())
    reports: list[dict[str, Any]] = []
    updater = CatalogUpdater(store.dir, reports.append, retry_s=600)
    updater.start()
    urls = (server.metadata_url, server.targets_url)
    try:
        updater.submit(desired_payload(1, repo.publish_catalog(catalog(2).encode()), *urls))
        until(lambda: reports and reports[-1]["phase"] in ("applied", "failed"))
        assert reports[-1]["phase"] == "applied"
        active = store.active.read_bytes()
        nested = repo.add_target("catalog.toml", NESTED.encode(), catalog_version=3)
        updater.submit(desired_payload(2, nested, *urls))
        until(lambda: reports[-1]["rev"] == 2 and reports[-1]["phase"] == "failed")
        assert reports[-1]["error"] == "malformed", reports[-1]
        assert "nested too deeply" in reports[-1]["detail"]
        assert "RecursionError" not in reports[-1]["detail"]
        assert store.active.read_bytes() == active
    finally:
        updater.stop()
        server.close()
