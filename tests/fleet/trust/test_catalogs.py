"""Signed catalogs end to end: a TUF repository served over HTTP, the console's ``desired`` through
a real mosquitto, the agent applying it into the catalog store and saying how in ``reported``.

Each attack of TUF's threat model is played against a terminal that already serves a good catalog:
the attack is refused with its reason in ``reported``, and ``active.toml`` stays byte for byte.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import Metadata, Root, Targets

from fleet.agent import Agent, AgentConfig
from fleet.agent.catalog_update import CatalogUpdater
from fleet.mqtt.client import CONSOLE_USER
from fleet.protocol.topics import StationTopics
from fleet.trust.catalog_repo import (
    CatalogRepository,
    Release,
    RepositoryError,
    RepositoryServer,
    desired_payload,
    load_signer,
    locked,
    serve_repository,
)
from flows.catalog import CatalogError, load_catalog
from flows.session import Session
from kiosk.config import Config, StateSection
from kiosk.shell.catalog_watch import DEMO_CATALOG, CatalogWatch, active_catalog
from sandbox.mosquitto import MosquittoBroker
from statedir.catalog_store import CatalogStore, install_anchor

SITE = "zibo-gx"
STATION = "st-0042"
MAX_BYTES = 64 * 1024
DEMO = DEMO_CATALOG.read_text(encoding="utf-8")


def catalog(version: int, *, pad: int = 0) -> bytes:
    text = DEMO.replace("\nversion = 1\n", f"\nversion = {version}\n", 1)
    assert f"version = {version}" in text
    return (text + ("# padding\n" * (pad // 10 + 1) if pad else "")).encode()


def until(cond: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


class ConsoleSide:
    """The console's MQTT rights: publishes ``desired`` (retained) and records ``reported``."""

    def __init__(self, broker: MosquittoBroker, topics: StationTopics) -> None:
        self.topics = topics
        self.reports: list[tuple[dict[str, Any], bool]] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id="console-test", protocol=mqtt.MQTTv5
        )
        self.client.username_pw_set(CONSOLE_USER, broker.console_password)
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *_: c.subscribe(topics.reported, qos=1)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.reports.append((json.loads(msg.payload), bool(msg.retain)))

    def desire(self, payload: dict[str, Any]) -> None:
        info = self.client.publish(
            self.topics.desired, json.dumps(payload).encode(), qos=1, retain=True
        )
        info.wait_for_publish(timeout=5)

    def for_rev(self, rev: int) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r, _ in self.reports if r["rev"] == rev]

    def outcome(self, rev: int) -> dict[str, Any]:
        """Wait for the final report of ``rev`` (applied or failed)."""
        until(
            lambda: any(r["phase"] in ("applied", "failed") for r in self.for_rev(rev)),
            what=f"the outcome of rev {rev}",
        )
        return [r for r in self.for_rev(rev) if r["phase"] in ("applied", "failed")][-1]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Rig:
    def __init__(self, tmp: Path, broker: MosquittoBroker) -> None:
        self.tmp = tmp
        self.root_keys = tmp / "offline-root-keys"
        self.repo = CatalogRepository.create(tmp / "repo", self.root_keys)
        self.server: RepositoryServer = serve_repository(self.repo.directory)
        self.state = tmp / STATION
        self.store = CatalogStore(self.state / "catalogs")
        install_anchor(self.store.dir, self.repo.trusted_root())
        self.config = AgentConfig(
            site=SITE,
            station=STATION,
            host=broker.host,
            port=broker.port,
            state_dir=self.state / "agent",
            journal_path=self.state / "journal.sqlite3",
            health_interval_s=30,
            will_delay_s=1,
            catalog_max_bytes=MAX_BYTES,
        )
        self.console = ConsoleSide(broker, StationTopics(SITE, STATION))
        self.agent = Agent(self.config)
        self.agent.start()
        until(self.agent.connected.is_set, what="agent connected")
        self.rev = 0

    def push(self, release: Release, **override: Any) -> dict[str, Any]:
        """Ask for ``release`` under a new rev and wait for its outcome."""
        self.rev += 1
        payload = desired_payload(
            self.rev, release, self.server.metadata_url, self.server.targets_url
        )
        payload["catalog"].update(override)
        self.console.desire(payload)
        return self.console.outcome(self.rev)

    def baseline(self) -> bytes:
        """A good catalog (version 2) applied: what must keep serving through every attack."""
        report = self.push(self.repo.publish_catalog(catalog(2)))
        assert report["phase"] == "applied", report
        return self.store.active.read_bytes()

    def assert_still_serving(self, active: bytes, report: dict[str, Any], reason: str) -> None:
        assert report["phase"] == "failed"
        assert report["error"] == reason, report
        assert report["detail"]
        assert report["rev_applied"] == 1 and report["catalog_version"] == 2
        assert self.store.active.read_bytes() == active  # byte for byte
        assert not self.store.swapping() and not self.store.rollback_copy.exists()
        assert load_catalog(self.store.active).version == 2

    def close(self) -> None:
        self.agent.stop()
        self.console.close()
        self.server.close()


