"""Thermal printers as sold in China, as simulator profiles: each behaviour with its test.

The driver's profile (python-escpos' database and the station's configuration) is set as a
station would set it for that printer; the simulator plays the printer and shows the paper.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import zxingcpp

from drivers.escpos.layout import CLOSING
from drivers.escpos.paper import SIM_PROFILES, PaperLine, SimReceipt
from drivers.escpos.printer import DLE_EOT, EscposPrinter
from drivers.escpos.profiles import PrinterProfile, load_profile
from drivers.escpos.simulator import EscposSimulator
from flows.catalog import load_catalog
from flows.models import CardType, DeviceState, Identity, JobState, Receipt, ReceiptLine
from flows.session import selections
from flows.slips import Say, Ticket, materials_notice, queue_ticket, receipt
from kiosk.i18n import Translator

ROOT = Path(__file__).resolve().parents[3]
CATALOG = load_catalog(ROOT / "assets" / "catalog" / "demo.toml")
ISSUED = dt.datetime(2026, 12, 5, 14, 30)
PERSON = Identity(CardType.RESIDENT, name="王小明", id_number="11010519491231002X")
WIDTHS = {"58": ("escpos-58", 0), "80": ("escpos-80", 80)}


def _sim(profile: str, out: Path | None = None) -> EscposSimulator:
    sim = EscposSimulator(out_dir=out, profile=profile)
    sim.start()
    return sim


@pytest.fixture
def sims() -> Iterator[list[EscposSimulator]]:
    started: list[EscposSimulator] = []
    yield started
    for sim in started:
        sim.stop()


def _wait_for_receipts(sim: EscposSimulator, count: int = 1) -> list[SimReceipt]:
    """The receipts, once the simulator has taken them off the wire (a printer that answers no
    status query gives the driver nothing to wait for)."""
    deadline = time.monotonic() + 5
    while len(sim.receipts) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    return sim.receipts


def _print(
    sims: list[EscposSimulator], sim_profile: str, profile: PrinterProfile, receipt: Receipt
) -> tuple[EscposSimulator, SimReceipt]:
    sim = _sim(sim_profile)
    sims.append(sim)
    outcome = EscposPrinter(sim.url, io_timeout_s=0.5, profile=profile).print_receipt(
        receipt, deadline_s=10
    )
    assert outcome.ok, outcome
    [paper] = _wait_for_receipts(sim)
    return sim, paper


def _documents() -> dict[str, Receipt]:
    tr = Translator(strict=True)
    say = Say("zh", tr)
    [bundle] = [s for s in selections(CATALOG) if s.code == "retirement_bundle"]
    ticket = Ticket(CATALOG.service("queue_ticket"), "A", 12)
    return {
        "receipt": receipt(
            catalog=CATALOG,
            selection=bundle,
            tickets={},
            identity=PERSON,
            doc_id="SO20261205ABCDEF",
            issued=ISSUED,
            say=Say("en", tr),  # the long English names a 58 mm printer used to break
        ),
        "notice": materials_notice(
            catalog=CATALOG,
            service=CATALOG.service("disability_certificate_checklist"),
            issued=ISSUED,
            say=say,
        ),
        "ticket": queue_ticket(catalog=CATALOG, ticket=ticket, issued=ISSUED, say=say),
    }


def _assert_laid_out(receipt: Receipt, paper: SimReceipt, columns: int) -> None:
    """The printer never had to wrap; every word and number arrived whole on one line."""
    assert paper.wrapped == 0, paper.lines
    lines = [b for b in paper.blocks if isinstance(b, PaperLine)]
    for line in lines:
        assert line.columns * line.width <= columns, line.text
        assert line.text.lstrip()[:1] not in CLOSING, line.text
    for source in receipt.lines:
        for word in re.findall(r"[!-~]+", source.text):
            assert any(word in line.text for line in lines), (word, paper.lines)


@pytest.mark.parametrize("kind", ["receipt", "notice", "ticket"])
@pytest.mark.parametrize("width", ["58", "80"])
def test_documents_are_wrapped_to_the_paper_by_display_width(
    sims: list[EscposSimulator], kind: str, width: str
) -> None:
    sim_profile, width_mm = WIDTHS[width]
    profile = load_profile("default", width_mm=width_mm)
    receipt = _documents()[kind]
    _, paper = _print(sims, sim_profile, profile, receipt)
    columns = SIM_PROFILES[sim_profile].columns
    assert profile.columns == columns == {"58": 32, "80": 48}[width]
    _assert_laid_out(receipt, paper, columns)
    rules = [line for line in paper.lines if set(line) == {"-"}]
    if kind != "ticket":
        assert rules and all(len(rule) == columns for rule in rules)  # across the paper
    if kind == "receipt":  # the English name that a 58 mm printer used to break
        assert "Social insurance participation certificate" in " ".join(paper.lines)


def test_a_receipt_laid_out_for_80_mm_is_broken_mid_word_by_a_58_mm_printer(
    sims: list[EscposSimulator],
) -> None:
    """Why the width must be right: the simulator breaks lines where the printer would."""
    receipt = Receipt(lines=(ReceiptLine("Social Insurance Participation Certificate"),))
    _, paper = _print(sims, "escpos-58", load_profile("default", width_mm=80), receipt)
    assert paper.wrapped == 1
    assert paper.lines[:2] == ["Social Insurance Participation C", "ertificate"]


def _decoded(paper: SimReceipt) -> list[str]:
    return [r.text for r in zxingcpp.read_barcodes(paper.picture())]


@pytest.mark.parametrize(("sim_profile", "model"), [("no-gs-k-58", "POS-5890"), ("escpos-80", "")])
def test_a_printer_without_gs_k_gets_the_qr_as_a_raster_that_decodes(
    sims: list[EscposSimulator], sim_profile: str, model: str, artifacts: Path
) -> None:
    profile = load_profile(model) if model else load_profile("default", width_mm=80)
    if model:
        assert profile.qr == "raster"  # from python-escpos: POS-5890 has no qrCode feature
    else:
        profile = PrinterProfile(**{**_fields(profile), "qr": "raster"})
    receipt = _documents()["receipt"]
    _, paper = _print(sims, sim_profile, profile, receipt)
    assert paper.qr is None and len(paper.rasters) == 1  # no GS ( k: a GS v 0 image
    raster = paper.rasters[0]
    assert raster.width <= profile.dots
    assert _decoded(paper) == ["KIOSK-DOC:SO20261205ABCDEF"]
    paper.picture().save(artifacts / f"receipt-raster-qr-{sim_profile}.png")


def _fields(profile: PrinterProfile) -> dict[str, object]:
    return {name: getattr(profile, name) for name in PrinterProfile.__slots__}


def test_a_native_qr_on_a_printer_without_gs_k_prints_nothing(sims: list[EscposSimulator]) -> None:
    """Why the profile matters: GS ( k sent to such a printer leaves no code on the paper."""
    _, paper = _print(sims, "no-gs-k-58", load_profile("default"), _documents()["receipt"])
    assert paper.qr is None and paper.rasters == []
    assert _decoded(paper) == []
    # the same bytes on a printer that has GS ( k: the code is there and decodes
    _, paper = _print(sims, "escpos-58", load_profile("default"), _documents()["receipt"])
    assert paper.qr == "KIOSK-DOC:SO20261205ABCDEF"
    assert _decoded(paper) == ["KIOSK-DOC:SO20261205ABCDEF"]


def test_a_printer_that_never_answers_dle_eot_prints_with_status_unknown(
    sims: list[EscposSimulator],
) -> None:
    sim = _sim("no-status-58")
    sims.append(sim)
    printer = EscposPrinter(sim.url, io_timeout_s=0.5)  # status "auto", the default
    health = printer.health()
    assert health.state is DeviceState.UNKNOWN and health.reasons == ("no_status",)
    assert not health.usable  # never "ok" ...
    assert "paper_out" not in health.reasons  # ... and never "paper out"
    outcome = printer.print_receipt(_documents()["notice"], deadline_s=10)
    assert outcome.job_state is JobState.COMPLETED and outcome.reasons == ("status_unknown",)
    assert len(_wait_for_receipts(sim)) == 1
    assert printer.health().state is DeviceState.UNKNOWN


def test_a_printer_declared_without_status_is_never_asked(sims: list[EscposSimulator]) -> None:
    sim = _sim("no-status-58")
    sims.append(sim)
    printer = EscposPrinter(sim.url, profile=load_profile(status="none"))
    assert printer.health().detail == {"status_support": "declared"}
    assert printer.print_receipt(_documents()["ticket"], deadline_s=5).reasons == (
        "status_unknown",
    )
    assert len(_wait_for_receipts(sim)) == 1 and DLE_EOT not in sim.received


def test_a_printer_that_answered_and_fell_silent_is_refused(sims: list[EscposSimulator]) -> None:
    """Learnt, not guessed: silence from a printer that has answered means it is off or hung."""
    sim = _sim("escpos-58")
    sims.append(sim)
    printer = EscposPrinter(sim.url, io_timeout_s=0.5)
    assert printer.health().state is DeviceState.OK
    sim.silent = True
    assert printer.health().reasons == ("no_status_answer",)
    outcome = printer.print_receipt(_documents()["ticket"], deadline_s=5)
    assert outcome.translation_key == "error.thermal.no_answer" and sim.receipts == []


@pytest.mark.parametrize("sim_profile", ["chinese-mode-58", "chinese-mode-80", "escpos-58"])
def test_chinese_text_prints_the_same_whatever_mode_the_printer_starts_in(
    sims: list[EscposSimulator], sim_profile: str
) -> None:
    width = 80 if sim_profile.endswith("80") else 0
    receipt = _documents()["notice"]
    _, paper = _print(sims, sim_profile, load_profile("default", width_mm=width), receipt)
    text = "".join(paper.lines).replace(" ", "")
    for line in receipt.lines:
        if not line.rule:
            assert line.text.replace(" ", "") in text
    assert "\ufffd" not in text


def test_the_simulator_reads_bytes_as_the_mode_says() -> None:
    """GB18030 without FS & is Chinese on a printer in Chinese mode, and mojibake on others."""
    data = b"\x1b@" + "证明".encode("gb18030") + b"\n" + b"\x1dV\x00"
    mojibake = "证明".encode("gb18030").decode("cp437")  # code page 437, the power-on default
    for profile, expected in (("chinese-mode-58", "证明"), ("escpos-58", mojibake)):
        sim = EscposSimulator(profile=profile)
        from drivers.escpos.simulator import _Parser

        _Parser(sim).feed(data)
        assert sim.receipts[0].lines == [expected]


def test_a_budget_printer_has_all_of_it_and_no_cutter(
    sims: list[EscposSimulator], tmp_path: Path
) -> None:
    """Chinese mode, no GS ( k, silent, no cutter: a POS-5890-class printer on its profile."""
    sim = _sim("budget-58", tmp_path)
    sims.append(sim)
    printer = EscposPrinter(sim.url, io_timeout_s=0.5, profile=load_profile("POS-5890"))
    receipt = _documents()["receipt"]
    outcome = printer.print_receipt(receipt, deadline_s=10)
    assert outcome.ok and outcome.reasons == ("status_unknown",)
    [paper] = _wait_for_receipts(sim)  # ended when the job's connection closed: no cut
    assert b"\x1dV" not in paper.raw
    _assert_laid_out(receipt, paper, 32)
    assert _decoded(paper) == ["KIOSK-DOC:SO20261205ABCDEF"]
    assert (tmp_path / "receipt-0001.png").exists()
