"""Terminal enrolment, revocation and certificate expiry (issue #9), against real peers.

``fleet enroll`` runs through ``fleet.cli.main``; the revocation proof runs mosquitto with the
shipped TLS configuration (its ``crlfile`` line switched on, as the file's README says) and real
fleet agents; the page runs through Starlette's TestClient with logins and CSRF tokens; every
test runs on SQLite and PostgreSQL (``db_url``).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import re
import signal
import socket
import ssl
import stat
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from sqlalchemy import select
from starlette.testclient import TestClient

from fleet.agent import Agent, AgentConfig
from fleet.cli import main as fleet
from fleet.console import Console, Settings, WebSettings
from fleet.console.enroll import ALERT_KIND, Enrolment, IssuedCertificate
from fleet.console.store import Alert, AuditEntry, CommandRow, Station
from fleet.trust.pki import (
    CertificateAuthority,
    build_csr,
    common_name,
    csr_pem,
    generate_key,
    issued_by,
    load_cert,
    load_key,
    parse_cert,
    parse_key,
    same_public_key,
)
from flows.tokens import Signer, TokenClaims, public_pem
from sandbox.mosquitto import SHIPPED_CONF, MosquittoBroker, derive_tls_config
from tests.fleet import messages
from tests.fleet.console.test_console import PASSWORD, until
from tests.fleet.console.test_console import login as console_login

SITE = "zibo-gx"
DAY = 86400.0
REVOKED = "SSLV3_ALERT_CERTIFICATE_REVOKED"


def run_fleet(capsys: pytest.CaptureFixture[str], *argv: Any) -> tuple[int, str, str]:
    capsys.readouterr()
    code = fleet([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def ca_args(ca_dir: Path) -> list[Any]:
    return ["--ca-cert", ca_dir / "ca.crt", "--ca-key", ca_dir / "ca.key"]


def make_ca(folder: Path) -> CertificateAuthority:
    ca = CertificateAuthority.create("test fleet CA")
    ca.save(folder / "ca.crt", folder / "ca.key")
    return ca


def doc_signer(folder: Path) -> Signer:
    """A terminal's document key as the kiosk makes it (its public half beside it, .pub)."""
    return Signer.load_or_create(folder / "document-signing.key")


def qr_token(signer: Signer) -> str:
    return signer.sign(TokenClaims("residence_certificate", "D-2026-0001", 1_790_000_000, "ab"))


def private_key_nowhere(store_session: Any) -> None:
    """No private key in the enrolment tables or the audit log."""
    with store_session() as db:
        rows: list[Any] = [
            *db.scalars(select(Enrolment)),
            *db.scalars(select(IssuedCertificate)),
            *db.scalars(select(AuditEntry)),
        ]
        text = json.dumps([{k: str(v) for k, v in vars(r).items()} for r in rows])
    assert "PRIVATE KEY" not in text


# --- the command line ----------------------------------------------------------------------------