@pytest.fixture
def rig(tmp_path: Path, broker: MosquittoBroker) -> Iterator[Rig]:
    r = Rig(tmp_path, broker)
    yield r
    r.close()


# --- the good path -------------------------------------------------------------------------------


def test_a_signed_catalog_is_applied_and_reported(rig: Rig, broker: MosquittoBroker) -> None:
    release = rig.repo.publish_catalog(catalog(2))
    report = rig.push(release)
    assert report["phase"] == "applied" and report["error"] is None
    assert (report["rev_applied"], report["catalog_version"]) == (1, 2)
    assert [r["phase"] for r in rig.console.for_rev(1)] == [
        "downloading",
        "verified",
        "staged",
        "applied",
    ]
    assert rig.store.active.read_bytes() == catalog(2)
    assert not rig.store.previous.exists()  # the UI had only its configured catalog

    second = rig.push(rig.repo.publish_catalog(catalog(3)))
    assert (second["phase"], second["rev_applied"], second["catalog_version"]) == ("applied", 2, 3)
    assert rig.store.active.read_bytes() == catalog(3)
    assert rig.store.previous.read_bytes() == catalog(2)  # the one before, for the record

    late = ConsoleSide(broker, StationTopics(SITE, STATION))  # reported is retained
    try:
        until(lambda: late.reports, what="the retained report")
        retained, flag = late.reports[0]
        assert flag and retained["phase"] == "applied" and retained["catalog_version"] == 3
    finally:
        late.close()


def test_the_repository_refuses_to_sign_what_the_terminal_would_refuse(rig: Rig) -> None:
    with pytest.raises(CatalogError):
        rig.repo.publish_catalog(b"version = 3\n[station]\nname = 'no'\n")
    rig.repo.publish_catalog(catalog(2))
    with pytest.raises(RepositoryError, match="does not rise"):
        rig.repo.publish_catalog(catalog(2))


def test_a_repeated_rev_is_ignored_even_after_a_restart(rig: Rig) -> None:
    rig.baseline()
    reports = len(rig.console.reports)
    rig.server.requests.clear()
    again = desired_payload(
        1, rig.repo.publish_catalog(catalog(3)), rig.server.metadata_url, rig.server.targets_url
    )
    rig.console.desire(again)  # same rev, other content: the rev decides
    time.sleep(1.0)
    assert len(rig.console.reports) == reports
    assert rig.server.requests == []  # not even the metadata was fetched
    rig.agent.stop()  # a restart: the retained desired (rev 1) arrives again
    rig.agent = Agent(rig.config)
    rig.agent.start()
    until(rig.agent.connected.is_set)
    time.sleep(1.0)
    assert rig.server.requests == []
    assert load_catalog(rig.store.active).version == 2
    assert all(r["rev"] == 1 for r, _ in rig.console.reports)


# --- attacks: each one refused with its reason, the previous catalog keeps serving ----------------


def test_forged_targets_metadata_is_rejected(rig: Rig) -> None:
    active = rig.baseline()
    release = rig.repo.publish_catalog(catalog(3))
    path = rig.repo.metadata_dir / f"{rig.repo.targets.signed.version}.targets.json"
    forged = Metadata[Targets].from_file(str(path))
    forged.signatures.clear()
    forged.sign(CryptoSigner.generate_ed25519())  # a key the root does not name
    forged.to_file(str(path))
    rig.assert_still_serving(active, rig.push(release), "signature")


def test_tampered_catalog_content_is_rejected(rig: Rig) -> None:
    active = rig.baseline()
    release = rig.repo.publish_catalog(catalog(3))
    served = rig.repo.targets_dir / f"{release.sha256}.{release.target}"
    served.write_bytes(catalog(3).replace(b"0533-12345", b"0533-66666"))  # same length
    rig.assert_still_serving(active, rig.push(release), "hash_mismatch")


