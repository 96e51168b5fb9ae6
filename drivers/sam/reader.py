"""The SAM ID-card reader driver (pyserial): find → select → read, presence, reconnection.

One thread of its own polls the module and posts events on the flow's queue. The port is opened
exclusively with both ``timeout`` and ``write_timeout`` (a pyserial write blocks forever
otherwise), and the module must answer a status query before the reader counts as connected.
Garbage and partial frames are resynchronised on the preamble; a vanished USB-serial device is
reported (``ReaderDisconnected``) and reopened with backoff (a ``/dev/serial/by-id`` name keeps
working across replugs).

A card is announced once (``CardInserted``), read until it succeeds or ``read_attempts`` tries
fail (then one ``DeviceFault``: the resident must place it again), and not read again while it
stays. Some modules stop "finding" a card they have just read although it is still on the
reader, so a card that was read counts as present while either *find* or *select* answers yes;
removal needs ``REMOVAL_DEBOUNCE`` consecutive no's.

Modules differ (:mod:`drivers.sam.modules`): only status, find, select and read base are relied
on. The optional commands (SAM management information, appended address, baud rate) degrade:
a module that answers one with ``21``, ``91`` or silence is written down as lacking it for the
session of the port (:mod:`drivers.sam.capabilities`), the identity from the base read stands,
and health names what is missing. A module that does not answer at the configured rate is looked
for at the others the protocol offers, then asked to switch to the configured one (if it cannot,
the reader stays at the rate it found). A module silent on *find card* while no card is there is
told from a dead one by asking its status.

The wire logger ``kiosk.wire.sam`` records commands, lengths and status codes, never payloads.
"""

from __future__ import annotations

import enum
import errno
import logging
import termios
import threading
import time
from dataclasses import replace

import serial

from drivers.sam import protocol as p
from drivers.sam.capabilities import ModuleCapabilities
from flows.errors import DeviceError, DeviceOffline, DeviceTimeout
from flows.models import (
    CardInserted,
    CardRemoved,
    CardType,
    DeviceFault,
    DeviceHealth,
    DeviceState,
    Identity,
    IdentityRead,
    ReaderConnected,
    ReaderDisconnected,
)
from flows.ports import EventSink

log = logging.getLogger("kiosk.drivers.sam")
wire = logging.getLogger("kiosk.wire.sam")

REMOVAL_DEBOUNCE = 2  # consecutive "no card" answers before a card counts as removed
TIMEOUTS_TO_FAULT = 3  # consecutive unanswered commands before health says "no_answer"
STOP_JOIN_S = 2.0

_SERIAL_ERRORS = (serial.SerialException, OSError, termios.error, TypeError, ValueError)
"""What pyserial raises when the device goes away under it (EIO, a closed fd, a bad ioctl)."""


class PortUnavailable(DeviceOffline):
    """The serial device cannot be opened (not there, or held by another process)."""


class CardState(enum.Enum):
    NONE = "none"  # no card on the reader
    PENDING = "pending"  # announced, not read yet (or a read failed and will be tried again)
    READ = "read"  # read and passed on; stays until removed
    FAILED = "failed"  # every attempt failed; waits for removal


