"""The runtime rig the shell's tests share: a :class:`Runtime` on real drivers against their
simulators (the SAM reader's and the ESC/POS printer's, the private cupsd's queue, the demo
provider), a journal in the test's folder, frames kept, pumped by hand, and its clock pinned to a
Monday morning at the station."""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drivers.cups.printer import CupsPrinter
from drivers.escpos.printer import EscposPrinter
from drivers.escpos.simulator import EscposSimulator
from drivers.providers.demo import DemoProvider, generate_dataset
from drivers.sam.reader import SamReader
from drivers.sam.simulator import SamSimulator
from flows.catalog import Catalog, load_catalog
from flows.ports import Speech
from kiosk.fonts import find_cjk_font
from kiosk.i18n import Translator
from kiosk.shell.catalog_watch import DEMO_CATALOG
from kiosk.shell.devices import SpeechOff
from kiosk.shell.deviceset import Devices
from kiosk.shell.runtime import Frame, Runtime
from sandbox.cups import CupsSandbox
from statedir.journal import Journal


@dataclass
class Station:
    runtime: Runtime
    sam: SamSimulator
    printer: EscposSimulator
    frames: list[Frame]
    station_clock: Callable[[], dt.datetime]
    """The runtime's own clock (the station's zone), as it was before the test pinned it."""


@contextlib.contextmanager
def running_station(
    tmp_path: Path,
    cups: CupsSandbox,
    *,
    catalog: Catalog | None = None,
    speech: Speech | None = None,
    thermal_profile: str = "escpos-58",
    now: dt.datetime | None = None,
    **runtime_options: Any,
) -> Iterator[Station]:
    """A started runtime on ``catalog`` (the demo catalog by default) whose ``now`` is pinned to
    ``now``, by default Monday 2026-12-07 10:00 on the station's clock: every service and window
    open and the station staffed, whenever CI runs. ``runtime_options`` go to :class:`Runtime`."""
    sam = SamSimulator()
    sam.start()
    printer = EscposSimulator(profile=thermal_profile)
    printer.start()
    devices = Devices(
        SamReader(sam.port, poll_s=0.05),
        CupsPrinter(cups.queue, server=cups.server),
        EscposPrinter(printer.url),
        SpeechOff() if speech is None else speech,
        {"demo": DemoProvider(generate_dataset(tmp_path / "demo.sqlite3"))},
    )
    runtime = Runtime(
        catalog=load_catalog(DEMO_CATALOG) if catalog is None else catalog,
        devices=devices,
        journal=Journal(tmp_path / "journal.sqlite3"),
        translator=Translator(strict=True),
        font=find_cjk_font(),
        secret=b"k" * 32,
        health_interval_s=0.2,
        **runtime_options,
    )
    station = Station(runtime, sam, printer, [], runtime.now)
    monday = dt.datetime(2026, 12, 7, 10, 0, tzinfo=runtime.catalog.station.zone)
    pinned = monday if now is None else now
    runtime.now = lambda: pinned
    runtime.on_frame = station.frames.append
    runtime.start()
    try:
        yield station
    finally:
        runtime.stop()
        printer.stop()
        sam.stop()


def pump_until(runtime: Runtime, cond: Callable[[], bool], timeout: float = 10.0) -> None:
    """Pump the runtime's queue until ``cond`` holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        runtime.pump()
        time.sleep(0.02)
