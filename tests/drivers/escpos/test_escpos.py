"""The ESC/POS driver against the TCP simulator: golden bytes, Chinese text, typed states."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from drivers.escpos.printer import EscposPrinter, render_receipt
from drivers.escpos.profiles import load_profile
from drivers.escpos.simulator import EscposSimulator, _Parser
from flows.errors import ConfigError
from flows.models import Align, DeviceState, JobState, Receipt, ReceiptLine


@pytest.fixture
def sim() -> Iterator[EscposSimulator]:
    s = EscposSimulator()
    s.start()
    yield s
    s.stop()


def test_golden_receipt_bytes() -> None:
    receipt = Receipt(
        lines=(ReceiptLine("回执", Align.CENTER, bold=True, double=True), ReceiptLine("No.1")),
        qr="A1",
    )
    esc, gs, fs = b"\x1b", b"\x1d", b"\x1c"
    expected = (
        esc
        + b"@"  # initialise
        # line 1: character size reset twice, then double width+height, bold, centred
        + esc
        + b"!\x00"
        + esc
        + b"!\x00"
        + esc
        + b"!\x30"
        + esc
        + b"E\x01"
        + esc
        + b"a\x01"
        + fs
        + b"&"
        + "回执".encode("gb18030")
        + fs
        + b"."
        + b"\n"
        # line 2: normal size, not bold, left
        + esc
        + b"!\x00"
        + esc
        + b"!\x00"
        + esc
        + b"!\x00"
        + esc
        + b"E\x00"
        + esc
        + b"a\x00"
        + fs
        + b"&"
        + b"No.1"
        + fs
        + b"."
        + b"\n"
        # QR: centred, model 2, module size 6, error correction M, store "A1", print
        + esc
        + b"!\x00"
        + esc
        + b"!\x00"
        + esc
        + b"!\x00"
        + esc
        + b"E\x00"
        + esc
        + b"a\x01"
        + gs
        + b"(k\x04\x001A2\x00"
        + gs
        + b"(k\x03\x001C\x06"
        + gs
        + b"(k\x03\x001E0"
        + gs
        + b"(k\x05\x001P0A1"
        + gs
        + b"(k\x03\x001Q0"
        + b"\n"
        # feed six lines, full cut
        + esc
        + b"d\x06"
        + gs
        + b"V\x00"
    )
    assert render_receipt(receipt) == expected


def test_chinese_receipt_arrives_and_decodes(sim: EscposSimulator) -> None:
    printer = EscposPrinter(sim.url)
    text = "社会保险参保证明（回执）：请取走证件。"
    outcome = printer.print_receipt(
        Receipt(lines=(ReceiptLine(text),), qr="KIOSK-DOC:SO1"), deadline_s=5
    )
    assert outcome.job_state is JobState.COMPLETED
    [received] = sim.receipts
    # 38 columns on 58 mm paper (32): two lines, the second not starting with punctuation
    assert received.lines[:2] == ["社会保险参保证明（回执）：请取走", "证件。"]
    assert "".join(received.lines).encode("gb18030") == text.encode("gb18030")
    assert received.qr == "KIOSK-DOC:SO1"


@pytest.mark.parametrize(
    ("condition", "state", "reason", "key"),
    [
        ("paper_out", DeviceState.FAULT, "paper_out", "error.thermal.paper_out"),
        ("cover_open", DeviceState.FAULT, "cover_open", "error.thermal.cover_open"),
        ("silent", DeviceState.UNKNOWN, "no_status_answer", "error.thermal.no_answer"),
    ],
)
def test_conditions_give_typed_states(
    sim: EscposSimulator, condition: str, state: DeviceState, reason: str, key: str
) -> None:
    """A printer whose profile says it answers DLE EOT: silence is a fault like the others."""
    setattr(sim, condition, True)
    printer = EscposPrinter(sim.url, io_timeout_s=0.5, profile=load_profile(status="dle-eot"))
    health = printer.health()
    assert health.state is state and reason in health.reasons
    outcome = printer.print_receipt(Receipt(lines=(ReceiptLine("x"),)), deadline_s=3)
    assert outcome.job_state is JobState.FAILED and outcome.translation_key == key
    assert sim.receipts == []


def test_paper_near_end_is_degraded_but_prints(sim: EscposSimulator) -> None:
    sim.paper_near_end = True
    printer = EscposPrinter(sim.url)
    assert printer.health().state is DeviceState.DEGRADED
    outcome = printer.print_receipt(Receipt(lines=(ReceiptLine("x"),)), deadline_s=3)
    assert outcome.ok and "paper_low" in outcome.reasons


def test_unreachable_printer_is_offline() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    printer = EscposPrinter(f"tcp:127.0.0.1:{port}", io_timeout_s=0.5)
    assert printer.health().state is DeviceState.OFFLINE
    outcome = printer.print_receipt(Receipt(lines=(ReceiptLine("x"),)), deadline_s=2)
    assert outcome.translation_key == "error.thermal.offline"


@pytest.mark.parametrize(
    "url", ["serial:ttyS0", "serial:", "usb:04b8:0202", "usb:lp0", "lpt1", "tcp:host"]
)
def test_unsupported_urls_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError):
        EscposPrinter(url)


def test_simulator_runs_as_a_module_and_saves_receipts(tmp_path: Path) -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "drivers.escpos.simulator", "--out", str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[3],
    ) as proc:
        try:
            assert proc.stdout is not None
            url = json.loads(proc.stdout.readline())["url"]
            outcome = EscposPrinter(url).print_receipt(
                Receipt(lines=(ReceiptLine("排队号 A012"),), qr="Q-1"), deadline_s=5
            )
            assert outcome.ok
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=10) == 0
    [saved] = tmp_path.glob("*.txt")
    # the line feed after the QR code is an empty line on paper
    assert saved.read_text(encoding="utf-8").splitlines() == ["排队号 A012", "", "[QR] Q-1"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=8))
def test_simulator_parser_survives_random_bytes(chunks: list[bytes]) -> None:
    sim = EscposSimulator()
    parser = _Parser(sim)
    for chunk in chunks:
        parser.feed(chunk)
    # whatever came before, the parser keeps answering status queries it can see
    assert isinstance(parser.feed(render_receipt(Receipt(lines=(ReceiptLine("尾"),)))), bytes)


def test_each_receipt_is_kept_as_a_picture(tmp_path: Path, artifacts: Path) -> None:
    sim = EscposSimulator(out_dir=tmp_path)
    sim.start()
    try:
        printer = EscposPrinter(sim.url)
        receipt = Receipt(
            lines=(
                ReceiptLine("办理回执 Receipt", Align.CENTER, double=True),
                ReceiptLine("事项: 社会保险参保证明"),
                ReceiptLine("编号: SO1234"),
            ),
            qr="KIOSK-DOC:SO1234",
        )
        assert printer.print_receipt(receipt, deadline_s=5).ok
    finally:
        sim.stop()
    picture = tmp_path / "receipt-0001.png"
    image = Image.open(picture)
    assert image.width == 384 and image.height > 150
    low, high = image.getextrema()
    assert (low, high) == (0, 255)  # black print on white paper
    shutil.copy(picture, artifacts / "receipt.png")