def test_fleet_enroll_issues_the_terminals_files_and_records_it(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ca = make_ca(tmp_path)
    signer = doc_signer(tmp_path / "terminal")
    out = tmp_path / "out"
    code, text, err = run_fleet(
        capsys, "enroll", "add", SITE, "st-0001", *ca_args(tmp_path), "--out", out,
        "--doc-key-pub", tmp_path / "terminal" / "document-signing.pub",
        "--db", db_url, "--days", "90", "--json",
    )  # fmt: skip
    assert code == 0, err
    report = json.loads(text)
    enrolment = report["enrolment"]
    # the files for the terminal: the CA, its certificate (CN = station id) and its key (0600)
    assert sorted(p.name for p in out.iterdir()) == [
        "ca.crt",
        "kiosk-fleet.toml",
        "station.crt",
        "station.key",
    ]
    cert = load_cert(out / "station.crt")
    assert common_name(cert.subject) == "st-0001"
    assert issued_by(cert, ca.cert) and same_public_key(cert, load_key(out / "station.key"))
    assert stat.S_IMODE((out / "station.key").stat().st_mode) == 0o600
    assert (out / "ca.crt").read_bytes() == (tmp_path / "ca.crt").read_bytes()
    assert enrolment["serial"] == f"{cert.serial_number:x}"
    assert 89.9 < enrolment["days_left"] <= 90 and not enrolment["expiring"]
    assert enrolment["doc_key_id"] == signer.key_id and enrolment["state"] == "active"
    # which file goes where, matching the agent's [fleet] keys
    assert report["install"]["station.key"] == {
        "to": "/var/lib/station-kiosk/tls/station.key",
        "config": "[fleet] key_file",
        "mode": "600",
    }
    snippet = (out / "kiosk-fleet.toml").read_text()
    assert 'key_file = "/var/lib/station-kiosk/tls/station.key"' in snippet
    assert 'id = "st-0001"' in snippet and f'site = "{SITE}"' in snippet

    # the enrolled document key verifies the terminal's QR tokens: fleet verify --db
    assert run_fleet(capsys, "verify", qr_token(signer), "--db", db_url)[0] == 0
    assert (
        run_fleet(capsys, "verify", qr_token(doc_signer(tmp_path / "other")), "--db", db_url)[0]
        == 2
    )

    # refused: enrolled twice, the same id at another site, a shared document key, bad names
    for argv, says in (
        ([SITE, "st-0001", "--out", tmp_path / "again"], "enrolled already"),
        (["other-site", "st-0001", "--out", tmp_path / "site"], "at site zibo-gx"),
        (
            [SITE, "st-0002", "--out", tmp_path / "copy", "--doc-key-pub", signer_pub(tmp_path)],
            "enrolled for st-0001 already",
        ),
        ([SITE, "console", "--out", tmp_path / "console"], "not a valid station id"),
        ([SITE, "St 3", "--out", tmp_path / "bad"], "not a valid station id"),
    ):
        code, _, err = run_fleet(capsys, "enroll", "add", *argv, *ca_args(tmp_path), "--db", db_url)
        assert code == 1 and says in err, err
        assert not (Path(str(argv[3])) / "station.key").exists()
    # a folder holding a key is never overwritten
    code, _, err = run_fleet(
        capsys, "enroll", "add", SITE, "st-0004", *ca_args(tmp_path), "--out", out, "--db", db_url
    )
    assert code == 1 and "exists" in err
    assert load_cert(out / "station.crt").serial_number == cert.serial_number

    # revocation needs a reason and the CRL's path
    code, _, err = run_fleet(
        capsys, "enroll", "revoke", SITE, "st-0001", "--reason", "x", "--db", db_url
    )
    assert code == 2 and "--crl" in err
    crl_file = tmp_path / "fleet.crl"
    code, _, err = run_fleet(
        capsys, "enroll", "revoke", SITE, "st-0001", *ca_args(tmp_path), "--crl", crl_file,
        "--db", db_url,
    )  # fmt: skip
    assert code == 1 and "needs a reason" in err
    code, text, err = run_fleet(
        capsys, "enroll", "revoke", SITE, "st-0001", "--reason", "terminal stolen",
        *ca_args(tmp_path), "--crl", crl_file, "--db", db_url, "--json",
    )  # fmt: skip
    assert code == 0, err
    revoked = json.loads(text)
    assert revoked["enrolment"]["state"] == "revoked"
    assert revoked["enrolment"]["revoke_reason"] == "terminal stolen"
    crl = x509.load_pem_x509_crl(crl_file.read_bytes())
    assert crl.is_signature_valid(ca.key.public_key())
    assert crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None
    assert oct(crl_file.stat().st_mode & 0o777) == "0o644"  # the broker's user reads it
    # a revoked terminal's tokens no longer verify against the database's keys
    assert run_fleet(capsys, "verify", qr_token(signer), "--db", db_url)[0] == 2

    # enrolled again (a re-imaged terminal): a new certificate, the old one stays in the CRL
    code, text, err = run_fleet(
        capsys, "enroll", "add", SITE, "st-0001", *ca_args(tmp_path), "--out", tmp_path / "new",
        "--db", db_url, "--crl", crl_file, "--json",
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(text)["enrolment"]["state"] == "active"
    crl = x509.load_pem_x509_crl(crl_file.read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None
    new = load_cert(tmp_path / "new" / "station.crt")
    assert crl.get_revoked_certificate_by_serial_number(new.serial_number) is None
    # the document key is recorded later, once the kiosk has made it
    code, text, err = run_fleet(
        capsys, "enroll", "set-doc-key", SITE, "st-0001", "--doc-key-pub",
        signer_pub(tmp_path), "--db", db_url, "--json",
    )  # fmt: skip
    assert code == 0 and json.loads(text)["enrolment"]["doc_key_id"] == signer.key_id, err
    code, text, _ = run_fleet(capsys, "enroll", "list", "--db", db_url, "--json")
    [listed] = json.loads(text)["enrolments"]
    assert (listed["station"], listed["state"], listed["doc_key_id"]) == (
        "st-0001",
        "active",
        signer.key_id,
    )

    from fleet.console.store import Store

    store = Store(db_url)
    try:
        private_key_nowhere(store.session)
        with store.session() as db:
            actions = [(a.actor, a.action, a.ok) for a in db.scalars(select(AuditEntry))]
        assert actions.count(("cli", "enroll", True)) == 2
        assert ("cli", "revoke", True) in actions
    finally:
        store.close()


def signer_pub(tmp_path: Path) -> Path:
    return tmp_path / "terminal" / "document-signing.pub"


# --- the broker refuses a revoked certificate -----------------------------------------------------


class CrlBroker(MosquittoBroker):
    """The shipped TLS configuration with its ``crlfile`` line on, as its README tells."""

    def write_tls_config(self) -> Path:
        conf = super().write_tls_config()
        shipped = SHIPPED_CONF.read_text()
        assert re.search(r"^#? ?crlfile /etc/mosquitto/kiosk/fleet\.crl$", shipped, re.M)
        conf.write_text(
            derive_tls_config(
                re.sub(r"^# crlfile ", "crlfile ", shipped, flags=re.M),
                host=self.host,
                port=self.port,
                root=self.root,
                user_root=os.geteuid() == 0,
            )
        )
        return conf

    def reload(self) -> None:
        """What ``systemctl reload mosquitto`` does: SIGHUP."""
        assert self._proc is not None
        self._proc.send_signal(signal.SIGHUP)


@pytest.fixture
def crl_broker(tmp_path: Path) -> Iterator[CrlBroker]:
    broker = CrlBroker(tmp_path / "broker", tls=True)
    yield broker
    broker.stop()


def tls_answer(
    broker: MosquittoBroker, folder: Path, name: str = "station", host: str | None = None
) -> str:
    """The broker's answer to a TLS client with ``folder``'s files (``ca.crt``, ``NAME.crt``,
    ``NAME.key``), checking the broker's name as ``host``: 'answered' (a CONNACK) or the TLS
    alert it sent (with TLS 1.3 the client's certificate is judged after the handshake, so the
    alert comes with the first read)."""
    context = ssl.create_default_context(cafile=str(folder / "ca.crt"))
    context.load_cert_chain(folder / f"{name}.crt", folder / f"{name}.key")
    with (
        socket.create_connection((broker.host, broker.port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=host or broker.host) as tls,
    ):
        tls.settimeout(2.0)
        try:
            tls.recv(16)
        except ssl.SSLError as err:
            return f"{err.reason}"
        except TimeoutError:
            pass
        tls.sendall(bytes([0x10, 13, 0, 4]) + b"MQTT" + bytes([5, 2, 0, 60, 0, 0, 0]))
        try:
            return "answered" if tls.recv(16)[:1] == b"\x20" else "no CONNACK"
        except ssl.SSLError as err:
            return f"{err.reason}"


def agent_for(tmp_path: Path, broker: MosquittoBroker, station: str, files: Path) -> Agent:
    state = tmp_path / f"state-{station}-{time.monotonic_ns()}"
    return Agent(
        AgentConfig(
            site=SITE,
            station=station,
            host=broker.host,
            port=broker.port,
            state_dir=state,
            journal_path=state / "journal.sqlite3",
            health_interval_s=0.5,
            will_delay_s=1,
            ca_file=files / "ca.crt",
            cert_file=files / "station.crt",
            key_file=files / "station.key",
            reconnect_max_s=1.0,
        )
    )


@pytest.mark.slow
def test_a_revoked_terminal_is_refused_by_the_broker_after_a_reload(
    tmp_path: Path, crl_broker: CrlBroker, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    broker = crl_broker
    ca = broker.ca  # the fleet CA of this broker (ca.crt in its folder, the key apart)
    ca_files = ["--ca-cert", broker.ca_file, "--ca-key", broker.root / "ca" / "ca.key"]
    crl_file = broker.root / "fleet.crl"  # where the derived config's crlfile points
    # with crlfile set mosquitto does not start without a CRL: write the first, empty one
    code, _, err = run_fleet(capsys, "enroll", "crl", *ca_files, "--crl", crl_file, "--db", db_url)
    assert code == 0, err
    assert len(x509.load_pem_x509_crl(crl_file.read_bytes())) == 0
    broker.start()
    running = (broker.root / "mosquitto.conf").read_text().splitlines()
    assert f"crlfile {crl_file}" in running
    assert "require_certificate true" in running and "use_identity_as_username true" in running
    for station in ("st-0001", "st-0002"):
        code, _, err = run_fleet(
            capsys, "enroll", "add", SITE, station, *ca_files, "--out", tmp_path / station,
            "--days", "90", "--db", db_url,
        )  # fmt: skip
        assert code == 0, err
    assert issued_by(load_cert(tmp_path / "st-0001" / "station.crt"), ca.cert)

    agent = agent_for(tmp_path, broker, "st-0001", tmp_path / "st-0001")
    agent.start()
    try:
        until(agent.connected.is_set, what="the enrolled terminal's TLS connection")
    finally:
        agent.stop()
    code, said, err = run_fleet(
        capsys, "enroll", "revoke", SITE, "st-0001", "--reason", "stolen from the lobby",
        *ca_files, "--crl", crl_file, "--db", db_url,
    )  # fmt: skip
    assert code == 0, err
    assert "1 revoked" in said and "systemctl reload mosquitto" in said
    # mosquitto still holds the CRL it read at start: the certificate still gets in
    assert tls_answer(broker, tmp_path / "st-0001") == "answered"
    broker.reload()  # SIGHUP: mosquitto reads the CRL again
    until(
        lambda: tls_answer(broker, tmp_path / "st-0001") == REVOKED,
        timeout=10,
        what="the broker to refuse the revoked certificate",
    )
    assert tls_answer(broker, tmp_path / "st-0002") == "answered"  # the others still get in
    log = (broker.root / "mosquitto.log").read_text()
    assert "certificate verify failed" in log
    # the real agent: the revoked terminal never connects again, the other one does
    revoked = agent_for(tmp_path, broker, "st-0001", tmp_path / "st-0001")
    other = agent_for(tmp_path, broker, "st-0002", tmp_path / "st-0002")
    revoked.start()
    other.start()
    try:
        until(other.connected.is_set, what="the other terminal's connection")
        time.sleep(3.0)  # several reconnect attempts (backoff at most 1 s)
        assert not revoked.connected.is_set()
    finally:
        revoked.stop()
        other.stop()


# --- renewal and expiry in the console ------------------------------------------------------------


def make_console(db_url: str, **kw: Any) -> Console:
    console = Console(
        "127.0.0.1",
        1,  # no broker: the ingest is fed directly, as its stream would
        db_url=db_url,
        ca=kw.pop("ca", None),
        settings=Settings(sweep_s=3600),
        web=kw.pop("web", WebSettings()),
    )
    for name, role in (("tech", "technician"), ("oper", "operator"), ("boss", "admin")):
        console.add_user(name, PASSWORD, role)
    return console


def active_alerts(console: Console, kind: str) -> list[Alert]:
    with console.store.session() as db:
        return list(db.scalars(select(Alert).where(Alert.kind == kind)))


def csr_event(station: str, event_id: str) -> bytes:
    pem = csr_pem(build_csr(generate_key(), station)).decode()
    return messages.event("csr", station, event_id, csr=pem)


def test_expiry_alerts_30_days_ahead_renewals_recorded_and_refused_once_revoked(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ca = make_ca(tmp_path)
    out = tmp_path / "st-a"
    code, _, err = run_fleet(
        capsys, "enroll", "add", SITE, "st-a", *ca_args(tmp_path), "--out", out, "--days", "40",
        "--db", db_url,
    )  # fmt: skip
    assert code == 0, err
    first = load_cert(out / "station.crt")
    console = make_console(db_url, ca=ca)
    ingest = console.ingest
    topic = f"kiosk/v1/{SITE}/st-a"
    try:
        expiry = first.not_valid_after_utc.isoformat()
        ingest.handle(f"{topic}/birth", messages.birth(SITE, "st-a", cert_expiry=expiry))
        now = time.time()
        ingest.sweep(now=now)
        assert active_alerts(console, ALERT_KIND) == []  # 40 days left
        later = now + 11 * DAY  # 29 days left
        ingest.sweep(now=later)
        ingest.sweep(now=later + 60)  # de-duplicated
        [alert] = active_alerts(console, ALERT_KIND)
        assert alert.active_key is not None and 28.9 < alert.detail["days_left"] < 29.1
        assert alert.detail["serial"] == f"{first.serial_number:x}"

        # the terminal asks for a new certificate: answered, and the enrolment names it
        ingest.handle(f"{topic}/evt/csr", csr_event("st-a", "csr-1"))
        with console.store.session() as db:
            [command] = db.scalars(select(CommandRow))
            row = db.scalars(select(Enrolment)).one()
            assert row.serial == command.args["serial"] and row.renewed_at is not None
            assert row.not_after > now + 300 * DAY
            origins = sorted(c.origin for c in db.scalars(select(IssuedCertificate)))
            assert origins == ["enrol", "renewal"]
        renewed = parse_cert(command.args["certificate"].encode())
        # until the terminal presents it (its birth says so), the alert stays
        ingest.sweep(now=later)
        assert active_alerts(console, ALERT_KIND)[0].active_key is not None
        expiry = renewed.not_valid_after_utc.isoformat()
        ingest.handle(f"{topic}/birth", messages.birth(SITE, "st-a", cert_expiry=expiry))
        ingest.sweep(now=later)
        [resolved] = active_alerts(console, ALERT_KIND)
        assert resolved.active_key is None and resolved.resolved_at is not None

        # revoked: the next request gets no certificate, and the refusal is audited
        code, _, err = run_fleet(
            capsys, "enroll", "revoke", SITE, "st-a", "--reason", "decommissioned",
            *ca_args(tmp_path), "--crl", tmp_path / "fleet.crl", "--db", db_url,
        )  # fmt: skip
        assert code == 0, err
        ingest.handle(f"{topic}/evt/csr", csr_event("st-a", "csr-2"))
        with console.store.session() as db:
            assert len(list(db.scalars(select(CommandRow)))) == 1
            assert db.scalars(select(Enrolment)).one().serial == f"{renewed.serial_number:x}"
            refusals = [
                a.detail
                for a in db.scalars(select(AuditEntry))
                if a.action == "certificate_request" and not a.ok
            ]
        assert refusals == [{"reason": "revoked"}]
        # and a revoked terminal is not alerted about its expiry
        ingest.sweep(now=now + 39 * DAY)
        assert all(a.active_key is None for a in active_alerts(console, ALERT_KIND))
    finally:
        console.stop()


def test_a_station_never_seen_is_not_alerted_but_shown_expiring(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ca = make_ca(tmp_path)
    code, _, err = run_fleet(
        capsys, "enroll", "add", SITE, "st-b", *ca_args(tmp_path), "--out", tmp_path / "b",
        "--days", "5", "--db", db_url,
    )  # fmt: skip
    assert code == 0, err
    console = make_console(db_url, ca=ca)
    try:
        console.ingest.sweep(now=time.time())
        assert active_alerts(console, ALERT_KIND) == []
        with console.store.session() as db:
            assert list(db.scalars(select(Station))) == []  # no station row made up for it
        http, _ = login(console, "tech")
        [row] = http.get("/api/enrolments").json()
        assert row["expiring"] and 4.9 < row["days_left"] <= 5
    finally:
        console.stop()


# --- the page ------------------------------------------------------------------------------------


def login(console: Console, name: str) -> tuple[TestClient, str]:
    """Logged in as ``name`` (every role may see the Enrolment page)."""
    http, token = console_login(console, name)
    page = http.get("/enrolment")
    assert page.status_code == 200, page.text
    return http, token


def audit_of(console: Console) -> list[tuple[str, str, bool, dict[str, Any]]]:
    with console.store.session() as db:
        return [
            (a.actor, a.action, a.ok, a.detail)
            for a in db.scalars(select(AuditEntry).order_by(AuditEntry.id))
        ]


def test_the_enrolment_page_issues_a_one_time_download_and_revokes(
    tmp_path: Path, db_url: str
) -> None:
    ca = make_ca(tmp_path)
    crl_file = tmp_path / "broker" / "fleet.crl"
    console = make_console(db_url, ca=ca, web=WebSettings(crl_file=crl_file))
    signer = doc_signer(tmp_path / "terminal")
    doc_pub = public_pem(signer.public).decode()
    try:
        tech, tech_csrf = login(console, "tech")
        oper, oper_csrf = login(console, "oper")
        boss, csrf = login(console, "boss")
        assert 'id="enrol-form"' not in tech.get("/enrolment").text  # technicians look only
        assert 'id="enrol-form"' in boss.get("/enrolment").text
        form = {"site": SITE, "station": "st-web-1", "days": "10", "doc_key_pub": doc_pub}
        for http, token in ((tech, tech_csrf), (oper, oper_csrf)):
            assert http.post("/enrolment", data={**form, "csrf_token": token}).status_code == 403
            api = http.post("/api/enrolments", json=form, headers={"X-CSRF-Token": token})
            assert api.status_code == 403
        denied = [a for a in audit_of(console) if a[1] == "denied"]
        assert len(denied) == 4 and all(not ok and d["needs"] == "enroll" for *_, ok, d in denied)
        assert boss.post("/enrolment", data=form).status_code == 403  # no CSRF token

        # the admin enrols: the answer IS the download (a zip), kept nowhere
        answer = boss.post("/enrolment", data={**form, "csrf_token": csrf})
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "application/zip"
        assert answer.headers["cache-control"] == "no-store"
        assert "st-web-1" in answer.headers["content-disposition"]
        archive = zipfile.ZipFile(io.BytesIO(answer.content))
        files = ("ca.crt", "kiosk-fleet.toml", "station.crt", "station.key")
        assert sorted(archive.namelist()) == [f"st-web-1/{name}" for name in files]
        key_info = archive.getinfo("st-web-1/station.key")
        assert (key_info.external_attr >> 16) & 0o777 == 0o600
        cert = parse_cert(archive.read("st-web-1/station.crt"))
        key_pem = archive.read("st-web-1/station.key")
        assert common_name(cert.subject) == "st-web-1" and issued_by(cert, ca.cert)
        assert same_public_key(cert, parse_key(key_pem))
        private_key_nowhere(console.store.session)
        enrolled = [a for a in audit_of(console) if a[1] == "enroll" and a[2]]
        assert [(a[0], a[3]["serial"]) for a in enrolled] == [("boss", f"{cert.serial_number:x}")]

        # listed for everyone, with its expiry highlighted (10 days < 30)
        page = tech.get("/enrolment").text
        row = re.search(r'<tr class="enrolment active expiring" data-station="st-web-1">', page)
        assert row is not None and signer.key_id in page
        [listed] = tech.get("/api/enrolments").json()
        assert listed["expiring"] and 9.9 < listed["days_left"] <= 10
        # the enrolled key verifies tokens on the verify page (no key folder configured)
        verdict = tech.post("/verify", data={"token": qr_token(signer), "csrf_token": tech_csrf})
        assert "有效：residence_certificate D-2026-0001" in verdict.text

        again = boss.post("/enrolment", data={**form, "csrf_token": csrf})
        assert again.status_code == 409 and "enrolled already" in again.text
        bad = boss.post(
            "/enrolment",
            data={**form, "station": "st-web-2", "doc_key_pub": "no key", "csrf_token": csrf},
        )
        assert bad.status_code == 400 and "not an Ed25519 public key" in bad.text

        # the JSON API gives the same files as PEM text
        made = boss.post(
            "/api/enrolments",
            json={"site": SITE, "station": "st-web-2", "days": 30},
            headers={"X-CSRF-Token": csrf},
        )
        assert made.status_code == 201, made.text
        pems = made.json()["files"]
        assert same_public_key(
            parse_cert(pems["station.crt"].encode()), parse_key(pems["station.key"].encode())
        )

        # revoking: technicians may not, a reason is required, then the CRL is rewritten
        url = f"/enrolment/{SITE}/st-web-1/revoke"
        refused = tech.post(url, data={"reason": "x", "csrf_token": tech_csrf})
        assert refused.status_code == 403
        assert audit_of(console)[-1][:3] == ("tech", "denied", False)
        empty = boss.post(url, data={"reason": "  ", "csrf_token": csrf})
        assert empty.status_code == 400 and "needs a reason" in empty.text
        done = boss.post(url, data={"reason": "screen smashed, replaced", "csrf_token": csrf})
        assert done.status_code == 303
        assert done.headers["location"] == "/enrolment?revoked=st-web-1&crl=written"
        notice = boss.get(done.headers["location"]).text
        assert 'id="revoked-notice"' in notice and "systemctl reload mosquitto" in notice
        spoof = boss.get("/enrolment?revoked=st-web-2&crl=written").text  # not revoked: no notice
        assert 'id="revoked-notice"' not in spoof
        crl = x509.load_pem_x509_crl(crl_file.read_bytes())
        assert crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None
        assert crl.is_signature_valid(ca.key.public_key())
        downloaded = tech.get("/enrolment/crl.pem")
        assert downloaded.status_code == 200
        assert len(x509.load_pem_x509_crl(downloaded.content)) == 1
        states = {r["station"]: r["state"] for r in tech.get("/api/enrolments").json()}
        assert states == {"st-web-1": "revoked", "st-web-2": "active"}
        assert ("boss", "revoke", True) in [a[:3] for a in audit_of(console)]
        unknown = tech.post("/verify", data={"token": qr_token(signer), "csrf_token": tech_csrf})
        assert "未知密钥" in unknown.text  # a revoked terminal's tokens are not trusted
        api = boss.post(
            f"/api/enrolments/{SITE}/st-nope/revoke",
            json={"reason": "x"},
            headers={"X-CSRF-Token": csrf},
        )
        assert api.status_code == 404

        # a console without the fleet CA says so instead of enrolling
        console.ingest.ca = None
        no_ca = boss.post("/enrolment", data={**form, "station": "st-web-3", "csrf_token": csrf})
        assert no_ca.status_code == 400 and "--fleet-ca" in no_ca.text
    finally:
        console.stop()


def test_expiry_is_reported_in_utc(tmp_path: Path) -> None:
    """The API's date is ISO 8601 with its offset (UTC, the certificate's own); pages and the
    CLI show it in the console's zone (fleet.console.zone)."""
    from fleet.console.enroll import view

    row = Enrolment(
        site=SITE,
        station="st-z",
        serial="ab",
        not_after=dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC).timestamp(),
        enrolled_at=0.0,
        enrolled_by="x",
    )
    shown = view(row, now=dt.datetime(2029, 12, 31, tzinfo=dt.UTC).timestamp())
    assert shown["not_after"] == "2030-01-02T03:04:05+00:00"
    assert shown["expiring"] and shown["state"] == "active"
