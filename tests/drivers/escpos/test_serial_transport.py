"""The thermal printer on a device: serial (pyserial) and USB printer class (usblp) transports
against the ESC/POS simulator speaking on a pseudo-terminal.

The simulator holds the pty's master; the driver opens the slave through a stable symlink, as a
station opens ``/dev/kiosk-thermal``. ``serial:`` opens it with pyserial, exactly as it opens a
USB-serial bridge. ``usb:`` opens it as a plain file with ``os.open`` + ``poll`` + ``read`` /
``write``, exactly the calls it makes on ``/dev/usb/lp0``; a pty is an honest stand-in for those
calls, deadlines and byte streams, but not for what only the usblp kernel driver does: ``ENODEV``
after an unplug (a pty hangs up: ``POLLHUP``, then ``EIO``), ``EINVAL`` from a unidirectional
printer, ``EBUSY`` for a second opener and zero-length reads. Those are handled in
:mod:`drivers.escpos.transports` from the kernel's source, and not exercised here.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial

from drivers.escpos.printer import DLE_EOT, EscposPrinter, render_receipt
from drivers.escpos.profiles import load_profile
from drivers.escpos.simulator import EscposSimulator
from drivers.escpos.transports import SerialTransport, UsbLpTransport, make_transport
from flows.errors import ConfigError, DeviceOffline, DeviceTimeout
from flows.models import Align, DeviceState, JobState, Receipt, ReceiptLine

QUERIES = b"".join(DLE_EOT + bytes([n]) for n in (1, 2, 3, 4))
KINDS = ("serial", "usb")
ANSWERS = load_profile(status="dle-eot")
RECEIPT = Receipt(
    lines=(
        ReceiptLine("办理回执 Receipt", Align.CENTER, bold=True, double=True),
        ReceiptLine("事项: 社会保险参保证明"),
    ),
    qr="KIOSK-DOC:SO1234",
)


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[EscposSimulator]:
    s = EscposSimulator(pty=True, link_path=tmp_path / "kiosk-thermal")
    s.start()
    yield s
    s.stop()


def url(sim: EscposSimulator, kind: str) -> str:
    return f"{kind}:{sim.link_path}"


def later(delay_s: float, action: object) -> threading.Thread:
    assert callable(action)

    def run() -> None:
        time.sleep(delay_s)
        action()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize(
    ("kind", "baud", "flow"),
    [
        ("serial", 9600, "none"),
        ("serial", 19200, "rtscts"),
        ("serial", 115200, "xonxoff"),
        ("usb", 9600, "none"),
    ],
)
def test_exact_bytes_on_the_line(sim: EscposSimulator, kind: str, baud: int, flow: str) -> None:
    printer = EscposPrinter(url(sim, kind), baud=baud, flow=flow)  # type: ignore[arg-type]
    outcome = printer.print_receipt(RECEIPT, deadline_s=5)
    assert outcome.job_state is JobState.COMPLETED and outcome.reasons == ()
    data = render_receipt(RECEIPT)
    # status before, the receipt, status after: nothing else, nothing changed by the tty
    assert bytes(sim.received) == QUERIES + data + QUERIES
    [printed] = sim.receipts
    assert printed.raw == data
    assert printed.lines[0] == "办理回执 Receipt" and printed.qr == "KIOSK-DOC:SO1234"
    if kind == "serial":  # the line really is set up as configured
        assert sim.line_settings() == {
            "baud": baud,
            "rtscts": flow == "rtscts",
            "xonxoff": flow == "xonxoff",
        }


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("condition", "state", "reason", "key"),
    [
        ("paper_out", DeviceState.FAULT, "paper_out", "error.thermal.paper_out"),
        ("cover_open", DeviceState.FAULT, "cover_open", "error.thermal.cover_open"),
    ],
)
def test_paper_out_and_cover_open_come_through(
    sim: EscposSimulator, kind: str, condition: str, state: DeviceState, reason: str, key: str
) -> None:
    setattr(sim, condition, True)
    printer = EscposPrinter(url(sim, kind))
    health = printer.health()
    assert health.state is state and reason in health.reasons
    outcome = printer.print_receipt(RECEIPT, deadline_s=5)
    assert outcome.job_state is JobState.FAILED and outcome.translation_key == key
    assert bytes(sim.received) == QUERIES + QUERIES  # asked twice; the receipt was never sent
    assert sim.receipts == []
    setattr(sim, condition, False)  # paper in, cover closed: the next health says so
    assert printer.health().state is DeviceState.OK


@pytest.mark.parametrize("kind", KINDS)
def test_paper_near_end_is_degraded_but_prints(sim: EscposSimulator, kind: str) -> None:
    sim.paper_near_end = True
    printer = EscposPrinter(url(sim, kind))
    assert printer.health().reasons == ("paper_low",)
    outcome = printer.print_receipt(RECEIPT, deadline_s=5)
    assert outcome.ok and outcome.reasons == ("paper_low",)
    assert len(sim.receipts) == 1


@pytest.mark.parametrize("kind", KINDS)
def test_a_printer_that_does_not_answer_is_a_clear_error_within_the_timeout(
    sim: EscposSimulator, kind: str
) -> None:
    sim.silent = True  # a printer that answers DLE EOT (the profile says so) and is silent
    printer = EscposPrinter(url(sim, kind), io_timeout_s=0.5, profile=ANSWERS)
    started = time.monotonic()
    health = printer.health()
    health_s = time.monotonic() - started
    assert health.state is DeviceState.UNKNOWN and health.reasons == ("no_status_answer",)
    started = time.monotonic()
    outcome = printer.print_receipt(RECEIPT, deadline_s=10)
    print_s = time.monotonic() - started
    assert outcome.job_state is JobState.FAILED
    assert outcome.translation_key == "error.thermal.no_answer"
    # one status deadline (0.5 s) each, not four, and silence is never taken for "fine"
    assert 0.4 < health_s < 1.5 and 0.4 < print_s < 1.5, (health_s, print_s)
    assert bytes(sim.received) == DLE_EOT + b"\x01" + DLE_EOT + b"\x01"
    assert sim.receipts == []


@pytest.mark.parametrize("kind", KINDS)
def test_unplugged_printer_is_offline_and_found_again_on_replug(
    sim: EscposSimulator, kind: str
) -> None:
    printer = EscposPrinter(url(sim, kind), io_timeout_s=1.0)
    assert printer.health().state is DeviceState.OK
    sim.unplug()
    started = time.monotonic()
    health = printer.health()
    outcome = printer.print_receipt(RECEIPT, deadline_s=10)
    assert time.monotonic() - started < 0.5  # at once, not after a timeout
    assert health.state is DeviceState.OFFLINE and health.reasons == ("unreachable",)
    assert outcome.job_state is JobState.FAILED
    assert outcome.translation_key == "error.thermal.offline"
    sim.replug()  # a new pty; the stable name follows it, as udev's /dev/kiosk-thermal does
    assert printer.health().state is DeviceState.OK
    assert printer.print_receipt(RECEIPT, deadline_s=5).ok
    assert len(sim.receipts) == 1


@pytest.mark.parametrize("kind", KINDS)
def test_unplug_while_waiting_for_an_answer_is_offline_not_a_hang(
    sim: EscposSimulator, kind: str
) -> None:
    sim.silent = True  # the query waits: then the cable is pulled
    with make_transport(url(sim, kind), io_timeout_s=5.0) as transport:
        unplug = later(0.3, sim.unplug)
        started = time.monotonic()
        with pytest.raises(DeviceOffline):
            transport.query(DLE_EOT + b"\x01", timeout_s=5.0)
        assert time.monotonic() - started < 1.5  # not the 5 s the query was given
        unplug.join()
        with pytest.raises(DeviceOffline):
            transport._raw(b"\x1b@", deadline=time.monotonic() + 5)


@pytest.mark.parametrize("kind", KINDS)
def test_unplug_while_sending_is_offline_not_a_hang(sim: EscposSimulator, kind: str) -> None:
    sim.stalled = True  # the printer takes nothing: the writer waits, then the cable is pulled
    with make_transport(url(sim, kind), io_timeout_s=5.0) as transport:
        later(0.3, sim.unplug)
        started = time.monotonic()
        with pytest.raises(DeviceOffline):
            transport._raw(b"\x1b@" + b"x" * 4_000_000, deadline=time.monotonic() + 5)
        assert time.monotonic() - started < 1.5


@pytest.mark.parametrize("kind", KINDS)
def test_a_printer_that_takes_no_data_times_out_at_the_deadline(
    sim: EscposSimulator, kind: str
) -> None:
    sim.stalled = True  # a jammed mechanism with its buffer full
    started = time.monotonic()
    with make_transport(url(sim, kind), io_timeout_s=5.0) as transport:
        with pytest.raises(DeviceTimeout):
            transport._raw(b"x" * 4_000_000, deadline=time.monotonic() + 0.8)
        timed_out = time.monotonic() - started
    closed = time.monotonic() - started  # closing does not wait for what will never go
    assert 0.7 < timed_out < 1.5 and closed < 1.5, (timed_out, closed)


@pytest.mark.parametrize("kind", KINDS)
def test_health_checks_during_prints_do_not_collide_on_the_device(
    sim: EscposSimulator, kind: str
) -> None:
    """The health loop and a print run on different threads; a serial port is opened
    exclusively (usblp allows one opener too): neither may see the other as "offline"."""
    printer = EscposPrinter(url(sim, kind))
    outcomes = []
    healths = []
    stop = threading.Event()

    def health_loop() -> None:
        while not stop.is_set():
            healths.append(printer.health().state)

    checker = threading.Thread(target=health_loop)
    checker.start()
    try:
        for _ in range(10):
            outcomes.append(printer.print_receipt(RECEIPT, deadline_s=5))
    finally:
        stop.set()
        checker.join()
    assert all(o.ok for o in outcomes) and len(sim.receipts) == 10
    assert healths and set(healths) == {DeviceState.OK}


def test_a_port_held_by_another_program_is_named(sim: EscposSimulator) -> None:
    other = serial.Serial(sim.device, exclusive=True)
    try:
        with pytest.raises(DeviceOffline, match="in use by another program"):
            SerialTransport(f"serial:{sim.device}", sim.device, io_timeout_s=1.0).open()
        assert EscposPrinter(url(sim, "serial")).health().state is DeviceState.OFFLINE
    finally:
        other.close()
    assert EscposPrinter(url(sim, "serial")).health().state is DeviceState.OK


def test_a_device_that_is_not_there_is_offline(tmp_path: Path) -> None:
    for kind in KINDS:
        missing = f"{kind}:{tmp_path / 'kiosk-thermal'}"
        assert EscposPrinter(missing).health().state is DeviceState.OFFLINE
    with pytest.raises(DeviceOffline):
        UsbLpTransport("usb:/nonexistent", "/nonexistent", io_timeout_s=1.0).open()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"baud": 12345}, "baud"), ({"flow": "dsrdtr"}, "flow control")],
)
def test_serial_settings_are_checked_when_the_driver_is_made(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        EscposPrinter("serial:/dev/kiosk-thermal", **kwargs)  # type: ignore[arg-type]


def test_simulator_runs_on_a_pty_as_a_module(tmp_path: Path) -> None:
    link = tmp_path / "kiosk-thermal"
    with subprocess.Popen(
        [
            sys.executable,
            "-m",
            "drivers.escpos.simulator",
            *("--out", str(tmp_path / "out"), "--pty", "--link", str(link)),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[3],
    ) as proc:
        try:
            assert proc.stdout is not None
            ready = json.loads(proc.stdout.readline())
            assert ready["url"] == f"serial:{link}" and link.resolve() == Path(ready["device"])
            outcome = EscposPrinter(ready["url"]).print_receipt(
                Receipt(lines=(ReceiptLine("排队号 A012"),), qr="Q-1"), deadline_s=5
            )
            assert outcome.ok
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=10) == 0
    [saved] = (tmp_path / "out").glob("*.txt")
    assert saved.read_text(encoding="utf-8").splitlines() == ["排队号 A012", "", "[QR] Q-1"]
    assert not link.exists()  # the simulator took its name away when it stopped
