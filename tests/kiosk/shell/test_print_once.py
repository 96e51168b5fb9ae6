"""Exactly once: a print job killed between submit and completion is settled after a restart,
and nothing prints twice (a real cupsd, its printer switched off and on)."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import cups as pycups
import pytest
from reportlab.pdfgen.canvas import Canvas

from drivers.cups.printer import CupsPrinter
from kiosk.shell import printing
from sandbox.cups import CupsSandbox
from statedir.journal import Journal

_PRINTING_PROCESS = """
import sys
from pathlib import Path
from drivers.cups.printer import CupsPrinter
from statedir.journal import Journal
from kiosk.shell import printing
journal = Journal(Path(sys.argv[1]))
journal.begin_transaction("social_insurance_certificate", lang="zh", elder=False, txn_id="t1")
printer = CupsPrinter(sys.argv[2], server=sys.argv[3])
print("submitting", flush=True)
printing.print_a4_once(journal, printer, key="DOC1:a4", txn_id="t1",
                       pdf=Path(sys.argv[4]).read_bytes(), title="DOC1", deadline_s=600)
"""


@pytest.fixture
def cups(tmp_path: Path) -> Iterator[CupsSandbox]:
    box = CupsSandbox(tmp_path / "cups")
    box.start()
    yield box
    box.stop()


def pdf_file(path: Path) -> Path:
    buf = io.BytesIO()
    c = Canvas(buf)
    c.drawString(72, 700, "exactly once")
    c.showPage()
    c.save()
    path.write_bytes(buf.getvalue())
    return path


def connect(cups: CupsSandbox) -> pycups.Connection:
    # pycups builds printer URIs from its global server, as the driver does
    pycups.setServer("127.0.0.1")
    pycups.setPort(cups.port)
    return pycups.Connection(host="127.0.0.1", port=cups.port)


def documented_jobs(cups: CupsSandbox) -> int:
    """Jobs whose document CUPS holds (not ``job-incoming``: created, document still on its way)."""
    conn = connect(cups)
    jobs = conn.getJobs(which_jobs="all", requested_attributes=["job-id"])
    count = 0
    for job_id in jobs:
        attrs = conn.getJobAttributes(job_id, requested_attributes=["job-state-reasons"])
        reasons = attrs.get("job-state-reasons", [])
        count += "job-incoming" not in ([reasons] if isinstance(reasons, str) else reasons)
    return count


@pytest.mark.slow
def test_kill_between_submit_and_completion_prints_once(tmp_path: Path, cups: CupsSandbox) -> None:
    journal_path = tmp_path / "journal.sqlite3"
    pdf = pdf_file(tmp_path / "doc.pdf")
    cups.printer.stop()  # the printer is off: the job waits in CUPS
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _PRINTING_PROCESS,
            str(journal_path),
            cups.queue,
            cups.server,
            str(pdf),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "submitting"
        deadline = time.monotonic() + 20
        while documented_jobs(cups) == 0:
            assert time.monotonic() < deadline, "the job never reached CUPS"
            time.sleep(0.1)
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # the kiosk dies mid-print
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()

    journal = Journal(journal_path)
    assert [j["state"] for j in journal.print_jobs()] == ["submitted"]
    cups.printer.restart()  # the printer comes back; the kiosk restarts and recovers
    printer = CupsPrinter(cups.queue, server=cups.server)
    assert journal.open_transactions() == ["t1"]  # the session died with the kiosk
    lines = printing.recover(journal, printer, deadline_s=60, open_txns=["t1"])
    assert lines == [
        "DOC1:a4: completed after the restart",
        "transaction t1: closed after the restart",
    ]
    assert [j["state"] for j in journal.print_jobs()] == ["completed"]
    # the certificate was issued, so the centre hears of a completed transaction
    [txn] = [e.payload for e in journal.pending_events() if e.type == "transaction"]
    assert (txn["txn_id"], txn["outcome"], txn["outputs"]) == ("t1", "completed", ["a4"])
    assert journal.open_transactions() == []
    # the same job again (a retry after the crash) is refused: nothing prints twice
    again = printing.print_a4_once(
        journal,
        printer,
        key="DOC1:a4",
        txn_id="t1",
        pdf=pdf.read_bytes(),
        title="DOC1",
        deadline_s=30,
    )
    assert again.reasons == ("duplicate",)
    time.sleep(1)
    assert len(cups.printed_files()) == 1


def test_a_job_cups_never_received_is_failed_and_reported(
    tmp_path: Path, cups: CupsSandbox
) -> None:
    journal = Journal(tmp_path / "j.sqlite3")
    journal.begin_transaction("", lang="en", elder=True, txn_id="t2")
    journal.begin_transaction("", lang="zh", elder=False, txn_id="t3")  # left at the card
    assert journal.begin_print("DOC2:a4", txn_id="t2", printer="a4")  # crashed before submit
    assert journal.begin_print("t2:thermal", txn_id="t2", printer="thermal")
    printer = CupsPrinter(cups.queue, server=cups.server)
    lines = printing.recover(journal, printer, deadline_s=10, open_txns=["t2", "t3"])
    assert lines[:2] == [
        "DOC2:a4: CUPS never received it; not printed",
        "t2:thermal: slip interrupted; its fate is unknown",
    ]
    closed = {
        e.payload["txn_id"]: e.payload for e in journal.pending_events() if e.type == "transaction"
    }
    assert closed["t2"]["outcome"] == "failed" and closed["t2"]["reason"] == "interrupted"
    assert (closed["t3"]["outcome"], closed["t3"]["abandoned_state"]) == (
        "abandoned",
        "interrupted",
    )
    alerts = [e.payload for e in journal.pending_events() if e.type == "alert"]
    assert [a["kind"] for a in alerts] == ["print_failed", "print_unknown"]


def test_a_job_killed_before_its_document_arrived_is_cancelled_at_once(
    tmp_path: Path, cups: CupsSandbox
) -> None:
    """The kiosk died between Create-Job and sending the PDF: CUPS holds an empty job forever.

    Recovery cancels it without waiting out its deadline, and reports the paper as not printed.
    """
    journal = Journal(tmp_path / "j.sqlite3")
    journal.begin_transaction("", lang="zh", elder=False, txn_id="t4")
    assert journal.begin_print("DOC4:a4", txn_id="t4", printer="a4")
    conn = connect(cups)
    job_id = conn.createJob(cups.queue, "DOC4:a4", {})  # no document follows
    assert documented_jobs(cups) == 0
    printer = CupsPrinter(cups.queue, server=cups.server)
    started = time.monotonic()
    lines = printing.recover(journal, printer, deadline_s=600, open_txns=["t4"])
    assert time.monotonic() - started < 60  # not the 600 s deadline
    assert lines[0] == "DOC4:a4: failed after the restart"
    [job] = journal.print_jobs()
    assert job["state"] == "failed" and "submission_incomplete" in job["reason"]
    state = conn.getJobAttributes(job_id, requested_attributes=["job-state"])["job-state"]
    assert state == pycups.IPP_JOB_CANCELED
    assert cups.printed_files() == []
