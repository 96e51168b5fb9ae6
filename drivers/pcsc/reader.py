"""PC/SC smart-card reader with supervised monitoring that survives unplugs and pcscd restarts.

pyscard's ``CardMonitor``/``ReaderMonitor`` threads print a traceback and die for good when pcscd
restarts or a reader goes away, without telling their observers. This driver owns its monitoring
instead: one worker with its own context, waiting on card events with a short timeout so it can
be stopped, rebuilding its context with backoff on the service errors (``SCARD_E_NO_SERVICE``,
``SCARD_E_SERVICE_STOPPED``, ``SCARD_F_COMM_ERROR`` …), rescanning readers by name prefix,
releasing every connection, and an overall deadline on each read (a stuck read is abandoned, the
card reset and the context rebuilt). The wire logger ``kiosk.wire.pcsc`` logs APDU headers and
status words, never data.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from smartcard import scard

from drivers.pcsc import apdu as iso
from drivers.pcsc.profiles import SOCIAL_SECURITY, CardProfile
from drivers.pcsc.reading import ProfileReading
from flows.errors import DeviceTimeout, ProtocolError
from flows.models import (
    CardInserted,
    CardRemoved,
    DeviceFault,
    DeviceHealth,
    DeviceState,
    Identity,
    IdentityRead,
    ReaderConnected,
    ReaderDisconnected,
)
from flows.ports import EventSink

log = logging.getLogger("kiosk.drivers.pcsc")
wire = logging.getLogger("kiosk.wire.pcsc")

SERVICE_ERRORS = {
    scard.SCARD_E_NO_SERVICE,
    scard.SCARD_E_SERVICE_STOPPED,
    scard.SCARD_F_COMM_ERROR,
    scard.SCARD_E_INVALID_HANDLE,
    scard.SCARD_E_NO_READERS_AVAILABLE,
    scard.SCARD_E_READER_UNAVAILABLE,
    scard.SCARD_E_UNKNOWN_READER,
}


def _u32(hr: int) -> int:
    return hr & 0xFFFFFFFF


def _is(hr: int, code: int) -> bool:
    return _u32(hr) == _u32(code)


class PcscError(ProtocolError):
    translation_key = "error.card.failed"


class PcscReader:
    """Implements :class:`flows.ports.IdentityReader` for contact cards through pcscd."""

    def __init__(
        self,
        *,
        reader_prefix: str = "",
        name: str = "smartcard_reader",
        profile: CardProfile = SOCIAL_SECURITY,
        wait_ms: int = 500,
        read_deadline_s: float = 5.0,
        max_backoff_s: float = 5.0,
    ) -> None:
        self.name = name
        self.reader_prefix = reader_prefix
        self.profile = profile
        self.reading = ProfileReading(profile)  # learns which SELECT form the cards here take
        self.wait_ms = wait_ms
        self.read_deadline_s = read_deadline_s
        self.max_backoff_s = max_backoff_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._state = DeviceState.UNKNOWN
        self._reasons: tuple[str, ...] = ("not_started",)
        self.reads = 0
        self.contexts = 0
        self.last_protocol = ""  # "T=0" or "T=1": what the last card was read with
        self._again = threading.Event()  # read_again: read the card in the reader once more

    # --- port ----------------------------------------------------------------------------------

    def start(self, sink: EventSink) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(sink,), name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=3)

    def read_again(self) -> None:
        """The card in the reader is announced and read anew within ``wait_ms``."""
        self._again.set()

    def health(self) -> DeviceHealth:
        detail = {
            "profile": self.profile.name,
            "select": list(self.reading.select_order),
            "protocol": self.last_protocol,
        }
        return DeviceHealth(self.name, "smartcard_reader", self._state, self._reasons, detail)

    # --- supervision ---------------------------------------------------------------------------

    def _run(self, sink: EventSink) -> None:
        backoff = 0.2
        connected = False
        while not self._stop.is_set():
            hr, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
            if not _is(hr, scard.SCARD_S_SUCCESS):
                self._set(DeviceState.OFFLINE, "no_service")
                if connected:
                    connected = False
                    sink(ReaderDisconnected(self.name, "no_service"))
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff_s)
                continue
            self.contexts += 1
            try:
                connected = self._watch(ctx, sink, connected)
                backoff = 0.2
            except Exception:  # the watcher must never die: log, rebuild, go on
                log.exception("pc/sc watcher failed; rebuilding the context")
            finally:
                scard.SCardReleaseContext(ctx)
            if not self._stop.is_set():
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff_s)

    def _readers(self, ctx: int) -> list[str]:
        hr, readers = scard.SCardListReaders(ctx, [])
        if not _is(hr, scard.SCARD_S_SUCCESS):
            return []
        return [r for r in readers if r.startswith(self.reader_prefix)]

    def _watch(self, ctx: int, sink: EventSink, connected: bool) -> bool:
        """Wait on card events until the service goes away; returns whether a reader was seen."""
        readers = self._readers(ctx)
        if not readers:
            self._set(DeviceState.OFFLINE, "no_reader")
            if connected:
                sink(ReaderDisconnected(self.name, "no_reader"))
            return False
        if not connected:
            sink(ReaderConnected(self.name))
        self._set(DeviceState.OK)
        states: list[Any] = [(r, scard.SCARD_STATE_UNAWARE) for r in readers]
        present = {r: False for r in readers}
        while not self._stop.is_set():
            if self._again.is_set():  # a new session wants the card that is in the reader
                self._again.clear()
                for reader in [r for r, there in present.items() if there]:
                    self._read(ctx, reader, sink)
            hr, new_states = scard.SCardGetStatusChange(ctx, self.wait_ms, states)
            if _is(hr, scard.SCARD_E_TIMEOUT):
                continue
            if not _is(hr, scard.SCARD_S_SUCCESS):
                reason = "no_service" if _u32(hr) in {_u32(c) for c in SERVICE_ERRORS} else "error"
                log.warning("pc/sc status change failed: %s", scard.SCardGetErrorMessage(hr))
                self._set(DeviceState.OFFLINE, reason)
                for reader, was in present.items():
                    if was:
                        sink(CardRemoved(self.name))
                        present[reader] = False
                sink(ReaderDisconnected(self.name, reason))
                return False
            states = []
            for reader, event_state, _atr in new_states:
                states.append((reader, event_state))
                now = bool(event_state & scard.SCARD_STATE_PRESENT)
                if now and not present[reader]:
                    present[reader] = True
                    self._read(ctx, reader, sink)
                elif not now and present[reader]:
                    present[reader] = False
                    sink(CardRemoved(self.name))
        return True

    # --- reading -------------------------------------------------------------------------------

    def _read(self, ctx: int, reader: str, sink: EventSink) -> None:
        sink(CardInserted(self.name))
        box: dict[str, Any] = {}

        def work() -> None:
            try:
                box["identity"] = self.read_identity(ctx, reader)
            except BaseException as err:  # handed back below
                box["error"] = err

        worker = threading.Thread(target=work, name=f"{self.name}-read", daemon=True)
        started = time.monotonic()
        worker.start()
        worker.join(self.read_deadline_s)
        if worker.is_alive():
            err: BaseException = DeviceTimeout(f"reading took over {self.read_deadline_s:g} s")
        else:
            err = box.get("error")  # type: ignore[assignment]
        if err is None:
            self.reads += 1
            wire.debug("read in %.0f ms", (time.monotonic() - started) * 1000)
            sink(IdentityRead(self.name, box["identity"]))
            return
        key = getattr(err, "translation_key", "error.card.failed")
        log.info("card read failed: %s", type(err).__name__)
        sink(DeviceFault(self.name, key, type(err).__name__))

    def read_identity(self, ctx: int, reader: str) -> Identity:
        hr, card, protocol = scard.SCardConnect(
            ctx, reader, scard.SCARD_SHARE_SHARED, scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1
        )
        if not _is(hr, scard.SCARD_S_SUCCESS):
            raise PcscError(f"connect failed: {scard.SCardGetErrorMessage(hr)}")
        pci = scard.SCARD_PCI_T0 if protocol == scard.SCARD_PROTOCOL_T0 else scard.SCARD_PCI_T1
        self.last_protocol = "T=0" if protocol == scard.SCARD_PROTOCOL_T0 else "T=1"
        try:

            def transmit(command: bytes) -> tuple[bytes, int, int]:
                hr, response = scard.SCardTransmit(card, pci, list(command))
                if not _is(hr, scard.SCARD_S_SUCCESS):
                    raise PcscError(f"transmit failed: {scard.SCardGetErrorMessage(hr)}")
                if len(response) < 2:
                    raise iso.MalformedResponse("answer shorter than a status word")
                wire.debug(
                    "-> %s <- SW %02X%02X len=%d",
                    command[:4].hex(),
                    response[-2],
                    response[-1],
                    len(response) - 2,
                )
                return bytes(response[:-2]), response[-2], response[-1]

            return self.reading.identity(transmit)
        finally:
            scard.SCardDisconnect(card, scard.SCARD_LEAVE_CARD)

    def _set(self, state: DeviceState, *reasons: str) -> None:
        self._state = state
        self._reasons = tuple(reasons)
