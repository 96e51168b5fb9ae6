"""Two runs of the simulated station in a row keep both runs' receipts and printed PDFs.

The devices are built as ``kiosk run`` builds them (:func:`kiosk.shell.devices.build_devices` on one
state directory), each run prints one receipt and one A4 page through the real drivers (ESC/POS
over TCP, CUPS through the private cupsd), and the run is closed as the app closes it.
"""

from __future__ import annotations

import io
from pathlib import Path

from reportlab.pdfgen import canvas

from flows.models import Align, Receipt, ReceiptLine
from kiosk.config import parse_config
from kiosk.shell.devices import build_devices


def page(text: str) -> bytes:
    buf = io.BytesIO()
    pdf = canvas.Canvas(buf)
    pdf.drawString(72, 720, text)
    pdf.save()
    return buf.getvalue()


def one_run(state: Path, run: int) -> None:
    config = parse_config(
        {"state": {"dir": str(state)}, "devices": {"speech": "off"}}, source="test"
    )
    devices, _ = build_devices(config, state)
    try:
        receipt = Receipt(lines=(ReceiptLine(f"run {run}", Align.CENTER),))
        assert devices.thermal_printer.print_receipt(receipt, deadline_s=10).ok
        outcome = devices.a4_printer.print_pdf(
            page(f"run {run}"), title=f"run {run}", job_key=f"RUN-{run}", deadline_s=30
        )
        assert outcome.ok, outcome
    finally:
        for close in reversed(devices.closers):
            close()


def test_two_runs_leave_both_runs_receipts_and_pdfs(tmp_path: Path) -> None:
    state = tmp_path / "state"
    one_run(state, 1)
    one_run(state, 2)
    receipts = sorted((state / "receipts").glob("receipt-*.txt"))
    assert [p.name for p in receipts] == ["receipt-0001.txt", "receipt-0002.txt"]
    assert "run 1" in receipts[0].read_text() and "run 2" in receipts[1].read_text()
    assert len(list((state / "receipts").glob("receipt-*.png"))) == 2
    pdfs = sorted((state / "cups" / "printed").glob("job-*.pdf"))
    assert [p.name for p in pdfs] == ["job-0001.pdf", "job-0002.pdf"]
    assert pdfs[0].read_bytes() != pdfs[1].read_bytes()
    assert all(p.read_bytes().startswith(b"%PDF") for p in pdfs)
