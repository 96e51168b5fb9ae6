"""The station's devices as the runtime holds them: one driver per port (built by
:mod:`kiosk.shell.devices` from the configuration, or by tests from simulators)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from flows.ports import A4Printer, DocumentProvider, IdentityReader, Speech, ThermalPrinter


@dataclass
class Devices:
    id_reader: IdentityReader
    a4_printer: A4Printer
    thermal_printer: ThermalPrinter
    speech: Speech
    providers: dict[str, DocumentProvider] = field(default_factory=dict)
    closers: list[Callable[[], None]] = field(default_factory=list)
    smartcard_reader: IdentityReader | None = None

    def readers(self) -> list[IdentityReader]:
        return [self.id_reader] + ([self.smartcard_reader] if self.smartcard_reader else [])

    def all(self) -> list[IdentityReader | A4Printer | ThermalPrinter | Speech | DocumentProvider]:
        return [
            *self.readers(),
            self.a4_printer,
            self.thermal_printer,
            self.speech,
            *self.providers.values(),
        ]
