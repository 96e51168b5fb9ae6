"""The public verification page end to end: a certificate printed through a real, private cupsd,
its QR code read from the printed PDF's image (pdftoppm, zxing-cpp), the URL opened in a real
headless Chromium against ``fleet console`` (its own process) with no login.

The page says "valid" with the station, agency and time; a token with one character changed says
"not valid"; the page never shows the resident's name or ID number (the fleet tests' payload scan,
which finds both on the paper itself); an operator withdraws a document on the console's verify
page and its public page turns to "withdrawn"; after the station's key is revoked, a document
signed later says "issuing station's key revoked on D". Screenshots on a phone-sized viewport
(390x844) in both languages go to ``test-artifacts/verify/``.
"""

from __future__ import annotations

import datetime as dt
import http.client
import os
import subprocess
import sys
import time
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import zxingcpp
from PIL import Image
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from drivers.cups.printer import CupsPrinter
from drivers.providers.demo import DemoProvider, generate_dataset
from fleet.console import enroll
from fleet.console.store import AuditEntry, Store
from fleet.trust.pki import CertificateAuthority
from flows.catalog import Catalog, load_catalog
from flows.documents import record_certificates, record_digest
from flows.models import JobState
from flows.synthetic import DEMO_RESIDENT
from flows.tokens import Signer, TokenClaims, public_pem, verify_url
from sandbox.cups import CupsSandbox
from sandbox.mosquitto import MosquittoBroker
from tests.fleet.console.test_console_browser import chromium, console_process, log_in
from tests.payload_scan import find_personal

REPO = Path(__file__).resolve().parents[3]
ARTIFACTS = REPO / "test-artifacts" / "verify"
FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
VERIFY_BASE = "https://verify.example.gov.cn"
SITE, STATION = "zibo-gx", "st-0101"
ZONE = zoneinfo.ZoneInfo("Asia/Shanghai")
PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True}

pytestmark = pytest.mark.slow


def deployment_catalog() -> Catalog:
    """The demo catalog as a deployment with a verification site signs it."""
    catalog = load_catalog(REPO / "assets" / "catalog" / "demo.toml")
    station = catalog.station.model_copy(update={"verify_url": VERIFY_BASE})
    return catalog.model_copy(update={"station": station})


@dataclass
class Rig:
    url: str
    db_url: str
    signer: Signer
    ca: CertificateAuthority


@pytest.fixture(scope="module")
def cups(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CupsSandbox]:
    box = CupsSandbox(tmp_path_factory.mktemp("cups"))
    box.start()
    yield box
    box.stop()


@pytest.fixture
def rig(tmp_path: Path, broker: MosquittoBroker) -> Iterator[Rig]:
    """``fleet console`` in its own process (SQLite) with user ``oper`` (operator), and the
    station enrolled with its document-signing key, as ``fleet enroll add --doc-key`` does."""
    db_url = f"sqlite:///{tmp_path / 'console.sqlite3'}"
    signer = Signer.load_or_create(tmp_path / "document-signing.key")
    ca = CertificateAuthority.create("test fleet CA")
    with console_process(
        tmp_path, broker, db_url, {"oper": "operator"}, "--timezone", "Asia/Shanghai"
    ) as url:
        store = Store(db_url)
        try:
            with store.session() as db:
                pem = public_pem(signer.public)
                enroll.enrol(db, ca, SITE, STATION, "test", doc_key_pem=pem)
        finally:
            store.close()
        yield Rig(url, db_url, signer, ca)


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    with chromium() as driver:
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", PHONE)
        yield driver


def local_page(rig: Rig, url: str) -> str:
    """The console's address for a printed verification URL: the deployment's host is this
    test's console (the path, which holds the token, is what matters)."""
    parts = urlsplit(url)
    assert parts.scheme == "https" and f"{parts.scheme}://{parts.netloc}" == VERIFY_BASE
    return rig.url + parts.path


def text(browser: WebDriver, element_id: str) -> str:
    return " ".join(browser.find_element(By.ID, element_id).text.split())


