"""Documents: the certificate PDF has extractable Chinese text and renders to a non-blank page."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
from pathlib import Path

from PIL import Image

from flows.catalog import load_catalog
from flows.documents import record_certificates
from flows.models import CardType, Identity, Record, RecordTable

ROOT = Path(__file__).resolve().parents[2]
CATALOG = load_catalog(ROOT / "assets" / "catalog" / "demo.toml")
FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
PERSON = Identity(CardType.RESIDENT, name="王小明", id_number="11010519491231002X")
ISSUED = dt.datetime(2026, 11, 23, 2, 15)


RECORD = Record(
    service="social_insurance_certificate",
    title_zh="社会保险参保证明",
    title_en="Social Insurance Participation Certificate",
    fields=(("姓名 Name", PERSON.name), ("公民身份号码 ID number", PERSON.id_number)),
    table=RecordTable("缴费明细", ("年月 Month", "个人缴费 Personal"), (("2026-10", "447.68"),)),
)


def test_certificate_text_extracts_and_page_renders(tmp_path: Path) -> None:
    doc = record_certificates([RECORD], catalog=CATALOG, txn_id="t-1", issued=ISSUED, font=FONT)
    pdf = tmp_path / "c.pdf"
    pdf.write_bytes(doc.pdf)
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    for expected in ("社会保险参保证明", "王小明", "11010519491231002X", doc.doc_id, "2026-10"):
        assert expected in text
    subprocess.run(["pdftoppm", "-png", "-r", "40", str(pdf), str(tmp_path / "p")], check=True)
    [page] = sorted(tmp_path.glob("p*.png"))
    image = Image.open(page).convert("L")
    low, high = image.getextrema()
    assert high - low > 200  # black text on white paper, not a blank page


def test_a_bundle_prints_one_page_per_record(tmp_path: Path) -> None:
    other = Record(
        "retirement_status",
        "养老金领取资格认证状态",
        "Pension Entitlement Check",
        (("领取状态 Status", "正常领取"),),
    )
    doc = record_certificates(
        [RECORD, other], catalog=CATALOG, txn_id="t-2", issued=ISSUED, font=FONT
    )
    assert doc.pages == 2
    pdf = tmp_path / "b.pdf"
    pdf.write_bytes(doc.pdf)
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True)
    assert re.search(r"^Pages:\s+2$", info.stdout, re.M), info.stdout
    text = subprocess.run(
        ["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert f"{doc.doc_id}-1" in text and f"{doc.doc_id}-2" in text


def test_the_preview_masks_the_resident_and_the_paper_does_not(tmp_path: Path) -> None:
    from flows.documents import masked_record

    shown = masked_record(RECORD, PERSON)
    doc = record_certificates([shown], catalog=CATALOG, txn_id="t-1", issued=ISSUED, font=FONT)
    pdf = tmp_path / "preview.pdf"
    pdf.write_bytes(doc.pdf)
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "王小明" not in text and "11010519491231002X" not in text
    assert PERSON.masked_id_number in text and PERSON.masked_name in text
    assert "447.68" in text  # the record itself is all there to check
    assert dict(RECORD.fields)["姓名 Name"] == "王小明"  # the original (what prints) is untouched