def test_a_desired_that_disagrees_with_the_signature_is_rejected(rig: Rig) -> None:
    active = rig.baseline()
    release = rig.repo.publish_catalog(catalog(3))
    report = rig.push(release, sha256="ab" * 32)
    rig.assert_still_serving(active, report, "hash_mismatch")
    rig.assert_still_serving(active, rig.push(release, version=4), "version_mismatch")


def test_an_older_catalog_is_rejected_as_a_rollback(rig: Rig) -> None:
    active = rig.baseline()
    # validly signed, but the catalog goes back (an old release replayed by a compromised console)
    older = rig.repo.add_target("catalog.toml", catalog(1), catalog_version=1)
    rig.assert_still_serving(active, rig.push(older), "rollback")


def test_rolled_back_metadata_is_rejected(rig: Rig) -> None:
    active = rig.baseline()  # the terminal has seen timestamp version 2
    old = rig.tmp / "old-metadata"
    shutil.copytree(rig.repo.metadata_dir, old)
    release = rig.repo.publish_catalog(catalog(3))
    assert rig.push(release)["phase"] == "applied"  # now timestamp version 3
    active = rig.store.active.read_bytes()
    shutil.copy(old / "timestamp.json", rig.repo.metadata_dir / "timestamp.json")  # a mirror lies
    newer = rig.repo.add_target("catalog-b.toml", catalog(4), catalog_version=4)
    shutil.copy(old / "timestamp.json", rig.repo.metadata_dir / "timestamp.json")
    report = rig.push(newer)
    assert (report["phase"], report["error"]) == ("failed", "rollback")
    assert "timestamp" in report["detail"]
    assert rig.store.active.read_bytes() == active and report["catalog_version"] == 3


@pytest.mark.parametrize("role", ["timestamp", "snapshot", "targets"])
def test_expired_metadata_is_rejected(rig: Rig, role: str) -> None:
    active = rig.baseline()
    release = rig.repo.publish_catalog(catalog(3))
    rig.repo.set_expiry(role, dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))  # a frozen mirror
    report = rig.push(release)
    rig.assert_still_serving(active, report, "expired")
    assert role in report["detail"]


def test_an_oversized_catalog_is_rejected_without_downloading_it(rig: Rig) -> None:
    active = rig.baseline()
    big = catalog(3, pad=2 * MAX_BYTES)
    release = rig.repo.add_target("catalog.toml", big, catalog_version=3)
    rig.server.requests.clear()
    rig.assert_still_serving(active, rig.push(release), "too_large")
    # a desired that understates the size: the signed length decides
    rig.assert_still_serving(active, rig.push(release, length=1000), "too_large")
    assert not [p for p in rig.server.requests if p.startswith("/targets/")]


@pytest.mark.parametrize(
    "content",
    [
        catalog(4).replace(b'help_phone = "0533-12345"', b'help_phone = "call us"'),
        b"version = 3\n[station\n",  # not TOML at all
    ],
    ids=["schema", "toml"],
)
def test_a_malformed_catalog_fails_its_self_test_and_is_rolled_back(
    rig: Rig, content: bytes
) -> None:
    active = rig.baseline()
    second = rig.push(rig.repo.publish_catalog(catalog(3)))  # so that previous.toml exists
    assert second["phase"] == "applied"
    active, previous = rig.store.active.read_bytes(), rig.store.previous.read_bytes()
    release = rig.repo.add_target("catalog.toml", content, catalog_version=4)  # signed as is
    report = rig.push(release)
    assert (report["phase"], report["error"]) == ("failed", "malformed")
    assert [r["phase"] for r in rig.console.for_rev(rig.rev)] == [
        "downloading",
        "verified",  # TUF had nothing against it: the self-test after the swap catches it
        "failed",
    ]
    assert report["catalog_version"] == 3 and report["rev_applied"] == 2
    assert rig.store.active.read_bytes() == active
    assert rig.store.previous.read_bytes() == previous
    assert not rig.store.swapping() and not rig.store.rollback_copy.exists()


def test_a_failed_rev_is_not_retried_but_a_new_rev_is(rig: Rig) -> None:
    rig.baseline()
    release = rig.repo.add_target("catalog.toml", catalog(3, pad=2 * MAX_BYTES), catalog_version=3)
    assert rig.push(release)["error"] == "too_large"
    count = len(rig.console.for_rev(rig.rev))
    payload = desired_payload(rig.rev, release, rig.server.metadata_url, rig.server.targets_url)
    rig.console.desire(payload)
    time.sleep(1.0)
    assert len(rig.console.for_rev(rig.rev)) == count
    assert rig.push(rig.repo.publish_catalog(catalog(4)))["phase"] == "applied"


