"""Documents and printing figures, through a real private cupsd and the ESC/POS simulator.

- ``documents.certificate_ms``: build a certificate (record → PDF with the CJK font, signed QR)
  and print it through CUPS until the job completes; median ms. Goal < 300.
- ``documents.certificate_to_baseline``: the same over a one-line reportlab page built and
  printed the same way in the same run.
- ``documents.receipt_ms``: compose a receipt and print it with status checks before and after;
  median ms. Goal < 30.
- ``documents.receipt_to_baseline``: the same over writing the same bytes raw to the same socket.
"""

from __future__ import annotations

import datetime as dt
import io
import socket
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from reportlab.pdfgen.canvas import Canvas

from drivers.cups.printer import CupsPrinter
from drivers.escpos.printer import EscposPrinter, render_receipt
from drivers.escpos.simulator import EscposSimulator
from drivers.providers.demo import build_records, record_from_json
from flows.catalog import load_catalog
from flows.documents import record_certificates
from flows.session import selections
from flows.slips import Say
from flows.slips import receipt as slip_receipt
from flows.synthetic import DEMO_RESIDENT
from flows.tokens import Signer
from kiosk.i18n import Translator
from sandbox.cups import CupsSandbox

ROOT = Path(__file__).resolve().parents[1]
FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")


def median_ms(fn: Callable[[int], None], rounds: int) -> float:
    samples = []
    for i in range(rounds):
        t0 = time.perf_counter()
        fn(i)
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


def one_line_pdf() -> bytes:
    buf = io.BytesIO()
    c = Canvas(buf)
    c.drawString(72, 700, "baseline")
    c.showPage()
    c.save()
    return buf.getvalue()


def run(rounds: int = 10) -> dict[str, float]:
    catalog = load_catalog(ROOT / "assets" / "catalog" / "demo.toml")
    day = dt.datetime(2026, 11, 23, 9, 0)
    body = build_records(DEMO_RESIDENT, day.date())["social_insurance_certificate"]
    record = record_from_json("social_insurance_certificate", body, DEMO_RESIDENT)
    with tempfile.TemporaryDirectory() as tmp:
        signer = Signer.load_or_create(Path(tmp) / "k")
        cups = CupsSandbox(Path(tmp) / "cups")
        cups.start()
        slip = EscposSimulator()
        slip.start()
        try:
            printer = CupsPrinter(cups.queue, server=cups.server, poll_s=0.02)

            def certificate(i: int) -> None:
                doc = record_certificates(
                    [record], catalog=catalog, txn_id=f"b{i}", issued=day, font=FONT, signer=signer
                )
                assert printer.print_pdf(
                    doc.pdf, title=doc.doc_id, job_key=f"c{i}", deadline_s=30
                ).ok

            def baseline(i: int) -> None:
                assert printer.print_pdf(
                    one_line_pdf(), title="b", job_key=f"b{i}", deadline_s=30
                ).ok

            certificate(-1)  # warm: font registered, CUPS and filters started once
            cert_ms = median_ms(certificate, rounds)
            base_ms = median_ms(baseline, rounds)

            thermal = EscposPrinter(slip.url)
            [one] = [s for s in selections(catalog) if s.code == "social_insurance_certificate"]
            receipt = slip_receipt(
                catalog=catalog,
                selection=one,
                tickets={},
                identity=DEMO_RESIDENT,
                doc_id="SO1",
                issued=day,
                say=Say("zh", Translator()),
            )
            raw = render_receipt(receipt)

            def receipt_job(_i: int) -> None:
                assert thermal.print_receipt(receipt, deadline_s=5).ok

            def raw_bytes(_i: int) -> None:
                with socket.create_connection((slip.host, slip.port), timeout=5) as conn:
                    conn.sendall(raw)

            receipt_job(-1)
            rec_ms = median_ms(receipt_job, rounds * 3)
            raw_ms = median_ms(raw_bytes, rounds * 3)
        finally:
            slip.stop()
            cups.stop()
    return {
        "documents.certificate_ms": round(cert_ms, 1),
        "documents.certificate_to_baseline": round(cert_ms / base_ms, 2),
        "documents.receipt_ms": round(rec_ms, 2),
        "documents.receipt_to_baseline": round(rec_ms / raw_ms, 2),
    }
