"""The Catalogs and Enrolment pages end to end in a real headless Chromium (Selenium + Debian's
chromedriver).

``fleet console`` runs as its own process (as in production) with a TUF catalog repository
(``--catalog-repo``; version 2 of the demo catalog is live, signed from the command line) and a
fleet CA (``--fleet-ca``, ``--crl``); its users are made by ``fleet user``. An operator uploads a
catalog with a mistake and sees it named by line, uploads a changed catalog and reads what it
changes against the live one; a technician may look at that draft but finds nothing to upload or
sign, and a sign request posted anyway is refused; the operator signs the draft and follows "Roll
out" to the Rollouts form filled in with the signed release. An admin enrols a station with its
document-signing key, receives the terminal's files as a zip download, sees the station listed with
its certificate's expiry, and revokes it. Screenshots go to ``test-artifacts/console/``. Runs on
SQLite and on PostgreSQL.
"""

from __future__ import annotations

import hashlib
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from fleet.console.zone import LocalTime
from fleet.trust.catalog_repo import CatalogRepository
from fleet.trust.pki import (
    CertificateAuthority,
    common_name,
    issued_by,
    parse_cert,
    parse_key,
    same_public_key,
)
from flows.tokens import Signer
from sandbox.mosquitto import MosquittoBroker
from tests.fleet.console.test_console_browser import chromium, console_process, log_in
from tests.fleet.console.test_console_catalogs import catalog

REPO = Path(__file__).resolve().parents[3]
ARTIFACTS = REPO / "test-artifacts" / "console"
REPO_URL = "http://repo.example/catalogs/"
SITE = "zibo-gx"
STATION = "st-0101"

pytestmark = pytest.mark.slow


@dataclass
class Rig:
    url: str
    repo_dir: Path
    ca: CertificateAuthority
    crl: Path
    downloads: Path
    db: str  # "sqlite" or "postgresql", for the screenshots' names


@pytest.fixture
def downloads(tmp_path: Path) -> Path:
    folder = tmp_path / "downloads"
    folder.mkdir()
    return folder


@pytest.fixture
def browser(downloads: Path) -> Iterator[WebDriver]:
    with chromium(downloads) as driver:
        yield driver


@pytest.fixture
def rig(tmp_path: Path, broker: MosquittoBroker, db_url: str, downloads: Path) -> Iterator[Rig]:
    """``fleet console`` in its own process with a catalog repository and a fleet CA; users
    ``tech``, ``oper`` and ``boss`` (admin) made by ``fleet user``."""
    repo = CatalogRepository.create(tmp_path / "repo", tmp_path / "offline-root-keys")
    repo.publish_catalog(catalog(2))
    ca = CertificateAuthority.create("test fleet CA")
    ca.save(tmp_path / "ca.crt", tmp_path / "ca.key")
    crl = tmp_path / "fleet.crl"
    users = {"tech": "technician", "oper": "operator", "boss": "admin"}
    options = ["--catalog-repo", str(repo.directory), "--catalog-url", REPO_URL]
    options += ["--fleet-ca", str(tmp_path / "ca.crt"), str(tmp_path / "ca.key"), "--crl", str(crl)]
    db = "postgresql" if db_url.startswith("postgresql") else "sqlite"
    with console_process(tmp_path, broker, db_url, users, *options) as url:
        yield Rig(url, repo.directory, ca, crl, downloads, db)


def log_out(browser: WebDriver, wait: WebDriverWait[WebDriver]) -> None:
    browser.find_element(By.CSS_SELECTOR, "form.logout button").click()
    wait.until(lambda d: "/login" in d.current_url)


