"""A 掌上办 guide from the demo catalog, printed through the ESC/POS simulator (TCP, the real
wire protocol): the lines laid out for the paper, and the QR code on the paper's picture decodes
to the catalog's URL, with a printer that has GS ( k and with one that gets a raster image."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import zxingcpp

from drivers.escpos.paper import SIM_PROFILES
from drivers.escpos.printer import EscposPrinter
from drivers.escpos.profiles import load_profile
from drivers.escpos.simulator import EscposSimulator
from flows.catalog import load_catalog
from flows.slips import Say, mobile_guide
from kiosk.i18n import Translator

ROOT = Path(__file__).resolve().parents[3]
CATALOG = load_catalog(ROOT / "assets" / "catalog" / "demo.toml")
GUIDE = CATALOG.service("personal_tax_mobile_guide")


@pytest.fixture
def sim(request: pytest.FixtureRequest) -> Iterator[EscposSimulator]:
    simulator = EscposSimulator(profile=request.param)
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.mark.parametrize(
    ("sim", "model", "lang"),
    [("escpos-58", "", "zh"), ("no-gs-k-58", "POS-5890", "en")],
    indirect=["sim"],
)
def test_the_guide_slip_prints_and_its_qr_code_opens_the_catalogs_page(
    sim: EscposSimulator, model: str, lang: str, artifacts: Path
) -> None:
    assert GUIDE.mobile is not None
    slip = mobile_guide(
        catalog=CATALOG,
        service=GUIDE,
        issued=dt.datetime(2026, 12, 5, 21, 40),
        say=Say(lang, Translator(strict=True)),
    )
    profile = load_profile(model) if model else load_profile("default", width_mm=58)
    outcome = EscposPrinter(sim.url, io_timeout_s=0.5, profile=profile).print_receipt(
        slip, deadline_s=10
    )
    assert outcome.ok, outcome
    deadline = time.monotonic() + 5  # a printer without status answers gives nothing to wait on
    while not sim.receipts and time.monotonic() < deadline:
        time.sleep(0.02)
    [paper] = sim.receipts
    assert paper.wrapped == 0, paper.lines  # laid out for 58 mm by the driver, not the printer
    assert profile.columns == SIM_PROFILES[sim.profile.name].columns
    text = "\n".join(paper.lines)
    for step in GUIDE.mobile.steps:
        assert step.get(lang).replace(" ", "")[:8] in text.replace(" ", "").replace("\n", "")
    assert GUIDE.mobile.app.get(lang).split()[-1] in text
    found = [code.text for code in zxingcpp.read_barcodes(paper.picture())]
    assert found == [GUIDE.mobile.url] == ["https://etax.chinatax.gov.cn/"]
    paper.picture().save(artifacts / f"mobile-guide-{lang}-{sim.profile.name}.png")