def test_an_unreachable_repository_is_retried_and_older_revs_are_ignored(tmp_path: Path) -> None:
    repo = CatalogRepository.create(tmp_path / "repo", tmp_path / "root-keys")
    release = repo.publish_catalog(catalog(2))
    probe = serve_repository(repo.directory)  # find a free port, then leave it closed
    port = int(probe.server_address[1])
    probe.close()
    store = CatalogStore(tmp_path / "catalogs")
    install_anchor(store.dir, repo.trusted_root())
    reports: list[dict[str, Any]] = []
    updater = CatalogUpdater(store.dir, reports.append, retry_s=0.3)
    updater.start()
    url = f"http://127.0.0.1:{port}"
    try:
        updater.submit(desired_payload(5, release, f"{url}/metadata/", f"{url}/targets/"))
        until(lambda: reports and reports[-1]["phase"] == "failed", what="a failure")
        assert reports[-1]["error"] == "download"
        server = RepositoryServer(repo.directory, port=port).start()  # the repository is back
        try:
            until(lambda: reports[-1]["phase"] == "applied", what="the retry")
            assert reports[-1]["rev"] == 5 and store.active.read_bytes() == catalog(2)
            urls = (server.metadata_url, server.targets_url)
            newer = repo.publish_catalog(catalog(3))
            unknown = desired_payload(7, newer, *urls)
            unknown["catalog"]["target"] = "elsewhere.toml"
            updater.submit(unknown)
            until(lambda: reports[-1]["rev"] == 7 and reports[-1]["phase"] == "failed")
            assert reports[-1]["error"] == "unknown_target"
            count = len(reports)
            updater.submit(desired_payload(6, newer, *urls))  # older than the last rev seen
            until(updater.idle.is_set)
            assert len(reports) == count and store.active.read_bytes() == catalog(2)
        finally:
            server.close()
    finally:
        updater.stop()


# --- keys: rotation from the offline root ---------------------------------------------------------


def test_key_rotation_from_the_offline_root(rig: Rig) -> None:
    rig.baseline()
    # the online targets key is suspected stolen: a new root (v2), signed by the root keys,
    # names a new one; catalogs signed with it are applied
    rig.repo.rotate_key("targets", rig.root_keys)
    report = rig.push(rig.repo.publish_catalog(catalog(3)))
    assert (report["phase"], report["catalog_version"]) == ("applied", 3)
    assert (rig.store.tuf_dir / "root_history" / "2.root.json").exists()

    # the root keys themselves are replaced: root v3 signed by the old threshold and the new
    new_keys = rig.tmp / "new-root-keys"
    rig.repo.rotate_root(rig.root_keys, new_keys, key_count=3, threshold=2)
    report = rig.push(rig.repo.publish_catalog(catalog(4)))
    assert (report["phase"], report["catalog_version"]) == ("applied", 4)
    trusted = Metadata[Root].from_file(str(rig.store.tuf_dir / "root.json"))
    assert trusted.signed.version == 3
    active = rig.store.active.read_bytes()

    # a root signed by only one of the (threshold 2) current root keys, and by keys of the
    # attacker's own, is refused: the catalog it would bring is not applied
    one_old = load_signer(new_keys, rig.repo.keys_of("root")[0])
    assert one_old is not None
    rig.repo.rotate_root(
        new_keys, rig.tmp / "attacker-keys", key_count=2, threshold=1, sign_with=[one_old]
    )
    rig.repo.rotate_key("targets", rig.tmp / "attacker-keys")
    report = rig.push(rig.repo.publish_catalog(catalog(5)))
    assert (report["phase"], report["error"]) == ("failed", "signature")
    assert "root" in report["detail"]
    assert rig.store.active.read_bytes() == active
    trusted = Metadata[Root].from_file(str(rig.store.tuf_dir / "root.json"))
    assert trusted.signed.version == 3


def test_without_a_trust_anchor_nothing_is_applied(rig: Rig) -> None:
    active = rig.baseline()
    rig.store.anchor.unlink()
    report = rig.push(rig.repo.publish_catalog(catalog(3)))
    rig.assert_still_serving(active, report, "untrusted")


