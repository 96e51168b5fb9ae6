"""One resident's journey end to end, through every layer, on real peers.

The real kiosk app runs in a window on Xvfb and is driven with touches; the ID card comes from the
GA 467 simulator on a pseudo-terminal through the real serial driver; the certificate goes through
a private cupsd to a simulated network printer; the receipt goes through the real ESC/POS
driver to the printer simulator on TCP. Afterwards no log or journal holds the resident's name or
ID number.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image

from drivers.escpos.simulator import EscposSimulator
from drivers.sam.simulator import SamSimulator
from flows.synthetic import DEMO_RESIDENT
from flows.tokens import Verdict, key_id, load_public, verify
from sandbox.cups import CupsSandbox
from statedir.journal import Journal

HERE = Path(__file__).resolve().parent
SERVICE_ZH = "社会保险参保证明"


@pytest.fixture
def sam() -> Iterator[SamSimulator]:
    sim = SamSimulator()
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture
def thermal(tmp_path: Path) -> Iterator[EscposSimulator]:
    sim = EscposSimulator(out_dir=tmp_path / "receipts")
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture
def cups(tmp_path: Path) -> Iterator[CupsSandbox]:
    sandbox = CupsSandbox(tmp_path / "cups")
    sandbox.start()
    yield sandbox
    sandbox.stop()


def write_config(
    path: Path, state: Path, sam: SamSimulator, thermal: EscposSimulator, cups: CupsSandbox
) -> None:
    path.write_text(
        "version = 1\n"
        "[station]\ncard_left_alert_s = 2\n"
        f'[state]\ndir = "{state}"\n'
        "[devices]\n"
        f'id_reader = "sam:{sam.port}"\n'
        f'a4_printer = "cups:{cups.queue}@{cups.server}"\n'
        f'thermal_printer = "{thermal.url}"\n'
        'audio_player_args = ["-D", "null"]\n'
        "[ui]\nwidth = 1920\nheight = 1080\n",
        encoding="utf-8",
    )


def forbidden_bytes() -> list[bytes]:
    out = []
    for secret in (DEMO_RESIDENT.name, DEMO_RESIDENT.id_number):
        for encoding in ("utf-8", "utf-16-le", "gb18030"):
            out.append(secret.encode(encoding))
    return out


def run_journey(
    tmp_path: Path,
    xvfb: str,
    artifacts: Path,
    devices: tuple[SamSimulator, EscposSimulator, CupsSandbox],
    *,
    lang: str = "zh",
    scenario: str = "certificate",
    hands: Callable[[str], None] = lambda line: None,
) -> tuple[Path, list[str]]:
    """Run the app through one scenario; ``hands`` acts on the devices at each ``AT`` line."""
    sam, thermal, cups = devices
    state = tmp_path / "state"
    config = tmp_path / "kiosk.toml"
    write_config(config, state, sam, thermal, cups)
    shots = artifacts / "journey"
    shots.mkdir(exist_ok=True)
    env = dict(os.environ, DISPLAY=xvfb)
    proc = subprocess.Popen(
        [
            sys.executable,
            str(HERE / "journey_app.py"),
            "--config",
            str(config),
            "--artifacts",
            str(shots),
            "--lang",
            lang,
            "--scenario",
            scenario,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    seen: list[str] = []
    stderr: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            seen.append(line.strip())
            hands(line.strip())

    def drain() -> None:
        assert proc.stderr is not None
        stderr.extend(proc.stderr)

    threads = [threading.Thread(target=read), threading.Thread(target=drain)]
    for t in threads:
        t.start()
    try:
        code = proc.wait(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for t in threads:
            t.join(timeout=10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    log = state / "logs" / "kiosk.log"
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
    assert code == 0, "".join(stderr)[-2000:] + tail
    return state, seen


def assert_no_personal_data_left(state: Path, cups: CupsSandbox) -> None:
    """No log, journal, cache or spool file holds the resident's name or ID number."""
    leaks = []
    files = [*state.rglob("*"), *cups.root.rglob("*"), *cups.server_root.rglob("*")]
    for path in files:
        if path.is_file() and cups.out_dir not in path.parents:
            data = path.read_bytes()
            leaks += [f"{path}: {b!r}" for b in forbidden_bytes() if b in data]
    assert not leaks, leaks
    assert (state / "logs" / "kiosk.log").stat().st_size > 0


