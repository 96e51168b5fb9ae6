"""The thermal printer driver: python-escpos composes the bytes, the transport and status are ours.

python-escpos' transports can block forever (its USB class has no timeout by default) and its
``paper_status()`` (3.1) reports an unanswered query, an empty read, as 2 "paper adequate": a
printer that is off or hung would look fine. So this driver keeps only its command composition
(``escpos.printer.Dummy``) and
talks to the printer itself through :mod:`drivers.escpos.transports` (TCP, serial, USB printer
class; deadlines on every call), with DLE EOT status queries before and after every job and
three-way answers: fine, a named problem, or unknown (silence is never "fine"). The device is
opened for each job or health check and closed after it, so an unplugged printer that comes back
is found again, and one lock keeps the health loop and a print from meeting on a device that
only one can open.

Chinese text goes in GB18030 between explicit Chinese mode on and off (``FS &`` / ``FS .``):
python-escpos has no CJK code page and would turn Chinese punctuation into ``?``. Being explicit
also makes the bytes mean the same on the many Chinese printers that start in Chinese mode.

What differs between models is a :class:`~drivers.escpos.profiles.PrinterProfile` (from
python-escpos' capabilities database and the station's configuration): the paper width, to which
every line is wrapped here (:mod:`drivers.escpos.layout`) rather than by the printer mid-word;
the QR code, native (``GS ( k``) or as a raster image (``GS v 0``) for models that ignore
``GS ( k``; and status. A printer that does not answer ``DLE EOT`` (declared ``none``, or with
``auto`` one that has never answered) prints, and its health is "unknown" (``no_status``), never
"fine" and never "paper out"; a printer that answers and then falls silent is refused as before
(``no_status_answer``): it is likely off or hung.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from drivers.escpos import importing_escpos
from drivers.escpos.layout import text_width, wrap
from drivers.escpos.profiles import DEFAULT_PROFILE, PrinterProfile
from drivers.escpos.transports import Flow, Transport, make_transport, parse_url
from flows.errors import DeviceOffline, DeviceTimeout
from flows.models import (
    Align,
    DeviceHealth,
    DeviceState,
    JobState,
    PrintOutcome,
    Receipt,
    ReceiptLine,
)

with importing_escpos():
    from escpos.exceptions import ImageWidthError
    from escpos.printer import Dummy

log = logging.getLogger("kiosk.drivers.escpos")
wire = logging.getLogger("kiosk.wire.escpos")

FS_CHINESE_ON = b"\x1c\x26"
FS_CHINESE_OFF = b"\x1c\x2e"
DLE_EOT = b"\x10\x04"


@dataclass(frozen=True, slots=True)
class PrinterStatus:
    """The answers to DLE EOT 1–4; ``None`` where the printer did not answer."""

    printer: int | None
    offline: int | None
    error: int | None
    paper: int | None

    @property
    def answered(self) -> bool:
        return None not in (self.printer, self.offline, self.error, self.paper)

    def health(self, name: str) -> DeviceHealth:
        if not self.answered:
            return DeviceHealth(name, "thermal_printer", DeviceState.UNKNOWN, ("no_status_answer",))
        assert self.offline is not None and self.error is not None and self.paper is not None
        reasons: list[str] = []
        if self.offline & 0x04:
            reasons.append("cover_open")
        if self.paper & 0x60 or self.offline & 0x20:
            reasons.append("paper_out")
        if self.error & 0x08:
            reasons.append("cutter_error")
        if self.error & 0x60:
            reasons.append("printer_error")
        if reasons:
            return DeviceHealth(name, "thermal_printer", DeviceState.FAULT, tuple(reasons))
        if self.printer is not None and self.printer & 0x08:
            return DeviceHealth(name, "thermal_printer", DeviceState.FAULT, ("offline",))
        if self.paper & 0x0C:
            return DeviceHealth(name, "thermal_printer", DeviceState.DEGRADED, ("paper_low",))
        return DeviceHealth(name, "thermal_printer", DeviceState.OK)


_BLIND = "no_status"  # the printer does not report status: it prints, its state is unknown


def _blind(name: str, why: str) -> DeviceHealth:
    return DeviceHealth(
        name, "thermal_printer", DeviceState.UNKNOWN, (_BLIND,), {"status_support": why}
    )


def _chinese(text: str) -> bytes:
    return FS_CHINESE_ON + text.encode("gb18030") + FS_CHINESE_OFF


def _dummy(profile: PrinterProfile) -> Dummy:
    d = Dummy(profile=profile.model)
    d.profile = profile.escpos_profile()  # with the paper's width, which centres raster images
    return d


def _line_texts(line: ReceiptLine, columns: int) -> list[str]:
    if line.rule:
        mark = line.text[:1] or "-"
        return [mark * (columns // max(1, text_width(mark)))]
    return wrap(line.text, columns, indent=line.align is Align.LEFT)


def _qr_raster(data: str, profile: PrinterProfile) -> bytes:
    """The QR code as a ``GS v 0`` raster image, centred: the largest modules (up to 6 dots)
    that fit the paper."""
    for size in range(6, 0, -1):
        d = _dummy(profile)
        try:
            d.qr(data, native=False, size=size, center=True)
        except ImageWidthError:
            continue
        return bytes(d.output)
    return _qr_text(data, profile)  # longer than any QR code the paper can hold


def _qr_text(data: str, profile: PrinterProfile) -> bytes:
    """A model that prints no QR code at all: the code's text, for a person to type."""
    return b"".join(_chinese(t) + b"\n" for t in wrap(data, profile.columns))