# --- the store: crash recovery, the UI picking catalogs up between sessions ---------------------


def test_an_interrupted_swap_is_rolled_back_when_the_agent_starts(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    store = CatalogStore(tmp_path / STATION / "catalogs")
    store.prepare()
    store.active.write_bytes(catalog(2))
    store.swap_marker.write_text(json.dumps({"rev": 7, "had_active": True}))
    shutil.copyfile(store.active, store.rollback_copy)
    store.active.write_bytes(catalog(3))  # swapped in, then the power went
    agent = Agent(
        AgentConfig(
            site=SITE,
            station=STATION,
            host=broker.host,
            port=broker.port,
            state_dir=tmp_path / STATION / "agent",
            journal_path=tmp_path / STATION / "journal.sqlite3",
        )
    )
    agent.journal.close()
    assert store.active.read_bytes() == catalog(2)
    assert not store.swapping() and not store.rollback_copy.exists()


def test_the_ui_picks_the_committed_catalog_up_between_sessions(tmp_path: Path) -> None:
    state = tmp_path / "state"
    config = Config(state=StateSection(dir=str(state)))
    first = active_catalog(config)  # an empty store: the configured (demo) catalog
    assert first.version == 1
    session = Session(first, clock=time.monotonic)
    store = CatalogStore(state / "catalogs")
    watch = CatalogWatch(store.dir, session.offer_catalog, first, interval_s=0.05)
    assert watch.poll_once() is None

    session.on_start()  # a resident is being served
    store.prepare()
    store.swap_marker.write_text("{}")  # the agent is swapping: not yet
    store.active.write_bytes(catalog(2))
    assert watch.poll_once() is None
    store.swap_marker.unlink()  # committed
    offered = watch.poll_once()
    assert offered is not None and offered.version == 2
    assert session.catalog.version == 1  # the resident keeps what they saw
    session.on_cancel()
    assert session.catalog.version == 2  # between sessions: the new one
    assert watch.poll_once() is None  # once

    store.active.write_bytes(b"version = 3\n")  # would never pass the agent's self-test
    assert watch.poll_once() is None and session.catalog.version == 2
    assert active_catalog(config).version == 1  # nor would the next start use it

    store.active.write_bytes(catalog(3))
    stop = threading.Event()
    watch.start(stop)  # the thread the runtime starts
    try:
        until(lambda: session.catalog.version == 3, what="the watcher's thread")
    finally:
        stop.set()
    assert active_catalog(config).version == 3  # and a restart starts with it


# --- the operators' command line ----------------------------------------------------------------


def test_operators_sign_and_publish_with_the_cli(
    tmp_path: Path, broker: MosquittoBroker, capsys: pytest.CaptureFixture[str]
) -> None:
    from fleet.cli import main

    repo, keys = tmp_path / "repo", tmp_path / "usb-root-keys"
    assert main(["catalog", "init", "--repo", str(repo), "--root-keys", str(keys)]) == 0
    root_keys, online = ({p.name for p in d.glob("*.pem")} for d in (keys, repo / "keys"))
    assert len(root_keys) == 3 and len(online) == 3 and not root_keys & online  # root: offline
    capsys.readouterr()
    assert main(["catalog", "anchor", "--repo", str(repo)]) == 0
    anchor = capsys.readouterr().out.encode()
    assert Metadata[Root].from_bytes(anchor).signed.roles["root"].threshold == 2
    source = tmp_path / "town.toml"
    source.write_bytes(catalog(2))
    assert main(["catalog", "sign", "--repo", str(repo), str(source)]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == 2
    source.write_bytes(catalog(3).replace(b'duty_hours = "08:30-17:30"', b'duty_hours = "8-5"'))
    capsys.readouterr()
    assert main(["catalog", "sign", "--repo", str(repo), str(source)]) == 2
    assert "fleet catalog sign: " in (refused := capsys.readouterr().err)
    assert "duty_hours" in refused

    state = tmp_path / STATION
    install_anchor(state / "catalogs", anchor)
    agent = Agent(
        AgentConfig(
            site=SITE,
            station=STATION,
            host=broker.host,
            port=broker.port,
            state_dir=state / "agent",
            journal_path=state / "journal.sqlite3",
        )
    )
    server = serve_repository(repo)
    console = ConsoleSide(broker, StationTopics(SITE, STATION))
    agent.start()
    try:
        until(agent.connected.is_set)
        args = ["catalog", "publish", "--repo", str(repo), "--broker", broker.address]
        args += ["--password-file", str(broker.root / "console.secret"), "--site", SITE]
        args += ["--station", STATION, "--rev", "1", "--base-url", server.url]
        assert main(args) == 0
        report = console.outcome(1)
        assert (report["phase"], report["catalog_version"]) == ("applied", 2)
        assert (state / "catalogs" / "active.toml").read_bytes() == catalog(2)
    finally:
        agent.stop()
        console.close()
        server.close()


def test_the_repository_server_serves_metadata_and_targets_but_never_keys(tmp_path: Path) -> None:
    import urllib.error
    import urllib.request

    repo = CatalogRepository.create(tmp_path / "repo", tmp_path / "offline-root-keys")
    keys = sorted((repo.directory / "keys").iterdir())
    assert keys, "the repository keeps its online keys in keys/"
    server = serve_repository(repo.directory)
    try:
        with urllib.request.urlopen(f"{server.metadata_url}1.root.json", timeout=5) as answer:  # noqa: S310
            assert json.loads(answer.read())["signed"]["_type"] == "root"
        for path in (f"/keys/{keys[0].name}", "/metadata/../keys/" + keys[0].name, "/", "/keys/"):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(server.url + path, timeout=5)  # noqa: S310
            refused.value.close()
            assert refused.value.code == 404, path
    finally:
        server.close()


def test_the_cli_signs_only_while_no_console_holds_the_repository(tmp_path: Path) -> None:
    """The console signs under the repository's lock; ``fleet catalog sign`` waits for it, then
    signs from the metadata the console left, so neither overwrites the other's version."""
    from fleet.cli import main

    repo, keys = tmp_path / "repo", tmp_path / "usb-root-keys"
    assert main(["catalog", "init", "--repo", str(repo), "--root-keys", str(keys)]) == 0
    source = tmp_path / "town.toml"
    source.write_bytes(catalog(2))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    with locked(repo):  # the console, in the middle of signing
        cli = subprocess.Popen(
            [sys.executable, "-m", "fleet.cli", "catalog", "sign", "--repo", str(repo)]
            + [str(source)],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        with pytest.raises(subprocess.TimeoutExpired):
            cli.wait(timeout=3)  # it waits
        CatalogRepository(repo).publish_catalog(catalog(3), name="other.toml")
    out, _ = cli.communicate(timeout=60)
    assert cli.returncode == 0
    assert json.loads(out)["version"] == 2
    signed = CatalogRepository(repo).targets.signed
    assert set(signed.targets) == {"other.toml", "catalog.toml"}  # both: nothing lost
    assert signed.version == 3  # init, the console's, the CLI's


def test_validate_says_what_a_terminal_would_refuse_and_what_a_catalog_changes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fleet.cli import main

    repo, keys = tmp_path / "repo", tmp_path / "usb-root-keys"
    assert main(["catalog", "init", "--repo", str(repo), "--root-keys", str(keys)]) == 0
    source = tmp_path / "town.toml"
    source.write_bytes(catalog(2).replace(b'duty_hours = "08:30-17:30"', b'duty_hours = "8-5"'))
    capsys.readouterr()
    assert main(["catalog", "validate", str(source)]) == 1
    refused = capsys.readouterr().err
    line = catalog(2).decode().splitlines().index('duty_hours = "08:30-17:30"') + 1
    assert f"line {line}: station › duty_hours" in refused

    source.write_bytes(catalog(2))
    assert main(["catalog", "validate", "--repo", str(repo), str(source)]) == 0
    assert "nothing is live yet" in capsys.readouterr().out
    assert main(["catalog", "sign", "--repo", str(repo), str(source)]) == 0
    renamed = catalog(3).replace(b'"Business licence print"', b'"Print a business licence"', 1)
    assert renamed != catalog(3)
    source.write_bytes(renamed)
    capsys.readouterr()
    assert main(["catalog", "validate", "--repo", str(repo), str(source), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["valid"], result["version"]) == (True, 3)
    assert result["diff"]["live_version"] == 2
    [change] = result["diff"]["items"]
    assert (change["state"], change["fields"]) == (
        "changed",
        [
            {
                "field": "name.en",
                "before": "Business licence print",
                "after": "Print a business licence",
            }
        ],
    )
    assert main(["catalog", "validate", "--repo", str(repo), str(source)]) == 0
    text = capsys.readouterr().out
    assert "against catalog.toml version 2:" in text
    assert "name.en: Business licence print → Print a business licence" in text
