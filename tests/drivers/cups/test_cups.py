"""The A4 driver through a real, private cupsd to a simulated network printer."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import cups
import pytest
from PIL import Image
from reportlab.pdfgen.canvas import Canvas

from drivers.cups.printer import CupsPrinter, classify
from flows.models import DeviceState, JobState
from sandbox.cups import CupsSandbox


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CupsSandbox]:
    box = CupsSandbox(tmp_path_factory.mktemp("cups"))
    box.start()
    yield box
    box.stop()


def one_line_pdf(text: str = "kiosk test page") -> bytes:
    buf = io.BytesIO()
    c = Canvas(buf)
    c.setFont("Helvetica", 28)
    c.drawString(72, 700, text)
    c.showPage()
    c.save()
    return buf.getvalue()


@pytest.mark.slow
def test_job_completes_and_the_pdf_left_cups(sandbox: CupsSandbox, tmp_path: Path) -> None:
    printer = CupsPrinter(sandbox.queue, server=sandbox.server)
    assert printer.health().state is DeviceState.OK
    before = len(sandbox.printed_files())
    outcome = printer.print_pdf(one_line_pdf(), title="t", job_key="K-1", deadline_s=30)
    assert outcome.job_state is JobState.COMPLETED and outcome.job_id
    printed = sandbox.printed_files()
    assert len(printed) == before + 1
    subprocess.run(
        ["pdftoppm", "-png", "-r", "50", str(printed[-1]), str(tmp_path / "p")], check=True
    )
    [page] = sorted(tmp_path.glob("p*.png"))
    low, high = Image.open(page).convert("L").getextrema()
    assert high - low > 100
    # the spool keeps no copy of the document
    assert not [p for p in (sandbox.server_root / "spool").glob("d*") if p.is_file()]


@pytest.mark.slow
def test_printer_off_fails_within_the_deadline_and_prints_later(sandbox: CupsSandbox) -> None:
    printer = CupsPrinter(sandbox.queue, server=sandbox.server, poll_s=0.2)
    sandbox.printer.stop()
    try:
        started = time.monotonic()
        outcome = printer.print_pdf(one_line_pdf(), title="t", job_key="K-2", deadline_s=4)
        elapsed = time.monotonic() - started
    finally:
        sandbox.printer.restart()
    assert outcome.job_state is JobState.FAILED
    assert elapsed < 4 + 2.5  # the deadline, then at most the final state query and the cancel
    # CUPS's socket backend keeps retrying a refused connection with no state reason to tell,
    # so what the resident is told is that time ran out, and where the job was stuck
    assert outcome.translation_key == "error.a4.timeout"
    assert outcome.reasons == ("timeout", "job_processing", "job_cancelled")
    # the job is not lost: CUPS still knows it, and it is cancelled, so it cannot print late
    conn = cups.Connection(host="127.0.0.1", port=int(sandbox.server.rpartition(":")[2]))
    attrs = conn.getJobAttributes(int(outcome.job_id), requested_attributes=["job-state"])
    assert attrs["job-state"] == cups.IPP_JOB_CANCELED
    # health reports the reason until a job gets through again
    health = printer.health()
    assert health.state is DeviceState.DEGRADED
    assert health.reasons[:2] == ("last_job_failed", "timeout")
    again = printer.print_pdf(one_line_pdf(), title="t", job_key="K-3", deadline_s=30)
    assert again.ok
    assert printer.health().state is DeviceState.OK


@pytest.mark.slow
def test_a_missing_queue_is_a_typed_fault(sandbox: CupsSandbox) -> None:
    printer = CupsPrinter("no-such-queue", server=sandbox.server)
    health = printer.health()
    assert health.state is DeviceState.FAULT and health.reasons == ("queue_missing",)
    outcome = printer.print_pdf(one_line_pdf(), title="t", job_key="K-4", deadline_s=5)
    assert outcome.job_state is JobState.FAILED
    assert outcome.translation_key == "error.a4.queue_missing"


@pytest.mark.slow
def test_sandbox_runs_as_a_module_until_sigterm(tmp_path: Path) -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "sandbox.cups", "--root", str(tmp_path / "box")],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[3],
    ) as proc:
        try:
            assert proc.stdout is not None
            ready = json.loads(proc.stdout.readline())
            assert ready["queue"] == "kiosk-a4" and ready["server"].startswith("127.0.0.1:")
            printer = CupsPrinter(ready["queue"], server=ready["server"])
            assert printer.health().state is DeviceState.OK
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=15) == 0
    assert CupsPrinter("kiosk-a4", server=ready["server"], call_timeout_s=2).health().state is (
        DeviceState.OFFLINE
    )


def test_cups_unreachable_is_offline() -> None:
    printer = CupsPrinter("kiosk-a4", server="127.0.0.1:9", call_timeout_s=2)
    health = printer.health()
    assert health.state is DeviceState.OFFLINE
    outcome = printer.print_pdf(b"%PDF-1.4", title="t", job_key="K", deadline_s=2)
    assert outcome.job_state is JobState.FAILED and outcome.translation_key == "error.a4.offline"


@pytest.mark.parametrize(
    ("state", "reasons", "accepting", "expected"),
    [
        (3, ["none"], True, (DeviceState.OK, ())),
        (3, ["media-empty-error"], True, (DeviceState.FAULT, ("paper_out",))),
        (3, ["media-jam-error", "toner-low-warning"], True, (DeviceState.FAULT, ("paper_jam",))),
        (3, ["toner-low-report"], True, (DeviceState.DEGRADED, ("toner_low",))),
        (3, ["door-open"], True, (DeviceState.FAULT, ("door_open",))),
        (3, ["offline-report"], True, (DeviceState.OFFLINE, ("offline",))),
        (5, ["paused"], True, (DeviceState.FAULT, ("paused",))),
        (3, [], False, (DeviceState.FAULT, ("not_accepting",))),
    ],
)
def test_state_reasons_map_to_typed_health(
    state: int, reasons: list[str], accepting: bool, expected: tuple[DeviceState, tuple[str, ...]]
) -> None:
    assert classify(state, reasons, accepting) == expected


@pytest.mark.slow
def test_a_paused_queue_is_taken_up_again(sandbox: CupsSandbox) -> None:
    subprocess.run(["cupsdisable", "-h", sandbox.server, sandbox.queue], check=True)
    printer = CupsPrinter(sandbox.queue, server=sandbox.server)
    assert printer.health().state is DeviceState.OK  # re-enabled: the printer itself is fine
    status = subprocess.run(
        ["lpstat", "-h", sandbox.server, "-p", sandbox.queue],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "enabled" in status
