"""The fleet CA, the terminal's side of renewal, and reconnect pacing, without a broker.

(The same code against a real mosquitto is in ``test_tls.py``.)
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import itertools
import random
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from fleet.agent import Agent, AgentConfig, renewal
from fleet.mqtt.backoff import Backoff
from fleet.mqtt.client import TlsFiles
from fleet.protocol.models import CsrEvent
from fleet.protocol.topics import StationTopics
from fleet.trust.pki import (
    CertificateAuthority,
    PkiError,
    build_csr,
    cert_pem,
    check_station_id,
    csr_pem,
    expiry,
    generate_key,
    load_cert,
    load_key,
    same_public_key,
    write_cert,
    write_key,
)
from fleet.trust.renewal import answer_csr
from statedir.journal import Journal

STATION = "st-0001"


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority.create("unit test CA")


# --- the authority ---------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["", "console", "CONSOLE", "a/b", "st+1", "st#", "a b", "x" * 65])
def test_station_ids_that_are_no_certificate_name(bad: str) -> None:
    with pytest.raises(PkiError):
        check_station_id(bad)


def test_sign_csr_only_for_the_station_it_came_from(ca: CertificateAuthority) -> None:
    key = generate_key()
    pem = csr_pem(build_csr(key, STATION))
    cert = ca.sign_csr(pem, STATION)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == STATION
    assert same_public_key(cert, key)
    assert cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == (
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH])
    )
    with pytest.raises(PkiError, match="not for 'st-0002'"):
        ca.sign_csr(pem, "st-0002")
    with pytest.raises(PkiError):  # nobody gets the console's name through a CSR
        ca.sign_csr(pem, "console")


def test_sign_csr_refuses_a_broken_request_and_ignores_asked_extensions(
    ca: CertificateAuthority,
) -> None:
    key = generate_key()
    greedy = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, STATION)]))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert = ca.sign_csr(greedy.public_bytes(Encoding.PEM), STATION)
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    der = bytearray(greedy.public_bytes(Encoding.DER))
    der[-6] ^= 0x01  # the request's own signature
    broken = x509.load_der_x509_csr(bytes(der)).public_bytes(Encoding.PEM)
    with pytest.raises(PkiError, match="signature"):
        ca.sign_csr(broken, STATION)
    with pytest.raises(PkiError):
        ca.sign_csr(b"not a request", STATION)


def test_server_certificate_names_its_hosts(ca: CertificateAuthority) -> None:
    _key, cert = ca.issue_server(("broker.example", "127.0.0.1"))
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["broker.example"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]


def test_keys_are_written_0600_and_certificates_read_back(
    tmp_path: Path, ca: CertificateAuthority
) -> None:
    key, cert = ca.issue_station(STATION, valid_for=dt.timedelta(days=7))
    (tmp_path / "k.pem").write_text("old")
    (tmp_path / "k.pem").chmod(0o644)  # an old, too open file is not kept open
    write_key(tmp_path / "k.pem", key)
    write_cert(tmp_path / "c.pem", cert)
    assert (tmp_path / "k.pem").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "c.pem").stat().st_mode & 0o777 == 0o644
    assert same_public_key(load_cert(tmp_path / "c.pem"), load_key(tmp_path / "k.pem"))
    left = expiry(tmp_path / "c.pem") - dt.datetime.now(dt.UTC)
    assert dt.timedelta(days=6, hours=23) < left <= dt.timedelta(days=7)
    assert list(tmp_path.glob(".*tmp")) == []


# --- the terminal's side of renewal ------------------------------------------------------------


class Station:
    """What handle_install_certificate needs of the agent: a real journal and real files."""

    def __init__(self, tmp_path: Path, ca: CertificateAuthority, valid_for: dt.timedelta) -> None:
        self.journal = Journal(tmp_path / "journal.sqlite3")
        self.topics = StationTopics("site", STATION)
        key, cert = ca.issue_station(STATION, valid_for=valid_for)
        tls = tmp_path / "tls"
        write_cert(tls / "ca.crt", ca.cert)
        write_cert(tls / "station.crt", cert)
        write_key(tls / "station.key", key)
        self.tls_files: TlsFiles | None = TlsFiles(
            tls / "ca.crt", tls / "station.crt", tls / "station.key"
        )
        self.reloads = 0

    @property
    def files(self) -> TlsFiles:
        assert self.tls_files is not None
        return self.tls_files

    def reload_certificate(self) -> None:
        self.reloads += 1

    def csr_events(self) -> list[dict[str, Any]]:
        return [e.payload for e in self.journal.pending_events() if e.type == "csr"]

    def alerts(self) -> list[dict[str, Any]]:
        return [e.payload for e in self.journal.pending_events() if e.type == "alert"]


@pytest.fixture
def station(tmp_path: Path, ca: CertificateAuthority) -> Station:
    return Station(tmp_path, ca, dt.timedelta(days=10))


def test_request_renewal_queues_one_csr_made_with_a_key_that_stays(
    tmp_path: Path, ca: CertificateAuthority, station: Station
) -> None:
    fresh = Station(tmp_path / "fresh", ca, dt.timedelta(days=300))
    assert renewal.request_renewal(fresh.files, STATION, fresh.journal) is None
    assert fresh.csr_events() == [] and not fresh.files.pending_key_file.exists()

    now = time.time()
    assert renewal.request_renewal(station.files, STATION, station.journal, now=now)
    [event] = station.csr_events()
    csr = x509.load_pem_x509_csr(event["csr"].encode())
    pending = load_key(station.files.pending_key_file)
    assert csr.is_signature_valid
    assert csr.public_key() == pending.public_key()
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == STATION
    assert station.files.pending_key_file.stat().st_mode & 0o777 == 0o600
    assert set(event) == {"csr", "current_serial", "current_not_after", "ts", "event_id"}
    # as the agent sends it (it adds station and backfill): it fits the protocol's model
    CsrEvent.model_validate({**event, "station": STATION, "backfill": False})
    # asked already: not again within a day; after that, again with the same key
    assert renewal.request_renewal(station.files, STATION, station.journal, now=now + 60) is None
    assert renewal.request_renewal(station.files, STATION, station.journal, now=now + 90000)
    again = x509.load_pem_x509_csr(station.csr_events()[-1]["csr"].encode())
    assert again.public_key() == pending.public_key()


def _signed(ca: CertificateAuthority, station: Station) -> str:
    renewal.request_renewal(station.files, STATION, station.journal)
    command = answer_csr(ca, station.csr_events()[-1], STATION)
    assert command["name"] == "install_certificate"
    return str(command["args"]["certificate"])


def test_install_certificate_replaces_the_pair_and_reconnects(
    ca: CertificateAuthority, station: Station
) -> None:
    pem = _signed(ca, station)
    pending = load_key(station.files.pending_key_file)
    status, detail = renewal.handle_install_certificate(station, {"certificate": pem})
    assert status == "succeeded"
    installed = load_cert(station.files.cert_file)
    assert detail["serial"] == f"{installed.serial_number:x}"
    assert cert_pem(installed).decode() == pem
    assert same_public_key(installed, load_key(station.files.key_file))
    assert same_public_key(installed, pending)
    assert station.files.key_file.stat().st_mode & 0o777 == 0o600
    assert not station.files.pending_key_file.exists()
    assert station.reloads == 1 and station.alerts() == []


def _forge(kind: str, ca: CertificateAuthority, station: Station) -> str:
    pem = _signed(ca, station)
    pending = load_key(station.files.pending_key_file).public_key()
    if kind == "unreadable":
        return pem.replace("M", "m", 3)[:200]
    if kind == "wrong_issuer":
        return cert_pem(
            CertificateAuthority.create("other").issue_client(STATION, pending)
        ).decode()
    if kind == "tampered":
        der = bytearray(x509.load_pem_x509_certificate(pem.encode()).public_bytes(Encoding.DER))
        der[-8] ^= 0x01
        return x509.load_der_x509_certificate(bytes(der)).public_bytes(Encoding.PEM).decode()
    if kind == "wrong_station":
        return cert_pem(ca.issue_client("st-0002", pending)).decode()
    if kind == "key_mismatch":
        return cert_pem(ca.issue_client(STATION, generate_key().public_key())).decode()
    if kind == "not_valid_now":
        return cert_pem(
            ca.issue_client(STATION, pending, valid_for=dt.timedelta(minutes=-1))
        ).decode()
    raise AssertionError(kind)


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("unreadable", "unreadable"),
        ("wrong_issuer", "wrong_issuer"),
        ("tampered", "wrong_issuer"),
        ("wrong_station", "wrong_station"),
        ("key_mismatch", "key_mismatch"),
        ("not_valid_now", "not_valid_now"),
    ],
)
def test_a_bad_certificate_is_refused_alerted_and_changes_nothing(
    kind: str, reason: str, ca: CertificateAuthority, station: Station
) -> None:
    pem = _forge(kind, ca, station)
    before = station.files.cert_file.read_bytes(), station.files.key_file.read_bytes()
    status, detail = renewal.handle_install_certificate(station, {"certificate": pem})
    assert (status, detail) == ("failed", {"reason": reason})
    assert [a["kind"] for a in station.alerts()] == [renewal.ALERT_KIND]
    assert station.alerts()[0]["detail"]["reason"] == reason
    assert (station.files.cert_file.read_bytes(), station.files.key_file.read_bytes()) == before
    assert station.files.pending_key_file.exists() and station.reloads == 0


def test_an_unasked_certificate_or_a_plain_agent_is_refused(
    ca: CertificateAuthority, station: Station
) -> None:
    _key, cert = ca.issue_station(STATION)
    status, detail = renewal.handle_install_certificate(
        station, {"certificate": cert_pem(cert).decode()}
    )
    assert (status, detail) == ("failed", {"reason": "no_pending_request"})
    station.tls_files = None
    assert renewal.handle_install_certificate(station, {"certificate": "x"}) == (
        "failed",
        {"reason": "no_tls"},
    )
    assert len(station.alerts()) == 2


def test_an_install_cut_between_its_renames_is_completed_or_undone(
    ca: CertificateAuthority, station: Station
) -> None:
    files = station.files
    pem = _signed(ca, station)
    # died after the key was replaced, before the certificate was: completed at the next start
    files.staged_cert_file.write_text(pem)
    files.key_file.write_bytes(files.pending_key_file.read_bytes())
    assert renewal.complete_interrupted_install(files) is True
    assert same_public_key(load_cert(files.cert_file), load_key(files.key_file))
    # died before the key was replaced: the staged certificate is dropped, the old pair stays
    station2 = Station(files.cert_file.parent.parent / "two", ca, dt.timedelta(days=10))
    pem2 = _signed(ca, station2)
    old_cert = station2.files.cert_file.read_bytes()
    station2.files.staged_cert_file.write_text(pem2)
    assert renewal.complete_interrupted_install(station2.files) is False
    assert station2.files.cert_file.read_bytes() == old_cert
    assert not station2.files.staged_cert_file.exists()
    assert renewal.complete_interrupted_install(station2.files) is False


def test_the_centre_signs_only_for_the_station_of_the_topic(
    ca: CertificateAuthority, station: Station
) -> None:
    renewal.request_renewal(station.files, STATION, station.journal)
    with pytest.raises(PkiError):
        answer_csr(ca, station.csr_events()[-1], "st-0002")
    with pytest.raises(PkiError):
        answer_csr(ca, {"csr": 5}, STATION)


# --- reconnect pacing ----------------------------------------------------------------------------


def test_backoff_grows_to_its_cap_with_jitter_and_resets() -> None:
    backoff = Backoff(1.0, 8.0, random.Random(1))
    delays = [backoff.next_delay() for _ in range(8)]
    for attempt, delay in enumerate(delays):
        step = min(8.0, 2.0**attempt)
        assert step / 2 <= delay <= step
    backoff.reset()
    assert 0.5 <= backoff.next_delay() <= 1.0
    # two agents that failed together do not retry together
    a, b = Backoff(1.0, 60.0), Backoff(1.0, 60.0)
    pairs = [(a.next_delay(), b.next_delay()) for _ in range(6)]
    assert all(x != y for x, y in pairs)
    spread = [Backoff(1.0, 60.0, random.Random(s)).next_delay() for s in range(200)]
    assert min(spread) < 0.6 and max(spread) > 0.9  # the whole upper half is used
    with pytest.raises(ValueError):
        Backoff(0, 1)


def test_the_agent_paces_its_reconnects_with_its_backoff(tmp_path: Path) -> None:
    """A listener that hangs up on every connection: the agent's attempts follow its draws."""
    attempts: list[float] = []
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    done = threading.Event()

    def hang_up() -> None:
        while not done.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            attempts.append(time.monotonic())
            conn.close()

    thread = threading.Thread(target=hang_up, daemon=True)
    thread.start()
    agent = Agent(
        AgentConfig(
            site="site",
            station=STATION,
            host="127.0.0.1",
            port=server.getsockname()[1],
            state_dir=tmp_path / "st",
            journal_path=tmp_path / "st" / "journal.sqlite3",
            reconnect_min_s=0.2,
            reconnect_max_s=0.8,
        )
    )
    agent._backoff = Backoff(0.2, 0.8, random.Random(7))
    expected = Backoff(0.2, 0.8, random.Random(7))
    agent.start()
    try:
        deadline = time.monotonic() + 10
        while len(attempts) < 6 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        agent.stop()
        done.set()
        thread.join(5)
        server.close()
    assert len(attempts) >= 6, attempts
    gaps = [b - a for a, b in itertools.pairwise(attempts)][:5]
    draws = [expected.next_delay() for _ in gaps]
    for gap, draw in zip(gaps, draws, strict=True):
        assert draw - 0.05 <= gap <= draw + 0.3, (gaps, draws)
    assert not agent.connected.is_set()