class SamReader:
    """Implements :class:`flows.ports.IdentityReader` for GA 467 SAM modules on a serial port."""

    def __init__(
        self,
        port: str,
        *,
        baud: int = 115200,
        name: str = "id_reader",
        poll_s: float = 0.1,
        io_timeout_s: float = 1.0,
        max_backoff_s: float = 5.0,
        read_attempts: int = 3,
        read_appended_address: bool = True,
        probe_baud: bool = True,
    ) -> None:
        self.name = name
        self.port = port
        self.baud = baud
        self.poll_s = poll_s
        self.io_timeout_s = io_timeout_s
        self.max_backoff_s = max_backoff_s
        self.read_attempts = max(1, read_attempts)
        self.read_appended_address = read_appended_address
        self.probe_baud = probe_baud  # look for the module at the other rates too
        self.line_baud = baud  # the rate the module answered at (the configured one, or not)
        self.capabilities = ModuleCapabilities()
        self.reads = 0  # identities passed on since start (tests, the bench)
        self._serial: serial.Serial | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._health: tuple[DeviceState, tuple[str, ...]] = (DeviceState.UNKNOWN, ("not_started",))
        self._card = CardState.NONE
        self._misses = 0
        self._attempts = 0
        self._timeouts = 0
        self._last_status = -1
        self._again = threading.Event()  # read_again: read the card on the reader once more

    # --- port ----------------------------------------------------------------------------------

    def start(self, sink: EventSink) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, args=(sink,), name=f"sam-{self.name}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=STOP_JOIN_S)
            if thread.is_alive():
                log.warning("reader %s: thread did not stop within %.1f s", self.name, STOP_JOIN_S)
        self._close()

    def read_again(self) -> None:
        """The card on the reader (read or failed before) is announced and read anew at the
        next poll; set from any thread, taken by the reader's own."""
        self._again.set()

    def health(self) -> DeviceHealth:
        state, reasons = self._health
        caps = self.capabilities
        if state in (DeviceState.OK, DeviceState.DEGRADED):
            reasons = reasons + caps.reasons()  # working, without some optional commands
        return DeviceHealth(
            self.name,
            "id_reader",
            state,
            reasons,
            {
                "port": self.port,
                "baud": self.line_baud,
                "configured_baud": self.baud,
                "card": self._card.value,
                "reads": self.reads,
                "last_sw3": f"{self._last_status:02X}" if self._last_status >= 0 else "",
                **caps.detail(),
            },
        )

    # --- the loop ------------------------------------------------------------------------------

    def _run(self, sink: EventSink) -> None:
        backoff = min(0.2, self.max_backoff_s)
        announced_down = False  # a ReaderDisconnected was posted and no ReaderConnected since
        try:
            while not self._stop.is_set():
                if self._serial is None:
                    try:
                        self._connect()
                    except Exception as err:
                        if not isinstance(err, DeviceError):  # a bug must not kill the watcher
                            log.exception("reader %s: unexpected error connecting", self.name)
                            self._close()
                            self._set(DeviceState.FAULT, "internal_error")
                        if not announced_down:
                            announced_down = True
                            reasons = self._health[1] or ("not_connected",)
                            sink(ReaderDisconnected(self.name, reasons[0]))
                        log.debug("reader %s not ready: %s", self.name, type(err).__name__)
                        self._stop.wait(backoff)
                        backoff = min(backoff * 2, self.max_backoff_s)
                        continue
                    backoff = min(0.2, self.max_backoff_s)
                    announced_down = False
                    sink(ReaderConnected(self.name))
                try:
                    self._poll(sink)
                except DeviceOffline as err:
                    log.warning("reader %s went away: %s", self.name, type(err).__name__)
                    self._lost(sink, "disconnected")
                    announced_down = True
                    continue
                except DeviceTimeout:
                    if self._stop.is_set():
                        break
                    self._timeouts += 1
                    if self._timeouts == TIMEOUTS_TO_FAULT:
                        log.warning("reader %s: the module stopped answering", self.name)
                        self._set(DeviceState.FAULT, "no_answer")
                        sink(DeviceFault(self.name, "error.sam.module", "no_answer"))
                except DeviceError as err:  # a frame error or an unexpected status: ask again
                    log.info("reader %s: %s", self.name, type(err).__name__)
                    if isinstance(err, p.SamModuleError):
                        self._set(DeviceState.FAULT, f"sam_status_{err.code:02x}")
                    self._flush()
                except Exception:  # the watcher must never die: log, reopen, go on
                    log.exception("reader %s: unexpected error; reopening", self.name)
                    self._lost(sink, "internal_error")
                    announced_down = True
                    continue
                self._stop.wait(self.poll_s)
        finally:
            self._close()

    def _connect(self) -> None:
        """Open the port and ask the module for its status: connected means it answered.

        A new session of the port: what the module can do is learnt afresh (a replug may bring
        another module). Then the rate is settled and the module's number asked for.
        """
        self.capabilities = ModuleCapabilities()
        rates = [self.line_baud, self.baud]
        if self.probe_baud:
            rates += sorted(p.BAUD_CODES, reverse=True)
        try:
            self.line_baud = self._find_rate(list(dict.fromkeys(rates)))
            if self.line_baud != self.baud:
                self._switch_baud()
            self._ask_module_id()
        except PortUnavailable:
            raise  # health says why already (busy, not there)
        except DeviceTimeout:
            self._close()
            self._set(DeviceState.FAULT, "no_answer")
            raise
        except DeviceOffline:
            self._close()
            self._set(DeviceState.OFFLINE, "not_connected")
            raise
        except DeviceError as err:
            self._close()
            code = getattr(err, "code", 0)
            self._set(DeviceState.FAULT, f"sam_status_{code:02x}")
            raise
        self._timeouts = 0
        self._set(DeviceState.OK)

    def _find_rate(self, rates: list[int]) -> int:
        """Open the port at each rate until the module answers its status there."""
        for baud in rates:
            self._open(baud)
            try:
                answer = self.exchange(p.SAM_STATUS)
            except DeviceTimeout:
                if baud == rates[-1] or self._stop.is_set():
                    raise
                self._close()
                continue
            if answer.status != p.SW_OK:
                raise p.status_error(answer.status)
            return baud
        raise DeviceTimeout("no rate to try")

    def _switch_baud(self) -> None:
        """The module answered at another rate than configured: ask it to switch (optional)."""
        answer = self._optional("set_baud", p.baud_command(self.baud), card_item=False)
        if answer is None:
            log.info("reader %s: staying at %d baud", self.name, self.line_baud)
            return
        port = self._serial
        if port is None:
            raise DeviceOffline("port closed")
        old = self.line_baud
        try:
            port.baudrate = self.baud
            self.line_baud = self.baud
            self._expect(self.exchange(p.SAM_STATUS), p.SW_OK)
        except DeviceTimeout:  # it said yes but does not answer at the new rate: go back
            port.baudrate = self.line_baud = old
            self._expect(self.exchange(p.SAM_STATUS), p.SW_OK)
            self.capabilities.missing("set_baud", "silence")
        except _SERIAL_ERRORS as err:
            raise DeviceOffline(f"{self.port}: {type(err).__name__}") from err
        log.info("reader %s: switched the module from %d to %d baud", self.name, old, self.baud)

    def _ask_module_id(self) -> None:
        answer = self._optional("sam_id", p.SAM_ID, card_item=False)
        if answer is not None:
            self.capabilities.module_id = answer.data[:16].hex()

    def _optional(self, name: str, command: tuple[int, int], *, card_item: bool) -> p.Frame | None:
        """Ask an optional command: its answer, or None when the module lacks it (learnt for
        the session of the port, never asked again) or the card holds no such item."""
        if self.capabilities.lacks(name):
            return None
        try:
            answer = self.exchange(command)
        except DeviceTimeout:
            if self._stop.is_set():
                raise
            log.info("reader %s: no answer to the optional %s; not asked again", self.name, name)
            self.capabilities.missing(name, "silence")
            return None
        if self.capabilities.judge(name, answer.status, card_item=card_item):
            return answer
        return None

    def _lost(self, sink: EventSink, reason: str) -> None:
        self._close()
        self._set(DeviceState.OFFLINE, reason)
        if self._card is not CardState.NONE:
            sink(CardRemoved(self.name))  # the session must not outlive the reader's word
        self._card = CardState.NONE
        self._misses = 0
        sink(ReaderDisconnected(self.name, reason))

    def _poll(self, sink: EventSink) -> None:
        present = self._present()
        self._timeouts = 0
        if self._health[0] is not DeviceState.OK:
            self._set(DeviceState.OK)
        if not present:
            if self._card is CardState.NONE:
                self._again.clear()  # nothing to read again; a card placed later is new anyway
                return
            self._misses += 1
            if self._misses >= REMOVAL_DEBOUNCE:
                self._card, self._misses = CardState.NONE, 0
                sink(CardRemoved(self.name))
            return
        self._misses = 0
        if self._again.is_set():  # a new session wants the card that lies here
            self._again.clear()
            self._card = CardState.NONE
        if self._card is CardState.NONE:
            self._card, self._attempts = CardState.PENDING, 0
            sink(CardInserted(self.name))
        if self._card is CardState.PENDING:
            self._try_read(sink)

    def _present(self) -> bool:
        try:
            found = self.exchange(p.FIND_CARD)
        except DeviceTimeout:
            if self._stop.is_set():
                raise
            # some modules say nothing while no card is there: alive, if it answers its status
            self._expect(self.exchange(p.SAM_STATUS), p.SW_OK)
            self.capabilities.no_card_answer = "silence"
            return self._card in (CardState.READ, CardState.FAILED) and self._still_selectable()
        if found.status == p.SW_CARD_FOUND:
            return True
        if found.status != p.CardNotFound.code:
            raise p.status_error(found.status)
        self.capabilities.no_card_answer = "80"
        return self._card in (CardState.READ, CardState.FAILED) and self._still_selectable()

    def _still_selectable(self) -> bool:
        return self.exchange(p.SELECT_CARD).status == p.SW_OK

    def _try_read(self, sink: EventSink) -> None:
        try:
            identity = self._read_identity()
        except (DeviceOffline, DeviceTimeout):
            raise
        except DeviceError as err:
            # a card pulled mid-read, or a bad card: never pass half an identity on
            self._attempts += 1
            log.info(
                "reader %s: read attempt %d failed: %s",
                self.name,
                self._attempts,
                type(err).__name__,
            )
            if self._attempts >= self.read_attempts:
                self._card = CardState.FAILED
                sink(DeviceFault(self.name, err.translation_key, type(err).__name__))
            return
        self._card = CardState.READ
        self.reads += 1
        sink(IdentityRead(self.name, identity))

    def _read_identity(self) -> Identity:
        self._expect(self.exchange(p.SELECT_CARD), p.SW_OK)
        base = self._expect(self.exchange(p.READ_BASE), p.SW_OK)
        identity = p.parse_base_info(base.data)
        if self.read_appended_address and identity.card_type is CardType.RESIDENT:
            # optional: without it the address printed on the card (from the base read) stands
            extra = self._optional("appended_address", p.READ_ADDRESS, card_item=True)
            if extra is not None:
                identity = replace(identity, address=p.parse_appended_address(extra.data))
        return identity

    @staticmethod
    def _expect(answer: p.Frame, status: int) -> p.Frame:
        if answer.status != status:
            raise p.status_error(answer.status)
        return answer

    # --- the wire ------------------------------------------------------------------------------

    def exchange(self, command: tuple[int, int], data: bytes = b"") -> p.Frame:
        """Send one command and wait for its answer, within the I/O timeout.

        Raises :class:`DeviceOffline` when the device is gone, :class:`DeviceTimeout` when no
        whole answer came in time, :class:`drivers.sam.protocol.FrameError` for a corrupted one.
        """
        port = self._serial
        if port is None:
            raise DeviceOffline("port not open")
        frame = p.encode_command(command, data)
        wire.debug("-> %02X %02X len=%d", command[0], command[1], len(frame))
        decoder = p.FrameDecoder()
        # the longest answer (base information, 1,295 bytes) takes 1.35 s on the line at 9600
        allowance = (p.READ_ANSWER_BYTES if command[0] == 0x30 else 64) * 10 / self.line_baud
        deadline = time.monotonic() + self.io_timeout_s + allowance
        try:
            port.reset_input_buffer()  # a late answer to an earlier command is not this one's
            port.write(frame)
            while True:
                try:
                    answer = decoder.next_frame()
                except p.FrameError:
                    wire.debug("<- corrupted frame (skipped %d bytes)", decoder.skipped)
                    raise
                if answer is not None:
                    if decoder.skipped:
                        wire.debug("<- resynchronised, skipped %d bytes", decoder.skipped)
                    self._last_status = answer.status
                    wire.debug(
                        "<- SW %02X %02X %02X len=%d",
                        answer.body[0] if answer.body else 0,
                        answer.body[1] if len(answer.body) > 1 else 0,
                        answer.status & 0xFF,
                        len(answer.body),
                    )
                    return answer
                if time.monotonic() > deadline or self._stop.is_set():
                    wire.debug("<- no answer (%d bytes pending)", decoder.pending())
                    raise DeviceTimeout(f"no answer to {command[0]:02X} {command[1]:02X}")
                waiting = port.in_waiting
                decoder.feed(port.read(max(1, min(waiting, 4096))))
        except serial.SerialTimeoutException as err:
            raise DeviceTimeout("write timed out") from err
        except _SERIAL_ERRORS as err:
            raise DeviceOffline(f"{self.port}: {type(err).__name__}") from err

    def _open(self, baud: int) -> None:
        try:
            self._serial = serial.Serial(
                self.port,
                baud,
                timeout=min(0.05, self.io_timeout_s),
                write_timeout=self.io_timeout_s,
                exclusive=True,
            )
        except (serial.SerialException, OSError, ValueError) as err:
            busy = getattr(err, "errno", None) in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EBUSY)
            if busy:
                self._set(DeviceState.FAULT, "port_busy")
            else:
                self._set(DeviceState.OFFLINE, "not_connected")
            raise PortUnavailable(f"cannot open {self.port}") from err

    def _close(self) -> None:
        port, self._serial = self._serial, None
        if port is not None:
            try:
                port.close()
            except _SERIAL_ERRORS:
                log.debug("closing %s failed", self.port)

    def _flush(self) -> None:
        port = self._serial
        if port is not None:
            try:
                port.reset_input_buffer()
            except _SERIAL_ERRORS:
                log.debug("flushing %s failed", self.port)

    def _set(self, state: DeviceState, *reasons: str) -> None:
        self._health = (state, tuple(reasons))