def open_page(browser: WebDriver, url: str) -> str:
    browser.get(url)
    WebDriverWait(browser, 20).until(lambda d: d.find_elements(By.ID, "verdict"))
    return str(browser.find_element(By.ID, "verdict").get_attribute("data-status"))


def shot(browser: WebDriver, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    fits = browser.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth"
    )
    assert fits, f"{name}: the page is wider than a phone's screen"
    path = ARTIFACTS / f"{name}.png"
    browser.save_screenshot(str(path))
    with Image.open(path) as image:
        assert image.size[0] == PHONE["width"] * PHONE["deviceScaleFactor"]


def test_a_printed_certificate_verifies_on_its_public_page(
    rig: Rig, cups: CupsSandbox, browser: WebDriver, tmp_path: Path
) -> None:
    provider = DemoProvider(generate_dataset(tmp_path / "records.sqlite3"))
    record = provider.fetch("social_insurance_certificate", DEMO_RESIDENT, deadline_s=5)
    issued = dt.datetime.now(ZONE).replace(second=0, microsecond=0)
    doc = record_certificates(
        [record],
        catalog=deployment_catalog(),
        txn_id="t-verify-1",
        issued=issued,
        font=FONT,
        signer=rig.signer,
    )
    printer = CupsPrinter(cups.queue, server=cups.server)
    outcome = printer.print_pdf(doc.pdf, title="cert", job_key="V-1", deadline_s=30)
    assert outcome.job_state is JobState.COMPLETED
    printed = cups.printed_files()[-1]
    paper = subprocess.run(
        ["pdftotext", str(printed), "-"], capture_output=True, text=True, check=True
    ).stdout
    # under the QR code: the document number and what the signature covers
    assert f"编号 No. {doc.doc_id}" in paper and "签名覆盖" in paper and "Signed:" in paper
    assert record_digest(record)[:8] in paper
    assert find_personal([("paper", paper.encode())]), "the scan finds the name on the paper"
    subprocess.run(["pdftoppm", "-png", "-r", "150", str(printed), str(tmp_path / "p")], check=True)
    [code] = zxingcpp.read_barcodes(
        Image.open(sorted(tmp_path.glob("p*.png"))[0]), formats=zxingcpp.BarcodeFormat.QRCode
    )
    url = str(code.text)
    assert url.startswith(f"{VERIFY_BASE}/v/KD1.")

    assert open_page(browser, local_page(rig, url)) == "valid"
    assert "有效" in text(browser, "verdict")
    assert text(browser, "station") == f"{SITE}/{STATION}"
    assert text(browser, "issued").startswith(f"{issued:%Y-%m-%d %H:%M}")
    assert text(browser, "doc-id") == doc.doc_id
    assert text(browser, "doc-type") == record.title_zh
    assert text(browser, "issuer") == record.issuer_zh
    assert text(browser, "content-hash") == record_digest(record)
    meaning = text(browser, "meaning")
    assert f"{SITE}/{STATION}" in meaning and f"{issued:%Y-%m-%d %H:%M}" in meaning
    assert "没有被改动" in meaning
    assert find_personal([("verify page", browser.page_source.encode())]) == []
    shot(browser, "valid-zh")
    browser.find_element(By.ID, "lang-en").click()
    WebDriverWait(browser, 20).until(
        lambda d: d.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    )
    assert text(browser, "verdict").endswith("Valid")
    assert "has not been altered" in text(browser, "meaning")
    assert find_personal([("verify page", browser.page_source.encode())]) == []
    shot(browser, "valid-en")

    # one character of the signed payload changed: not valid, and nothing of the claims shown
    token = urlsplit(url).path.rsplit("/", 1)[1]
    prefix, payload, rest = token.split(".", 2)
    swapped = payload[:10] + ("A" if payload[10] != "A" else "B") + payload[11:]
    assert open_page(browser, f"{rig.url}/v/{prefix}.{swapped}.{rest}") == "not_valid"
    assert text(browser, "verdict").endswith("Not valid")
    assert not browser.find_elements(By.ID, "facts")
    shot(browser, "not-valid-en")
    browser.find_element(By.ID, "lang-zh").click()
    WebDriverWait(browser, 20).until(
        lambda d: d.find_element(By.TAG_NAME, "html").get_attribute("lang") == "zh-CN"
    )
    assert "无效" in text(browser, "verdict")
    shot(browser, "not-valid-zh")

    # the URL verifies offline too, as the bare token does
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    offline = subprocess.run(
        [sys.executable, "-m", "fleet.cli", "verify", url, "--key", str(key_file(rig, tmp_path))],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert offline.returncode == 0 and offline.stdout.startswith("valid:"), offline


def key_file(rig: Rig, tmp_path: Path) -> Path:
    path = tmp_path / "station.pub"
    path.write_bytes(public_pem(rig.signer.public))
    return path


def signed(rig: Rig, doc_id: str, issued: float) -> str:
    claims = TokenClaims(
        "residence_certificate", doc_id, int(issued), "ab" * 16, "户籍证明", "某某派出所"
    )
    return verify_url(VERIFY_BASE, rig.signer.sign(claims))


def test_withdrawn_and_revoked_documents_say_so(rig: Rig, browser: WebDriver) -> None:
    now = time.time()
    first = signed(rig, "RE00000000000001", now - 3600)
    assert open_page(browser, local_page(rig, first)) == "valid"

    # an operator withdraws it on the console's verify page
    browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    wait = WebDriverWait(browser, 20, poll_frequency=0.1)
    log_in(browser, rig.url, "oper", wait)
    browser.get(rig.url + "/verify")
    browser.find_element(By.ID, "withdraw-doc-id").send_keys("RE00000000000001")
    browser.find_element(By.ID, "withdraw-reason").send_keys("issued against the wrong record")
    browser.find_element(By.ID, "withdraw-submit").click()
    wait.until(lambda d: "RE00000000000001" in d.find_element(By.ID, "withdrawn").text)
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", PHONE)
    assert open_page(browser, local_page(rig, first)) == "withdrawn"
    assert "已撤回" in text(browser, "verdict")
    today = dt.datetime.now(ZONE).strftime("%Y-%m-%d")
    assert today in text(browser, "meaning")
    shot(browser, "withdrawn-zh")
    store = Store(rig.db_url)
    try:
        with store.session() as db:
            entries = db.query(AuditEntry).filter(AuditEntry.action == "withdraw_document").all()
            assert [(e.actor, e.target) for e in entries] == [("oper", "document/RE00000000000001")]
            assert entries[0].detail["reason"] == "issued against the wrong record"
            # the station's key is revoked now: what it signs from now on is not valid
            enroll.revoke(db, SITE, STATION, "test", "terminal stolen", now=now - 60)
    finally:
        store.close()
    before = signed(rig, "RE00000000000002", now - 1800)
    after = signed(rig, "RE00000000000003", now)
    assert open_page(browser, local_page(rig, after)) == "key_revoked"
    assert text(browser, "verdict").endswith(f"密钥已于 {today} 吊销")
    shot(browser, "key-revoked-zh")
    assert open_page(browser, local_page(rig, before)) == "valid"
    assert today in text(browser, "revoked-since")


def test_the_public_page_is_rate_limited(rig: Rig) -> None:
    page = urlsplit(local_page(rig, signed(rig, "RE00000000000009", time.time())))
    statuses = []
    for _ in range(32):
        connection = http.client.HTTPConnection(page.netloc, timeout=10)
        try:
            connection.request("GET", page.path)
            answer = connection.getresponse()
            answer.read()
            statuses.append(answer.status)
            if answer.status == 429:
                assert int(answer.headers["Retry-After"]) >= 1
        finally:
            connection.close()
    assert statuses[:30] == [200] * 30 and statuses[30:] == [429, 429]