def in_english(browser: WebDriver, wait: WebDriverWait[WebDriver]) -> None:
    """Switch to English with the header's toggle (the choice is kept by a cookie, on every
    page after it and after logging in again): the catalog checks explain in English."""
    browser.find_element(By.ID, "lang-en").click()
    wait.until(lambda d: d.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en")


def upload(browser: WebDriver, path: Path) -> None:
    browser.find_element(By.ID, "catalog-file").send_keys(str(path))
    browser.find_element(By.ID, "check").click()


def text(browser: WebDriver, css: str) -> str:
    return " ".join(browser.find_element(By.CSS_SELECTOR, css).text.split())


def classes(element: WebElement) -> set[str]:
    return set((element.get_attribute("class") or "").split())


def test_operator_checks_reviews_and_signs_a_catalog_then_opens_the_rollout(
    rig: Rig, browser: WebDriver, tmp_path: Path
) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    wait = WebDriverWait(browser, 20, poll_frequency=0.1)
    bad = catalog(3).decode().replace('help_phone = "0533-12345"', 'help_phone = "call us"')
    bad_line = next(n for n, line in enumerate(bad.splitlines(), 1) if "call us" in line)
    (tmp_path / "bad.toml").write_text(bad, "utf-8")
    good = catalog(3, changed=True)
    (tmp_path / "spring.toml").write_bytes(good)
    sha = hashlib.sha256(good).hexdigest()
    try:
        log_in(browser, rig.url, "oper", wait)
        in_english(browser, wait)
        browser.find_element(By.LINK_TEXT, "Catalogs").click()
        live = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "p.live-catalog"))
        assert [
            (p.get_attribute("data-target"), p.get_attribute("data-version")) for p in live
        ] == [("catalog.toml", "2")]
        assert "by the command line" in live[0].text
        assert text(browser, "section.drafts") == "Uploaded drafts No drafts yet."

        # a catalog with a mistake: named by its line, nothing kept
        upload(browser, tmp_path / "bad.toml")
        problems = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#problems li.problem"))
        assert [" ".join(p.text.split()) for p in problems] == [
            f"line {bad_line}: station › help_phone must be a phone number: "
            "3 to 20 digits, '+', '-' or spaces"
        ]
        assert problems[0].find_element(By.CSS_SELECTOR, "span.line").text == f"line {bad_line}"
        assert text(browser, "#problems p.error").startswith(
            "bad.toml cannot be used: 1 problem. Nothing was kept"
        )
        assert text(browser, "section.drafts").endswith("No drafts yet.")
        browser.save_screenshot(str(ARTIFACTS / f"catalogs-upload-{rig.db}.png"))

        # a valid, changed catalog: a draft, compared with the live version 2
        upload(browser, tmp_path / "spring.toml")
        wait.until(lambda d: re.search(r"/catalogs/drafts/\d+$", d.current_url))
        draft_url = browser.current_url
        rows = browser.find_elements(By.CSS_SELECTOR, "#item-changes tr.item")
        assert {r.get_attribute("data-code"): r.get_attribute("data-state") for r in rows} == {
            "library_card": "added",
            "residence_certificate": "changed",
        }
        assert text(browser, "#diff-summary") == "1 service added, 1 service changed."
        assert "Compared with the live catalog.toml, version 2." in text(browser, "#diff")
        field = 'tr.item[data-code="residence_certificate"] tr[data-field="description.en"]'
        assert text(browser, f"{field} td.before") == "Proof of your household registration."
        assert text(browser, f"{field} td.after") == (
            "Proof of your household registration, for any office."
        )
        browser.find_element(By.CSS_SELECTOR, "details.unified summary").click()
        assert "+version = 3" in browser.find_element(By.CSS_SELECTOR, "details.unified pre").text
        assert browser.find_element(By.ID, "sign").text == "Sign version 3"
        browser.save_screenshot(str(ARTIFACTS / f"catalogs-diff-{rig.db}.png"))

        # a technician may look at the draft but not upload or sign it
        log_out(browser, wait)
        log_in(browser, rig.url, "tech", wait)
        browser.get(rig.url + "/catalogs")
        assert browser.find_elements(By.ID, "upload-form") == []
        draft_row = browser.find_element(By.CSS_SELECTOR, "#drafts tr.draft")
        assert "spring.toml" in draft_row.text and "not yet" in draft_row.text
        assert draft_row.find_element(By.TAG_NAME, "a").text == "Review"
        browser.get(draft_url)
        assert browser.find_elements(By.CSS_SELECTOR, "#item-changes tr.item")
        assert browser.find_elements(By.ID, "sign-form") == []
        assert browser.find_elements(By.ID, "sign") == []
        browser.execute_script(  # post the sign form anyway, with the session's own CSRF token
            """const f = document.createElement('form');
            f.method = 'post'; f.action = arguments[0];
            const t = document.querySelector('form.logout input[name=csrf_token]').cloneNode();
            f.append(t); document.body.append(f); f.submit();""",
            draft_url + "/sign",
        )
        wait.until(lambda d: d.current_url.endswith("/sign"))
        refusal = "Not allowed: your role (technician) may not do this"
        assert text(browser, "main p.error") == refusal
        assert browser.find_element(By.ID, "who").text.startswith("tech")  # still logged in
        log_out(browser, wait)  # from the refusal page itself

        # the operator signs it and follows "Roll out" to the Rollouts form, filled in
        log_in(browser, rig.url, "oper", wait)
        browser.get(draft_url)
        browser.find_element(By.ID, "sign").click()
        signed = wait.until(lambda d: d.find_elements(By.ID, "signed"))[0]
        signed_text = r"Signed into the repository .+ by oper as version 3\."
        assert re.fullmatch(signed_text, signed.text)
        assert browser.find_elements(By.ID, "sign-form") == []
        assert "Compared with version 2, live before it." in text(browser, "#diff")
        link = browser.find_element(By.ID, "rollout-link")
        assert link.text == "Roll out version 3…"
        browser.save_screenshot(str(ARTIFACTS / f"catalogs-signed-{rig.db}.png"))
        signed_target = CatalogRepository(rig.repo_dir).targets.signed.targets["catalog.toml"]
        assert signed_target.hashes["sha256"] == sha  # what the page says is what is signed
        link.click()
        wait.until(lambda d: d.find_elements(By.ID, "rollout-form"))
        assert "/rollouts?" in browser.current_url
        filled = {
            name: browser.find_element(By.ID, name).get_attribute("value")
            for name in ("target", "version", "sha256", "length", "metadata_url", "targets_url")
        }
        assert filled == {
            "target": "catalog.toml",
            "version": "3",
            "sha256": sha,
            "length": str(len(good)),
            "metadata_url": REPO_URL + "metadata/",
            "targets_url": REPO_URL + "targets/",
        }
        browser.save_screenshot(str(ARTIFACTS / f"catalogs-rollout-{rig.db}.png"))

        # the Catalogs page now shows version 3 live, signed by oper, above version 2
        browser.find_element(By.LINK_TEXT, "Catalogs").click()
        live = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "p.live-catalog"))
        assert [p.get_attribute("data-version") for p in live] == ["3"]
        assert "by oper" in live[0].text
        versions = browser.find_elements(By.CSS_SELECTOR, "#versions tr.version")
        assert [(v.get_attribute("data-version"), "live" in classes(v)) for v in versions] == [
            ("3", True),
            ("2", False),
        ]
    except Exception:
        browser.save_screenshot(str(ARTIFACTS / f"catalogs-failure-{rig.db}.png"))
        raise


