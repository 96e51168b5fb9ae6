"""`kiosk read-card` against the SAM simulator: masked output, typed failure."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.sam.simulator import SamSimulator
from flows.synthetic import DEMO_RESIDENT


@pytest.fixture
def sam() -> Iterator[SamSimulator]:
    sim = SamSimulator()
    sim.start()
    yield sim
    sim.stop()


def read_card(sam: SamSimulator, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kiosk.cli", "read-card", "--reader", f"sam:{sam.port}", *extra],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_read_card_prints_the_identity_masked(sam: SamSimulator) -> None:
    threading.Timer(1.0, sam.insert, args=(DEMO_RESIDENT,)).start()
    result = read_card(sam, "--timeout", "20", "--json")
    assert result.returncode == 0, result.stderr
    card = json.loads(result.stdout)
    assert card["name"] == "张**" and card["id_number"] == "3201**********1282"
    assert card["card_type"] == "resident" and card["valid_to"].startswith("长期")
    out = result.stdout + result.stderr
    assert DEMO_RESIDENT.name not in out and DEMO_RESIDENT.id_number not in out


def test_no_card_is_a_typed_failure(sam: SamSimulator) -> None:
    result = read_card(sam, "--timeout", "1")
    assert result.returncode == 1
    assert "no card read within 1 s" in result.stderr


def test_unknown_reader_kinds_are_configuration_errors(sam: SamSimulator) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "kiosk.cli", "read-card", "--reader", "usb:04b4"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2 and "expected sam:/dev/ttyUSB0, pcsc" in result.stderr


def print_test(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kiosk.cli", "print-test", *args, "--timeout", "8"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
def test_print_test_on_both_printers_and_a_named_failure(tmp_path: Path) -> None:
    from drivers.escpos.simulator import EscposSimulator
    from sandbox.cups import CupsSandbox

    cups = CupsSandbox(tmp_path / "cups")
    cups.start()
    slip = EscposSimulator()
    slip.start()
    try:
        ok = print_test("--a4", f"{cups.queue}@{cups.server}", "--thermal", slip.url)
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert f"A4 {cups.queue}: printed" in ok.stdout
        assert f"thermal {slip.url}: printed" in ok.stdout
        assert len(cups.printed_files()) == 1
        assert "打印测试".encode("gb18030") in slip.receipts[0].raw and slip.receipts[0].qr
        slip.paper_out = True
        bad = print_test("--thermal", slip.url)
        assert bad.returncode == 1
        assert "NOT printed (paper_out); printer fault: paper_out" in bad.stdout
    finally:
        slip.stop()
        cups.stop()
