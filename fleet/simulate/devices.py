"""What simulated terminals say of their devices: all well, or — for every ``fault_every``-th
terminal — the A4 printer jammed, so that a console's "needs attention" view has a known answer
(``sim-00000``, ``sim-00100``, ... with ``fault_every=100``)."""

from __future__ import annotations

from fleet.protocol.models import STATION_DEVICES, DeviceReport
from flows.models import DeviceState

HEALTHY = DeviceReport(state=DeviceState.OK, reasons=[])
JAMMED = DeviceReport(state=DeviceState.FAULT, reasons=["paper_jam"])


def faulty(index: int, fault_every: int) -> bool:
    return fault_every > 0 and index % fault_every == 0


def station_devices(station: str, fault_every: int) -> dict[str, DeviceReport]:
    """The devices of the terminal named ``{prefix}-{index:05d}``."""
    devices = {name: HEALTHY for name in STATION_DEVICES}  # the names the real drivers report
    if faulty(int(station.rsplit("-", 1)[1]), fault_every):
        devices["a4_printer"] = JAMMED
    return devices
