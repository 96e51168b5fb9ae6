"""Printing exactly once: every job has an idempotency key in the journal.

Before a job is submitted it is recorded (``submitted``); its fate is recorded when known
(``completed``, ``failed``, ``unknown``). A key seen before is never submitted again, so a
crash or a restart cannot print twice. On start-up, :func:`recover` settles the jobs a crash
left open: an A4 job is looked up in CUPS by its key (the job name) and followed to its end; a
job CUPS never received failed; a slip whose fate cannot be known is reported as unknown; a
queue number reserved for a ticket is settled by its job (issued, void, or free again). Every
failure and unknown fate reaches the centre as an alert through the journal's outbox.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from pathlib import Path

from flows import documents
from flows.catalog import Catalog
from flows.models import Align, JobState, PrintOutcome, Receipt, ReceiptLine, Record
from flows.ports import A4Printer, ThermalPrinter
from statedir.journal import Journal

log = logging.getLogger("kiosk.shell.printing")


def print_once(
    journal: Journal,
    *,
    key: str,
    txn_id: str,
    printer: str,
    submit: Callable[[], PrintOutcome],
) -> PrintOutcome:
    """Record the job under ``key``, submit it, record its fate; a key seen before is refused."""
    if not journal.begin_print(key, txn_id=txn_id, printer=printer):
        log.warning("print job %s was submitted before; not printing it twice", key)
        return PrintOutcome(JobState.FAILED, "", ("duplicate",), "error.print_failed")
    outcome = submit()
    _record(journal, key, outcome)
    return outcome


def print_a4_once(
    journal: Journal,
    printer: A4Printer,
    *,
    key: str,
    txn_id: str,
    pdf: bytes,
    title: str,
    deadline_s: float,
) -> PrintOutcome:
    return print_once(
        journal,
        key=key,
        txn_id=txn_id,
        printer="a4",
        submit=lambda: printer.print_pdf(pdf, title=title, job_key=key, deadline_s=deadline_s),
    )


def print_slip_once(
    journal: Journal,
    printer: ThermalPrinter,
    *,
    key: str,
    txn_id: str,
    receipt: Receipt,
    deadline_s: float,
) -> PrintOutcome:
    return print_once(
        journal,
        key=key,
        txn_id=txn_id,
        printer="thermal",
        submit=lambda: printer.print_receipt(receipt, deadline_s=deadline_s),
    )


def _record(journal: Journal, key: str, outcome: PrintOutcome) -> None:
    state = "completed" if outcome.ok else "failed"
    journal.end_print(key, state=state, job_id=outcome.job_id, reason=",".join(outcome.reasons))


def recover(
    journal: Journal,
    a4: A4Printer,
    *,
    deadline_s: float = 120.0,
    open_txns: list[str] | None = None,
) -> list[str]:
    """Settle the jobs a crash left ``submitted``, then close the transactions it left open.

    ``open_txns`` are the transactions open at start-up (taken before any new session began):
    each is closed as what its paper says — completed if a job of it printed, failed if one
    failed, else abandoned (state ``interrupted``) — so the centre hears of every certificate
    that was issued. Returns a line per job and transaction for the log.
    """
    lines = []
    for job in journal.print_jobs("submitted"):
        key = job["key"]
        if job["printer"] == "a4":
            outcome = a4.follow(key, deadline_s=deadline_s)
            if outcome is None:
                journal.end_print(key, state="failed", reason="never_received")
                lines.append(f"{key}: CUPS never received it; not printed")
                continue
            _record(journal, key, outcome)
            lines.append(f"{key}: {outcome.job_state.value} after the restart")
        else:
            journal.end_print(key, state="unknown", reason="interrupted")
            lines.append(f"{key}: slip interrupted; its fate is unknown")
    lines += journal.settle_numbers()  # queue numbers by the fate of their tickets' jobs
    jobs = journal.print_jobs()
    for txn in open_txns or ():
        mine = [j for j in jobs if j["txn_id"] == txn]
        printed = [j["printer"] for j in mine if j["state"] == "completed"]
        if printed:
            journal.finish_transaction(txn, outcome="completed", outputs=printed)
        elif any(j["state"] == "failed" for j in mine):
            journal.finish_transaction(txn, outcome="failed", reason="interrupted")
        else:
            journal.finish_transaction(
                txn, outcome="abandoned", abandoned_state="interrupted", reason="restart"
            )
        lines.append(f"transaction {txn[:8]}: closed after the restart")
    for line in lines:
        log.warning("print recovery: %s", line)
    return lines


def render_page(pdf: bytes, *, scale: float = 1.4) -> bytes:
    """The first page of a PDF as PNG bytes: the preview shows exactly what prints."""
    return render_pages(pdf, scale=scale, limit=1)[0]


def render_pages(pdf: bytes, *, scale: float = 2.0, limit: int = 0) -> tuple[bytes, ...]:
    """Every page of a PDF (the first ``limit`` if given) as PNG bytes.

    The preview's picture zooms to a page's full width on the screen (about 2× its size on
    paper on a 21.5″ screen), so pages are rendered at 2× (1190 × 1684 px for A4)."""
    import io

    import pypdfium2

    doc = pypdfium2.PdfDocument(pdf)
    try:
        out = []
        for index in range(len(doc) if limit <= 0 else min(limit, len(doc))):
            image = doc[index].render(scale=scale).to_pil()
            buf = io.BytesIO()
            image.save(buf, format="PNG")
            out.append(buf.getvalue())
        return tuple(out)
    finally:
        doc.close()


# --- test prints: one path for the maintenance screen, the console's test_print and the CLI --


def sample_page(label: str, now: dt.datetime, catalog: Catalog, font: Path) -> documents.Document:
    """A one-page A4 test document in both languages, built like a real certificate."""
    record = Record(
        "test_page",
        "打印测试页",
        "Printer test page",
        (
            ("队列 Queue", label),
            ("时间 Time", f"{now:%Y-%m-%d %H:%M:%S}"),
            ("中文 Chinese", "政务服务 24 小时自助终端"),
            ("English", "Self-service terminal"),
        ),
    )
    return documents.record_certificates(
        [record], catalog=catalog, txn_id=f"test-{now:%H%M%S}", issued=now, font=font
    )


def sample_receipt(now: dt.datetime) -> Receipt:
    """A test slip with both scripts and a QR code."""
    return Receipt(
        lines=(
            ReceiptLine("打印测试 Test receipt", Align.CENTER, double=True),
            ReceiptLine(f"{now:%Y-%m-%d %H:%M:%S}", Align.CENTER),
            ReceiptLine("中文：政务服务，便民利民。"),
            ReceiptLine("English: self-service terminal."),
        ),
        qr=f"KIOSK-TEST:{now:%Y%m%d%H%M%S}",
    )


def print_test_page(
    printer: A4Printer,
    now: dt.datetime,
    catalog: Catalog,
    font: Path,
    *,
    job_key: str | None = None,
    title: str = "test page",
    deadline_s: float = 60.0,
) -> PrintOutcome:
    """Print the A4 test page (:func:`sample_page`) and follow it to its end."""
    doc = sample_page("A4", now, catalog, font)
    return printer.print_pdf(
        doc.pdf, title=title, job_key=job_key or doc.doc_id, deadline_s=deadline_s
    )


def print_test_slip(
    printer: ThermalPrinter, now: dt.datetime, *, deadline_s: float = 20.0
) -> PrintOutcome:
    """Print the test slip (:func:`sample_receipt`)."""
    return printer.print_receipt(sample_receipt(now), deadline_s=deadline_s)
