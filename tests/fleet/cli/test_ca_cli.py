"""``fleet ca``: a CA, the broker's and the console's certificates and revocation from the
command line, accepted by the shipped mosquitto configuration (issue 21)."""

from __future__ import annotations

import ipaddress
import shutil
import signal
import ssl
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from cryptography import x509
from paho.mqtt.enums import CallbackAPIVersion

from fleet.cli import main as fleet
from fleet.trust.pki import CONSOLE_CN, common_name, issued_by, load_cert
from tests.fleet.console.test_console import until
from tests.fleet.console.test_enroll import CrlBroker
from tests.fleet.console.test_enroll import tls_answer as enroll_tls_answer

REVOKED = "SSLV3_ALERT_CERTIFICATE_REVOKED"


def run(capsys: pytest.CaptureFixture[str], *argv: Any) -> tuple[int, str, str]:
    capsys.readouterr()
    code = fleet([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_and_issue_write_the_files_with_private_keys_0600(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ca_dir, console_dir = tmp_path / "ca", tmp_path / "console"
    code, out, err = run(capsys, "ca", "init", "--dir", ca_dir, "--days", "30")
    assert code == 0, err
    assert "ca.key" in out and mode(ca_dir / "ca.key") == 0o600
    ca_cert = load_cert(ca_dir / "ca.crt")
    # a second init would orphan every certificate issued so far: refused without --force
    code, _, err = run(capsys, "ca", "init", "--dir", ca_dir)
    assert code == 1 and "--force" in err
    assert load_cert(ca_dir / "ca.crt") == ca_cert

    hosts = ["broker.fleet.example", "10.0.0.5"]
    code, _, err = run(
        capsys, "ca", "issue-broker", "--dir", ca_dir, "--host", hosts[0], "--host", hosts[1]
    )
    assert code == 0, err
    server = load_cert(ca_dir / "server.crt")
    assert mode(ca_dir / "server.key") == 0o600 and issued_by(server, ca_cert)
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [hosts[0]]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address(hosts[1])]
    assert server.not_valid_after_utc <= ca_cert.not_valid_after_utc  # never outlives the CA

    code, _, err = run(capsys, "ca", "issue-console", "--dir", ca_dir, "--out", console_dir)
    assert code == 0, err
    assert sorted(p.name for p in console_dir.iterdir()) == ["ca.crt", "console.crt", "console.key"]
    assert mode(console_dir / "console.key") == 0o600
    assert common_name(load_cert(console_dir / "console.crt").subject) == CONSOLE_CN
    code, _, err = run(capsys, "ca", "issue-console", "--dir", ca_dir, "--out", console_dir)
    assert code == 1 and "exists" in err
    code, _, err = run(capsys, "ca", "issue-console", "--dir", tmp_path / "nothing")
    assert code == 1 and "fleet ca init" in err


@pytest.fixture
def crl_broker(tmp_path: Path) -> Iterator[CrlBroker]:
    broker = CrlBroker(tmp_path / "broker", tls=True)
    yield broker
    broker.stop()


def connects(broker: CrlBroker, folder: Path) -> bool:
    """A paho client with the console's files: CONNACK success within 5 s."""
    done, result = threading.Event(), []
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"console-{id(done):x}", protocol=mqtt.MQTTv5
    )
    client.tls_set(
        ca_certs=str(folder / "ca.crt"),
        certfile=str(folder / "console.crt"),
        keyfile=str(folder / "console.key"),
    )

    def on_connect(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any = None) -> None:
        result.append(not reason.is_failure)
        done.set()

    client.on_connect = on_connect
    try:
        client.connect("localhost", broker.port)  # the name is checked against the SAN
    except (ssl.SSLError, OSError):
        return False
    client.loop_start()
    try:
        done.wait(5)
    finally:
        client.disconnect()
        client.loop_stop()
    return result == [True]


def tls_answer(broker: CrlBroker, folder: Path) -> str:
    """The broker's answer to the console's files, its name checked as "localhost" (the SAN)."""
    return enroll_tls_answer(broker, folder, "console", "localhost")


@pytest.mark.slow
def test_the_shipped_broker_accepts_what_fleet_ca_issues_and_refuses_what_it_revokes(
    tmp_path: Path, crl_broker: CrlBroker, capsys: pytest.CaptureFixture[str]
) -> None:
    broker = crl_broker
    ca_dir, console_dir, root = tmp_path / "ca", tmp_path / "console", broker.root
    db = f"sqlite:///{tmp_path / 'console.sqlite3'}"
    crl = root / "fleet.crl"  # where the derived configuration's crlfile points
    steps = [
        ["ca", "init", "--dir", ca_dir],
        ["ca", "issue-broker", "--dir", ca_dir, "--host", "localhost", "--host", "127.0.0.1",
         "--out", root],
        ["ca", "issue-console", "--dir", ca_dir, "--out", console_dir],
        # the broker does not start with crlfile set and no CRL: the first, empty one
        ["enroll", "crl", "--ca-cert", ca_dir / "ca.crt", "--ca-key", ca_dir / "ca.key",
         "--crl", crl, "--db", db],
    ]  # fmt: skip
    for argv in steps:
        code, _, err = run(capsys, *argv)
        assert code == 0, (argv, err)
    shutil.copyfile(ca_dir / "ca.crt", root / "ca.crt")  # the broker's copy
    # not so in production: the test broker keeps its CA's key in ca/ (tests/fleet/conftest.py's
    # payload recorder issues itself a console certificate with it); without it the test broker
    # would make a CA of its own over ca.crt
    (root / "ca").mkdir()
    shutil.copyfile(ca_dir / "ca.key", root / "ca" / "ca.key")
    broker.start()
    running = (root / "mosquitto.conf").read_text().splitlines()
    assert "require_certificate true" in running and f"crlfile {crl}" in running
    assert issued_by(load_cert(root / "server.crt"), load_cert(root / "ca.crt"))
    assert load_cert(root / "ca.crt") == load_cert(ca_dir / "ca.crt")  # still ours
    assert connects(broker, console_dir)

    code, out, err = run(
        capsys, "ca", "revoke", console_dir / "console.crt", "--dir", ca_dir,
        "--reason", "laptop lost", "--crl", crl, "--db", db,
    )  # fmt: skip
    assert code == 0, err
    assert "revoked console" in out and "1 revoked" in out
    broker._proc.send_signal(signal.SIGHUP)  # type: ignore[union-attr]  # systemctl reload
    until(
        lambda: tls_answer(broker, console_dir) == REVOKED,
        timeout=10,
        what="the broker to refuse the revoked console certificate",
    )
    assert not connects(broker, console_dir)
    # the revocation is recorded: a CRL written again by fleet enroll still lists it
    code, _, err = run(
        capsys, "enroll", "crl", "--ca-cert", ca_dir / "ca.crt",
        "--ca-key", ca_dir / "ca.key", "--crl", crl, "--db", db,
    )  # fmt: skip
    assert code == 0, err
    serial = load_cert(console_dir / "console.crt").serial_number
    listed = x509.load_pem_x509_crl(crl.read_bytes())
    assert listed.get_revoked_certificate_by_serial_number(serial) is not None
    # a new console pair gets in again
    code, _, err = run(
        capsys, "ca", "issue-console", "--dir", ca_dir, "--out", console_dir, "--force"
    )
    assert code == 0, err
    assert connects(broker, console_dir)