def assert_everything_said_was_shown(seen: list[str], *, keys: set[str] = frozenset()) -> None:
    """Every line given to the voice was the visible caption on the screen it was said on, at
    the first frame after it (journey_app's ``check_said``); a line cut off within the same
    batch is only ever followed by the line that replaced it on the same screen."""
    said = [line.split() for line in seen if line.startswith("SAID ")]
    assert said, "no spoken line was checked"
    missing = [" ".join(s) for s in said if s[1] == "MISSING"]
    assert not missing, missing
    shown = {s[3] for s in said if s[1] == "shown"}
    assert keys <= shown, keys - shown


def pdf_pages(path: Path) -> int:
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True)
    match = re.search(r"^Pages:\s+(\d+)$", info.stdout, re.M)
    assert match, info.stdout
    return int(match.group(1))


@pytest.mark.gui
@pytest.mark.slow
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_resident_journey(
    tmp_path: Path,
    xvfb: str,
    artifacts: Path,
    sam: SamSimulator,
    thermal: EscposSimulator,
    cups: CupsSandbox,
    lang: str,
) -> None:
    def hands(line: str) -> None:  # the resident's hands on the devices
        if line == "AT identify":
            sam.insert(DEMO_RESIDENT)
        elif line == "AT rate":
            sam.remove()

    state, seen = run_journey(
        tmp_path, xvfb, artifacts, (sam, thermal, cups), lang=lang, hands=hands
    )
    steps = [line for line in seen if line.startswith("AT ")]
    assert steps[:1] == ["AT idle"] and "AT rate" in steps
    assert_everything_said_was_shown(
        seen,
        keys={
            "prompt.identify",
            "prompt.choose",
            "prompt.preview",
            "prompt.printing",
            "prompt.rate",
            "prompt.thanks",
            "prompt.home",
        },
    )
    shots = artifacts / "journey"

    # every screen was captured
    for name in (
        "01-home",
        "02-identify",
        "03-choose",
        "04-preview",
        "05-printing",
        "06-rate",
        "07-thanks",
        "08-home-again",
    ):
        assert (shots / f"{name}-{lang}.png").stat().st_size > 10_000

    # the certificate left CUPS and renders to a non-blank page
    printed = cups.printed_files()
    assert len(printed) == 1, printed
    subprocess.run(
        ["pdftoppm", "-png", "-r", "40", str(printed[0]), str(tmp_path / "page")], check=True
    )
    [page] = sorted(tmp_path.glob("page*.png"))
    low, high = Image.open(page).convert("L").getextrema()
    assert high - low > 200

    # its QR code holds a token that verifies offline with the station's public key
    subprocess.run(
        ["pdftoppm", "-png", "-r", "150", str(printed[0]), str(tmp_path / "qr")], check=True
    )
    [code] = zxingcpp.read_barcodes(
        Image.open(sorted(tmp_path.glob("qr*.png"))[0]), formats=zxingcpp.BarcodeFormat.QRCode
    )
    public = load_public((state / "document-signing.pub").read_bytes())
    verdict, claims = verify(str(code.text), {key_id(public): public})
    assert verdict is Verdict.VALID and claims is not None
    assert claims.doc_type == "social_insurance_certificate"

    # the printer simulator received a receipt naming the service, in the session's language
    receipts = thermal.receipts
    assert len(receipts) == 1
    if lang == "zh":
        assert SERVICE_ZH.encode("gb18030") in receipts[0].raw
    else:
        assert "Social insurance participation certificate" in " ".join(receipts[0].lines)

    # exactly one finished transaction, with its rating
    journal = Journal(state / "journal.sqlite3")
    [txn] = [t for t in journal.transactions() if t.outcome is not None]
    assert (txn.service, txn.outcome, txn.rating) == (
        "social_insurance_certificate",
        "completed",
        5,
    )
    assert txn.outputs == ["a4", "thermal"] and txn.lang == lang
    journal.close()
    assert_no_personal_data_left(state, cups)


