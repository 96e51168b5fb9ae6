"""Every configuration the project writes for a system daemon is checked by that daemon.

A Debian security update that tightens a daemon's parser (cups-daemon 2.4.2-3+deb12u11 began to
refuse a bare ``Printcap`` line) must fail here, in one test that names the directive, and not
as thirty tests whose scheduler silently never started.

- cupsd: ``cupsd -t`` on the private scheduler's ``cupsd.conf`` and ``cups-files.conf`` (the
  A4 peer of tests, ``make run`` and ``kiosk doctor``);
- mosquitto (2.0 has no test switch): the broker started on the generated plain configuration
  and on the shipped TLS configuration, and seen listening;
- coturn (4.6 has no check switch and only logs an unknown directive):
  ``tests/deploy/test_coturn_config.py`` starts ``turnserver`` on the shipped
  ``deploy/coturn/turnserver.conf`` and fails on any complaint in its log;
- systemd units and sysusers: ``tests/deploy/test_deploy.py`` (``systemd-analyze verify``,
  ``systemd-sysusers --dry-run``).
"""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest

from sandbox.cups import CupsSandbox, SandboxError, cupsd_check
from sandbox.mosquitto import BrokerError, MosquittoBroker

needs_cupsd = pytest.mark.skipif(shutil.which("cupsd") is None, reason="cupsd is not installed")
needs_mosquitto = pytest.mark.skipif(
    shutil.which("mosquitto") is None, reason="mosquitto is not installed"
)


def sandbox_config(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "cups"
    for sub in ("spool", "cache", "state", "tmp", "log"):
        (root / sub).mkdir(parents=True)
    sandbox = CupsSandbox(root)
    sandbox.port = 6310
    return sandbox.write_config(root, as_root=False)


@needs_cupsd
def test_cupsd_accepts_the_private_schedulers_configuration(tmp_path: Path) -> None:
    cupsd_conf, files_conf = sandbox_config(tmp_path)
    assert cupsd_check(cupsd_conf, files_conf) == ""


@needs_cupsd
def test_cupsd_refuses_the_old_bare_printcap_line(tmp_path: Path) -> None:
    """The line the sandbox wrote until 2026-12: the check names it, with its line number."""
    cupsd_conf, files_conf = sandbox_config(tmp_path)
    text = files_conf.read_text()
    old = "\n".join("Printcap" if ln.startswith("Printcap ") else ln for ln in text.splitlines())
    files_conf.write_text(old + "\n")
    line = old.splitlines().index("Printcap") + 1
    verdict = cupsd_check(cupsd_conf, files_conf)
    assert f"Missing value for Printcap on line {line}" in verdict


@needs_cupsd
def test_a_refused_configuration_stops_the_sandbox_with_cupsds_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What ``make run`` and the kiosk log show: the directive, not "cupsd did not start"."""
    original = CupsSandbox.write_config

    def with_a_bad_directive(self: CupsSandbox, root: Path, *, as_root: bool) -> tuple[Path, Path]:
        cupsd_conf, files_conf = original(self, root, as_root=as_root)
        files_conf.write_text(files_conf.read_text() + "TempDir\n")
        return cupsd_conf, files_conf

    monkeypatch.setattr(CupsSandbox, "write_config", with_a_bad_directive)
    sandbox = CupsSandbox(tmp_path / "cups")
    refused = r"cupsd -t\): Missing pathname value for TempDir on line \d+"
    with pytest.raises(SandboxError, match=refused):
        sandbox.start()
    assert sandbox.server_root == sandbox.root or not sandbox.server_root.exists()


def listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


@needs_mosquitto
@pytest.mark.parametrize("tls", [False, True], ids=["plain", "shipped-tls"])
def test_mosquitto_runs_on_each_configuration_we_give_it(tmp_path: Path, tls: bool) -> None:
    broker = MosquittoBroker(tmp_path / "broker", tls=tls)
    broker.start()
    try:
        assert listening(broker.host, broker.port)
    finally:
        broker.stop()
    assert not listening(broker.host, broker.port)


@needs_mosquitto
def test_mosquitto_refusing_a_configuration_is_said_in_its_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = MosquittoBroker.write_config

    def with_a_bad_directive(self: MosquittoBroker) -> Path:
        conf = original(self)
        conf.write_text(conf.read_text() + "max_queued_message 100\n")
        return conf

    monkeypatch.setattr(MosquittoBroker, "write_config", with_a_bad_directive)
    broker = MosquittoBroker(tmp_path / "broker")
    refused = 'Unknown configuration variable "max_queued_message"'
    try:
        with pytest.raises(BrokerError, match=refused):
            broker.start()
    finally:
        broker.stop()  # a mosquitto that took the file anyway is not left running