def test_admin_enrols_a_station_downloads_its_files_and_revokes_it(
    rig: Rig, browser: WebDriver, tmp_path: Path
) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    wait = WebDriverWait(browser, 20, poll_frequency=0.1)
    signer = Signer.load_or_create(tmp_path / "terminal" / "document-signing.key")
    doc_pub = (tmp_path / "terminal" / "document-signing.pub").read_text()
    bundle = rig.downloads / f"{SITE}-{STATION}.zip"
    try:
        log_in(browser, rig.url, "boss", wait)
        in_english(browser, wait)
        browser.find_element(By.LINK_TEXT, "Enrolment").click()
        wait.until(lambda d: d.find_elements(By.ID, "enrol-form"))
        assert text(browser, "#enrolments td.none") == "No terminal is enrolled yet."
        form = browser.find_element(By.ID, "enrol-form")
        form.find_element(By.NAME, "site").send_keys(SITE)
        form.find_element(By.NAME, "station").send_keys(STATION)
        days = form.find_element(By.NAME, "days")
        assert days.get_attribute("value") == "365"
        days.clear()
        days.send_keys("20")
        form.find_element(By.NAME, "doc_key_pub").send_keys(doc_pub)
        browser.find_element(By.ID, "enrol").click()

        # the answer is the download: the terminal's certificate and key, issued by the fleet CA
        WebDriverWait(browser, 20, poll_frequency=0.2).until(
            lambda _: bundle.is_file() and not list(rig.downloads.glob("*.crdownload"))
        )
        with zipfile.ZipFile(bundle) as archive:
            names = ("ca.crt", "kiosk-fleet.toml", "station.crt", "station.key")
            assert sorted(archive.namelist()) == [f"{STATION}/{n}" for n in names]
            cert = parse_cert(archive.read(f"{STATION}/station.crt"))
            key = parse_key(archive.read(f"{STATION}/station.key"))
            snippet = archive.read(f"{STATION}/kiosk-fleet.toml").decode()
        assert common_name(cert.subject) == STATION and issued_by(cert, rig.ca.cert)
        assert same_public_key(cert, key)
        assert f'id = "{STATION}"' in snippet and f'site = "{SITE}"' in snippet

        # listed with its certificate's expiry (within 30 days: marked) and its document key
        browser.get(rig.url + "/enrolment")
        row = browser.find_element(By.CSS_SELECTOR, f'tr.enrolment[data-station="{STATION}"]')
        assert classes(row) == {"enrolment", "active", "expiring"}
        expires = LocalTime().when(cert.not_valid_after_utc.timestamp())  # "… +08:00"
        cells = [" ".join(c.text.split()) for c in row.find_elements(By.XPATH, "./td")]
        assert cells[:2] == [SITE, f"{STATION} not connected yet"] and cells[3] == expires
        assert row.find_elements(By.TAG_NAME, "a") == []  # no station page before it connects
        browser.get(f"{rig.url}/stations/{SITE}/{STATION}")  # and one typed in says why
        assert "No such station (an enrolled terminal shows once" in text(browser, "main p.error")
        browser.get(rig.url + "/enrolment")
        row = browser.find_element(By.CSS_SELECTOR, f'tr.enrolment[data-station="{STATION}"]')
        assert re.fullmatch(r"(19\.9|20\.0) ⚠ within 30 days", cells[4]), cells[4]
        assert cells[5] == signer.key_id
        assert cells[6].endswith("by boss") and cells[7] == "active"
        browser.save_screenshot(str(ARTIFACTS / f"enrolment-{rig.db}.png"))

        # revoked with a reason: the page says so, the CRL the broker reads lists it
        row.find_element(By.NAME, "reason").send_keys("screen smashed, replaced")
        row.find_element(By.CSS_SELECTOR, "form.revoke button").click()
        notice = wait.until(lambda d: d.find_elements(By.ID, "revoked-notice"))[0]
        assert f"{STATION} revoked" in notice.text
        assert "systemctl reload mosquitto" in notice.text
        row = browser.find_element(By.CSS_SELECTOR, f'tr.enrolment[data-station="{STATION}"]')
        assert "revoked" in classes(row)
        state = text(browser, f'tr.enrolment[data-station="{STATION}"] td.state')
        assert re.fullmatch(r"revoked .+ by boss: screen smashed, replaced", state), state
        assert row.find_elements(By.CSS_SELECTOR, "form.revoke") == []
        crl = x509.load_pem_x509_crl(rig.crl.read_bytes())
        assert crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None
        browser.save_screenshot(str(ARTIFACTS / f"enrolment-revoked-{rig.db}.png"))
    except Exception:
        browser.save_screenshot(str(ARTIFACTS / f"enrolment-failure-{rig.db}.png"))
        raise