@pytest.mark.gui
@pytest.mark.slow
def test_notice_without_a_card(
    tmp_path: Path,
    xvfb: str,
    artifacts: Path,
    sam: SamSimulator,
    thermal: EscposSimulator,
    cups: CupsSandbox,
) -> None:
    state, seen = run_journey(tmp_path, xvfb, artifacts, (sam, thermal, cups), scenario="notice")
    assert_everything_said_was_shown(seen, keys={"prompt.notice", "prompt.goodbye"})
    [receipt] = thermal.receipts
    on_paper = "".join(line.strip() for line in receipt.lines)  # wrapped to 58 mm paper
    for text in ("一次性告知单", "近期二寸免冠白底彩色照片", "《中华人民共和国残疾人证管理办法》"):
        assert text in on_paper
    assert cups.printed_files() == []
    journal = Journal(state / "journal.sqlite3")
    [txn] = journal.transactions()
    assert (txn.service, txn.outcome, txn.outputs, txn.rating, txn.identity_hash) == (
        "disability_certificate_checklist",
        "completed",
        ["thermal"],
        None,
        None,
    )
    journal.close()


@pytest.mark.gui
@pytest.mark.slow
def test_a_mobile_guide_without_a_card(
    tmp_path: Path,
    xvfb: str,
    artifacts: Path,
    sam: SamSimulator,
    thermal: EscposSimulator,
    cups: CupsSandbox,
) -> None:
    """The choose screen offers the tax record's 掌上办 guide beside it; picked without a card,
    it prints a slip whose QR code opens the page the signed catalog names."""
    state, seen = run_journey(tmp_path, xvfb, artifacts, (sam, thermal, cups), scenario="guide")
    assert_everything_said_was_shown(seen, keys={"prompt.goodbye"})
    [slip] = thermal.receipts
    on_paper = "".join(line.strip() for line in slip.lines)
    for text in ("掌上办指南", "个人所得税App", "选年度，点“开具纳税记录”"):
        assert text in on_paper.replace(" ", "")
    found = [code.text for code in zxingcpp.read_barcodes(slip.picture())]
    assert found == ["https://etax.chinatax.gov.cn/"]
    slip.picture().save(artifacts / "journey" / "guide-3-slip.png")
    assert cups.printed_files() == []
    journal = Journal(state / "journal.sqlite3")
    [txn] = journal.transactions()
    assert (txn.service, txn.outcome, txn.outputs) == (
        "personal_tax_mobile_guide",
        "completed",
        ["thermal"],
    )
    journal.close()


@pytest.mark.gui
@pytest.mark.slow
def test_retirement_bundle_in_elder_mode(
    tmp_path: Path,
    xvfb: str,
    artifacts: Path,
    sam: SamSimulator,
    thermal: EscposSimulator,
    cups: CupsSandbox,
) -> None:
    def hands(line: str) -> None:
        if line == "AT identify":
            sam.insert(DEMO_RESIDENT)
        elif line == "AT take_card":  # asked for it, the elder takes the card
            sam.remove()

    state, seen = run_journey(
        tmp_path, xvfb, artifacts, (sam, thermal, cups), scenario="bundle", hands=hands
    )
    assert_everything_said_was_shown(seen, keys={"prompt.take_card", "prompt.thanks"})
    [pdf] = cups.printed_files()
    assert pdf_pages(pdf) == 3  # one job, three certificates, one confirmation
    [receipt] = thermal.receipts
    for name in ("社会保险参保证明", "医疗保险缴费记录", "退休资格认证状态"):
        assert name.encode("gb18030") in receipt.raw
    journal = Journal(state / "journal.sqlite3")
    [txn] = journal.transactions()
    assert (txn.service, txn.outcome, txn.elder, txn.rating, txn.rating_tags) == (
        "retirement_bundle",
        "completed",
        True,
        4,
        ["slow"],
    )
    journal.close()
    assert_no_personal_data_left(state, cups)


@pytest.mark.gui
@pytest.mark.slow
def test_out_of_order_when_the_slip_printer_is_out_of_paper(
    tmp_path: Path,
    xvfb: str,
    artifacts: Path,
    sam: SamSimulator,
    thermal: EscposSimulator,
    cups: CupsSandbox,
) -> None:
    thermal.paper_out = True  # every service prints a slip: nothing can be served

    def hands(line: str) -> None:
        if line == "AT out_of_order":
            thermal.paper_out = False  # a technician refills the paper

    run_journey(
        tmp_path, xvfb, artifacts, (sam, thermal, cups), scenario="out_of_order", hands=hands
    )
