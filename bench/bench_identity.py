"""``identity.sam_read_to_wire``: card placed on the reader → identity event, over the time the
frames exchanged would take on the wire at the configured baud rate (bytes × 10 / baud).

The baseline is computed from the exact frames of one read (find, select, read base information)
at 115200 baud; the measurement is the real driver polling the simulator on a pseudo-terminal
with its default poll interval. Goal ≤ 1.5. Median of the rounds.
"""

from __future__ import annotations

import queue
import statistics
import time

from drivers.sam import protocol as p
from drivers.sam.cards import encode_base_info
from drivers.sam.reader import SamReader
from drivers.sam.simulator import SamSimulator
from flows.models import CardRemoved, DeviceEvent, IdentityRead
from flows.synthetic import DEMO_RESIDENT

BAUD = 115200


def wire_seconds(baud: int = BAUD) -> float:
    frames = [
        p.encode_command(p.FIND_CARD),
        p.encode_response(p.SW_CARD_FOUND, bytes(4)),
        p.encode_command(p.SELECT_CARD),
        p.encode_response(p.SW_OK, bytes(8)),
        p.encode_command(p.READ_BASE),
        p.encode_response(p.SW_OK, encode_base_info(DEMO_RESIDENT)),
    ]
    return sum(len(f) for f in frames) * 10 / baud


def wait_for(events: queue.Queue[DeviceEvent], kind: type) -> float:
    while True:
        event = events.get(timeout=10)
        if isinstance(event, kind):
            return time.perf_counter()


def pcsc_read_ms(rounds: int) -> float | None:
    """Virtual card inserted on vpcd → identity event through a real pcscd; median, ms."""
    import tempfile
    from pathlib import Path

    from drivers.pcsc.reader import PcscReader
    from drivers.pcsc.vicc import VirtualCard
    from flows.models import ReaderConnected
    from sandbox.pcscd import Pcscd, usable

    if usable():
        print(f"identity.pcsc_read_ms skipped: {usable()}")
        return None
    with tempfile.TemporaryDirectory() as tmp:
        daemon = Pcscd(Path(tmp))
        daemon.start()
        events: queue.Queue[DeviceEvent] = queue.Queue()
        reader = PcscReader(wait_ms=200)
        reader.start(events.put)
        samples = []
        try:
            wait_for(events, ReaderConnected)
            for _ in range(rounds):
                card = VirtualCard(daemon.port, DEMO_RESIDENT)
                t0 = time.perf_counter()
                card.insert()
                samples.append(wait_for(events, IdentityRead) - t0)
                card.remove()
                wait_for(events, CardRemoved)
        finally:
            reader.stop()
            daemon.stop()
    return round(statistics.median(samples) * 1000, 1)


def run(rounds: int = 15) -> dict[str, float]:
    sim = SamSimulator()
    sim.start()
    events: queue.Queue[DeviceEvent] = queue.Queue()
    reader = SamReader(sim.port, baud=BAUD)
    reader.start(events.put)
    samples = []
    try:
        time.sleep(0.5)
        for _ in range(rounds):
            t0 = time.perf_counter()
            sim.insert(DEMO_RESIDENT)
            samples.append(wait_for(events, IdentityRead) - t0)
            sim.remove()
            wait_for(events, CardRemoved)
    finally:
        reader.stop()
        sim.stop()
    figures = {"identity.sam_read_to_wire": round(statistics.median(samples) / wire_seconds(), 3)}
    pcsc = pcsc_read_ms(rounds)
    if pcsc is not None:
        figures["identity.pcsc_read_ms"] = pcsc
    return figures