def render_receipt(receipt: Receipt, profile: PrinterProfile = DEFAULT_PROFILE) -> bytes:
    """The exact bytes of a receipt for ``profile``: init, styled lines wrapped to the paper's
    width in Chinese mode, the QR code (native, raster or its text), cut (or feed, uncut)."""
    d = _dummy(profile)
    d.hw("INIT")
    for line in receipt.lines:
        d.set(
            align=line.align.value,
            bold=line.bold,
            double_height=line.double,
            double_width=line.double,
            normal_textsize=not line.double,
        )
        columns = profile.columns // (2 if line.double else 1)
        d._raw(b"".join(_chinese(text) + b"\n" for text in _line_texts(line, columns)))
    if receipt.qr is not None:
        d.set(align=Align.CENTER.value, bold=False, normal_textsize=True)
        if profile.qr == "native":
            d.qr(receipt.qr, native=True, size=6)
            d._raw(b"\n")
        elif profile.qr == "raster":
            d._raw(_qr_raster(receipt.qr, profile))
        else:
            d._raw(_qr_text(receipt.qr, profile))
    if receipt.cut:
        d.cut()
    return bytes(d.output)


class EscposPrinter:
    """Implements :class:`flows.ports.ThermalPrinter` for ESC/POS printers.

    ``url`` is ``tcp:HOST:PORT`` (port 9100), ``serial:/dev/…`` (``baud`` and ``flow`` must match
    the printer) or ``usb:/dev/…`` (the usblp device node); see :mod:`drivers.escpos.transports`.
    ``profile`` is the model's behaviour (:func:`drivers.escpos.profiles.load_profile`).
    """

    def __init__(
        self,
        url: str,
        *,
        name: str = "thermal_printer",
        io_timeout_s: float = 2.0,
        baud: int = 9600,
        flow: Flow = "none",
        profile: PrinterProfile = DEFAULT_PROFILE,
    ):
        self.name = name
        self.profile = profile
        self.url = url
        self.endpoint = parse_url(url)
        self.io_timeout_s = io_timeout_s
        self.status_timeout_s = min(io_timeout_s, 0.8)
        self.baud = baud
        self.flow = flow
        make_transport(url, io_timeout_s=io_timeout_s, baud=baud, flow=flow)  # settings checked now
        self._device = threading.Lock()
        self._last = DeviceHealth(name, "thermal_printer", DeviceState.UNKNOWN, ("not_checked",))
        self._answered = False  # has it ever answered DLE EOT? (status "auto" learns from it)

    # --- port ----------------------------------------------------------------------------------

    def health(self) -> DeviceHealth:
        if not self._device.acquire(timeout=self.io_timeout_s):
            return self._last  # a job has the device: what the job last saw is the news
        try:
            with self._connect() as conn:
                self._last = self._check(conn)
        except DeviceOffline:
            self._last = DeviceHealth(
                self.name, "thermal_printer", DeviceState.OFFLINE, ("unreachable",)
            )
        finally:
            self._device.release()
        return self._last

    def print_receipt(self, receipt: Receipt, *, deadline_s: float) -> PrintOutcome:
        data = render_receipt(receipt, self.profile)
        deadline = time.monotonic() + deadline_s
        if not self._device.acquire(timeout=max(0.0, deadline_s)):
            return PrintOutcome(
                JobState.FAILED, reasons=("busy",), translation_key="error.thermal.timeout"
            )
        try:
            with self._connect() as conn:
                before = self._check(conn)
                self._last = before
                blind = _BLIND in before.reasons  # a printer that cannot say: print anyway
                if not before.usable and not blind:
                    return self._refused(before)
                conn._raw(data, deadline=deadline)
                wire.debug("-> receipt %d bytes", len(data))
                after = self._check(conn)
                self._last = after
        except DeviceOffline:
            return PrintOutcome(
                JobState.FAILED, reasons=("unreachable",), translation_key="error.thermal.offline"
            )
        except DeviceTimeout:
            return PrintOutcome(
                JobState.FAILED, reasons=("timeout",), translation_key="error.thermal.timeout"
            )
        finally:
            self._device.release()
        if after.state is DeviceState.FAULT or (
            after.state is DeviceState.UNKNOWN and _BLIND not in after.reasons
        ):
            return self._refused(after)
        if _BLIND in after.reasons:
            return PrintOutcome(JobState.COMPLETED, reasons=("status_unknown",))
        return PrintOutcome(JobState.COMPLETED, reasons=after.reasons)

    # --- the wire ------------------------------------------------------------------------------

    def _refused(self, health: DeviceHealth) -> PrintOutcome:
        reason = health.reasons[0] if health.reasons else health.state.value
        key = {
            "paper_out": "error.thermal.paper_out",
            "cover_open": "error.thermal.cover_open",
            "no_status_answer": "error.thermal.no_answer",
        }.get(reason, "error.thermal.fault")
        return PrintOutcome(JobState.FAILED, reasons=health.reasons, translation_key=key)

    def _connect(self) -> Transport:
        """A transport that ``with`` opens (DeviceOffline) and closes."""
        return make_transport(
            self.url, io_timeout_s=self.io_timeout_s, baud=self.baud, flow=self.flow
        )

    def _check(self, conn: Transport) -> DeviceHealth:
        """Health from DLE EOT, as the profile says to read it."""
        if self.profile.status == "none":
            return _blind(self.name, "declared")
        status = self._status(conn)
        if any(a is not None for a in (status.printer, status.offline, status.error, status.paper)):
            self._answered = True
        if not status.answered and self.profile.status == "auto" and not self._answered:
            return _blind(self.name, "never_answered")
        return status.health(self.name)

    def _status(self, conn: Transport) -> PrinterStatus:
        answers: list[int | None] = [None, None, None, None]
        for n in (1, 2, 3, 4):
            answers[n - 1] = conn.query(DLE_EOT + bytes([n]), self.status_timeout_s)
            if answers[n - 1] is None:
                break  # a silent printer stays silent: one deadline, not four, before "unknown"
        status = PrinterStatus(*answers)
        wire.debug("status %s", answers)
        return status
