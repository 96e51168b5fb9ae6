"""Verification tokens: the certificate's QR code decodes to a token that verifies offline."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image

from flows.catalog import load_catalog
from flows.documents import record_certificates, record_digest
from flows.models import Record
from flows.tokens import Signer, Verdict, key_id, verify

ROOT = Path(__file__).resolve().parents[2]
CATALOG = load_catalog(ROOT / "assets" / "catalog" / "demo.toml")
FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
RECORD = Record(
    "retirement_status",
    "养老金领取资格认证状态",
    "Pension Entitlement Check",
    (("姓名 Name", "王小明"), ("领取状态 Status", "正常领取")),
)

QR = zxingcpp.BarcodeFormat.QRCode  # a page's text once read as a linear barcode too


def qr_of_pdf(pdf: bytes, tmp: Path) -> str:
    (tmp / "c.pdf").write_bytes(pdf)
    subprocess.run(
        [
            "pdftoppm",
            "-png",
            "-r",
            "150",
            "-f",
            "1",
            "-l",
            "1",
            str(tmp / "c.pdf"),
            str(tmp / "page"),
        ],
        check=True,
    )
    [page] = sorted(tmp.glob("page*.png"))
    [code] = zxingcpp.read_barcodes(Image.open(page), formats=QR)
    return str(code.text)


def test_the_printed_qr_code_verifies_and_one_changed_byte_does_not(tmp_path: Path) -> None:
    signer = Signer.load_or_create(tmp_path / "station.key")
    doc = record_certificates(
        [RECORD],
        catalog=CATALOG,
        txn_id="t-9",
        issued=dt.datetime(2026, 11, 23, 2, 15),
        font=FONT,
        signer=signer,
    )
    token = qr_of_pdf(doc.pdf, tmp_path)
    keys = {signer.key_id: signer.public}
    verdict, claims = verify(token, keys)
    assert verdict is Verdict.VALID and claims is not None
    assert (claims.doc_type, claims.doc_id) == ("retirement_status", doc.doc_id)
    assert claims.content_hash == record_digest(RECORD)
    for i in range(4, len(token)):
        if token[i] == ".":
            continue
        altered = token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1 :]
        assert verify(altered, keys)[0] is not Verdict.VALID, i
    # the signature's last character carries 4 unused bits: flipping one leaves the decoded
    # bytes as they were, and that other printed form must not verify either
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    prefix, payload_b64, signature_b64, kid = token.split(".")
    last = alphabet[alphabet.index(signature_b64[-1]) ^ 1]
    same_bytes = ".".join((prefix, payload_b64, signature_b64[:-1] + last, kid))
    assert verify(same_bytes, keys)[0] is Verdict.FORGED
    other = Signer.load_or_create(tmp_path / "other.key")
    assert verify(token, {other.key_id: other.public})[0] is Verdict.UNKNOWN_KEY
    assert verify("KIOSK-DOC:123", keys)[0] is Verdict.FORGED


def test_the_station_key_is_kept_and_private(tmp_path: Path) -> None:
    path = tmp_path / "document-signing.key"
    first = Signer.load_or_create(path)
    again = Signer.load_or_create(path)
    assert first.key_id == again.key_id == key_id(again.public)
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.with_suffix(".pub").read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")


def test_fleet_verify_says_valid_forged_or_unknown_key(tmp_path: Path) -> None:
    signer = Signer.load_or_create(tmp_path / "s.key")
    from flows.tokens import TokenClaims

    token = signer.sign(TokenClaims("residence_certificate", "RE1234", 1795400000, "ab" * 16))

    def fleet(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "fleet.cli", "verify", *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    ok = fleet(token, "--key", str(tmp_path / "s.pub"))
    assert ok.returncode == 0 and ok.stdout.startswith("valid: residence_certificate RE1234")
    changed = "x" if token[-20] != "x" else "y"  # always a change (the key is random)
    forged = fleet(token[:-20] + changed + token[-19:], "--keys", str(tmp_path))
    assert forged.returncode in (1, 2) and forged.stdout.strip() in ("forged", "unknown key")
    tampered = token.split(".")
    tampered[1] = tampered[1][:-2] + ("AA" if tampered[1][-2:] != "AA" else "BB")
    bad = fleet(".".join(tampered), "--keys", str(tmp_path))
    assert (bad.returncode, bad.stdout.strip()) == (1, "forged")
    unknown = fleet(token)
    assert (unknown.returncode, unknown.stdout.strip()) == (2, "unknown key")


def test_a_verification_url_carries_the_token_and_verifies_offline_like_it(tmp_path: Path) -> None:
    from flows.tokens import TokenClaims, token_of, valid_base_url, verify_url

    signer = Signer.load_or_create(tmp_path / "s.key")
    claims = TokenClaims(
        "residence_certificate", "RE1", 1795400000, "cd" * 16, "户籍证明", "派出所"
    )
    token = signer.sign(claims)
    url = verify_url("https://verify.example.gov.cn", token)
    assert url == f"https://verify.example.gov.cn/v/{token}" and token_of(url) == token
    assert verify(url, {signer.key_id: signer.public}) == (Verdict.VALID, claims)
    assert token_of(" " + token + "\n") == token
    assert token_of("https://verify.example.gov.cn/x/" + token) == ""  # not the page's path
    assert verify("https://verify.example.gov.cn/", {signer.key_id: signer.public})[0] is (
        Verdict.FORGED
    )
    for base in ("http://verify.example.gov.cn", "https://verify.example.gov.cn/", "https://a b"):
        assert not valid_base_url(base)
        with pytest.raises(ValueError):
            verify_url(base, token)
    assert valid_base_url("https://verify.example.gov.cn:8443/kiosk")
