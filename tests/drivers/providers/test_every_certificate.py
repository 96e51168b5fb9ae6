"""Every certificate of the demo catalog: extractable text, a page that renders, a QR code that
verifies (its records come from the demo provider, the documents from flows.documents)."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image

from drivers.providers.demo import DemoProvider, generate_dataset
from flows.catalog import Output, load_catalog
from flows.documents import record_certificates
from flows.synthetic import DEMO_RESIDENT
from flows.tokens import Signer, Verdict, verify

ROOT = Path(__file__).resolve().parents[3]
CATALOG = load_catalog(ROOT / "assets" / "catalog" / "demo.toml")
FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
A4_SERVICES = [s.code for s in CATALOG.enabled_services() if Output.A4 in s.outputs]

QR = zxingcpp.BarcodeFormat.QRCode  # a page's text once read as a linear barcode too


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> DemoProvider:
    return DemoProvider(generate_dataset(tmp_path_factory.mktemp("d") / "records.sqlite3"))


@pytest.mark.parametrize("code", A4_SERVICES)
def test_certificate(code: str, provider: DemoProvider, tmp_path: Path) -> None:
    record = provider.fetch(code, DEMO_RESIDENT, deadline_s=5)
    signer = Signer.load_or_create(tmp_path / "station.key")
    doc = record_certificates(
        [record],
        catalog=CATALOG,
        txn_id=f"t-{code}",
        issued=dt.datetime(2026, 11, 23, 9, 30),
        font=FONT,
        signer=signer,
    )
    pdf = tmp_path / "c.pdf"
    pdf.write_bytes(doc.pdf)
    text = subprocess.run(
        ["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    service = CATALOG.service(code)
    assert record.title_zh in text and DEMO_RESIDENT.name in text and doc.doc_id in text
    assert service.name.zh[:2] in text or record.title_zh[:2] in text
    # issued by the agency that holds the record, printed at the station
    assert f"出具单位 Issued by: {record.issuer_zh}" in text and record.issuer_zh
    assert f"打印地点 Printed at: {CATALOG.station.name.zh}" in text
    subprocess.run(["pdftoppm", "-png", "-r", "150", str(pdf), str(tmp_path / "p")], check=True)
    image = Image.open(sorted(tmp_path.glob("p*.png"))[0])
    low, high = image.convert("L").getextrema()
    assert high - low > 200
    [code_found] = zxingcpp.read_barcodes(image, formats=QR)
    verdict, claims = verify(str(code_found.text), {signer.key_id: signer.public})
    assert verdict is Verdict.VALID and claims is not None and claims.doc_type == code


def test_the_catalog_has_the_certificates_the_issue_names() -> None:
    assert {
        "social_insurance_certificate",
        "medical_insurance_record",
        "personal_tax_record",
        "residence_certificate",
        "business_licence_print",
    } <= set(A4_SERVICES)
