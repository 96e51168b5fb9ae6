"""How ESC/POS bytes reach a thermal printer: TCP (port 9100), a serial line, or a USB printer.

Each transport has one raw method, ``_raw(msg)``, that sends bytes within a deadline, and one
status query, ``query(request, timeout_s)``, that sends a real-time request (``DLE EOT n``) and
returns the one byte the printer answers, or ``None`` when it stays silent. Nothing blocks
without a deadline, and what the socket, pyserial or the kernel raises becomes
:class:`DeviceOffline` (unplugged, switched off, unreachable) or :class:`DeviceTimeout` (it took
too long) here, chained.

- ``tcp:HOST:PORT``: a network printer (raw port 9100).
- ``serial:/dev/kiosk-thermal``: RS-232 or a USB-serial bridge, through pyserial, opened
  exclusively; the baud rate and the flow control (``none``, ``rtscts``, ``xonxoff``) must match
  the printer's settings (its self-test page lists them). Linux has no DTR/DSR flow control: a
  printer set to DTR/DSR must be switched to RTS/CTS or XON/XOFF.
- ``usb:/dev/kiosk-thermal``: the USB printer class as Linux's ``usblp`` exposes it
  (``/dev/usb/lp0``): a character device that is read and written like a file. Reads return what
  the printer sends on its bulk-in endpoint, so real-time status works on bidirectional printers;
  a unidirectional one cannot answer (``EINVAL`` on read: "no status answer", never "fine").
  ``usb:VENDOR:PRODUCT`` (python-escpos' libusb transport) is not offered: usblp owns the device.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import socket
import termios
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from types import TracebackType
from typing import Literal

from flows.errors import ConfigError, DeviceOffline, DeviceTimeout

try:  # pyserial is a dependency of the project, but only the serial transport needs it
    import serial

    SERIAL_MISSING: ImportError | None = None
except ImportError as _err:  # pragma: no cover - reported when a serial printer is configured
    SERIAL_MISSING = _err

wire = logging.getLogger("kiosk.wire.escpos")

Flow = Literal["none", "rtscts", "xonxoff"]
FLOWS: tuple[Flow, ...] = ("none", "rtscts", "xonxoff")
BAUDS = (9600, 19200, 38400, 57600, 115200)
CHUNK = 4096
# a device node that is gone or going: the printer was unplugged or switched off
_GONE = frozenset({errno.ENODEV, errno.ENXIO, errno.ENOENT, errno.EIO, errno.EPIPE, errno.EBADF})


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A parsed ``thermal_printer`` URL: ``kind`` is tcp, serial or usb."""

    kind: Literal["tcp", "serial", "usb"]
    host: str = ""
    port: int = 0
    path: str = ""


def parse_url(url: str) -> Endpoint:
    kind, _, rest = url.partition(":")
    if kind == "tcp":
        host, _, port = rest.rpartition(":")
        if host and port.isdigit():
            return Endpoint("tcp", host=host, port=int(port))
        raise ConfigError(f"thermal printer {url!r}: expected tcp:HOST:PORT")
    if kind in ("serial", "usb"):
        if rest.startswith("/") and len(rest) > 1:
            return Endpoint("serial" if kind == "serial" else "usb", path=rest)
        what = "the serial port" if kind == "serial" else "the usblp device node"
        raise ConfigError(
            f"thermal printer {url!r}: {kind}: takes the absolute path of {what}, "
            f"e.g. {kind}:/dev/kiosk-thermal"
        )
    raise ConfigError(
        f"thermal printer {url!r}: expected tcp:HOST:PORT, serial:/dev/… or usb:/dev/…"
    )


def _deadline_left(deadline: float) -> float:
    return deadline - time.monotonic()


class Transport(ABC):
    """One connection to one printer: ``open``, then ``_raw`` and ``query``, then ``close``."""

    def __init__(self, url: str, *, io_timeout_s: float) -> None:
        self.url = url
        self.io_timeout_s = io_timeout_s

    @abstractmethod
    def open(self) -> None:
        """Connect or open the device; :class:`DeviceOffline` if it is not there."""

    @abstractmethod
    def close(self) -> None:
        """Never raises."""

    @abstractmethod
    def _raw(self, msg: bytes, *, deadline: float | None = None) -> None:
        """Send all of ``msg`` before ``deadline`` (monotonic; default: the I/O timeout)."""

    @abstractmethod
    def query(self, request: bytes, timeout_s: float) -> int | None:
        """Send a real-time request; the byte answered, or ``None`` if none came in time."""

    def __enter__(self) -> Transport:
        self.open()
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self.close()


class TcpTransport(Transport):
    """A network printer's raw port (9100), with deadlines on connect, send and receive."""

    def __init__(self, url: str, host: str, port: int, *, io_timeout_s: float) -> None:
        super().__init__(url, io_timeout_s=io_timeout_s)
        self.host, self.port = host, port
        self._sock: socket.socket | None = None

    def open(self) -> None:
        try:
            conn = socket.create_connection((self.host, self.port), timeout=self.io_timeout_s)
        except OSError as err:
            raise DeviceOffline(f"cannot reach {self.url}") from err
        # status queries are 3-byte writes answered by 1 byte: without this, Nagle's algorithm
        # holds each query until the previous one is acknowledged (tens of ms a round)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = conn

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    def _conn(self) -> socket.socket:
        if self._sock is None:
            raise DeviceOffline(f"{self.url} is not connected")
        return self._sock

    def _raw(self, msg: bytes, *, deadline: float | None = None) -> None:
        conn = self._conn()
        left = self.io_timeout_s if deadline is None else _deadline_left(deadline)
        conn.settimeout(max(0.05, min(self.io_timeout_s, left)))
        try:
            conn.sendall(msg)
        except TimeoutError as err:
            raise DeviceTimeout("sending to the printer timed out") from err
        except OSError as err:
            raise DeviceOffline("the connection broke while sending") from err

    def query(self, request: bytes, timeout_s: float) -> int | None:
        conn = self._conn()
        conn.settimeout(timeout_s)
        try:
            conn.sendall(request)
            answer = conn.recv(1)
        except TimeoutError:
            return None
        except OSError as err:
            raise DeviceOffline("the connection broke during a status query") from err
        if not answer:
            raise DeviceOffline("the printer closed the connection")
        return answer[0]


def _timeouts(
    port: serial.Serial, *, read: float | None = None, write: float | None = None
) -> None:
    """Set pyserial's timeouts only when they change: each setter reconfigures the port."""
    if read is not None and port.timeout != read:
        port.timeout = read
    if write is not None and port.write_timeout != write:
        port.write_timeout = write


class SerialTransport(Transport):
    """A serial printer through pyserial: opened exclusively, 8N1, with read and write timeouts.

    The output is never drained with ``flush()`` (``tcdrain``): it has no timeout and waits for
    ever on a line held up by flow control. The status query after a job is what says the
    printer took it.
    """

    def __init__(
        self, url: str, path: str, *, io_timeout_s: float, baud: int = 9600, flow: Flow = "none"
    ) -> None:
        if SERIAL_MISSING is not None:
            raise ConfigError(
                f"thermal printer {url!r} needs pyserial, which is not installed"
            ) from SERIAL_MISSING
        if baud not in BAUDS:
            raise ConfigError(f"thermal printer {url!r}: baud must be one of {BAUDS}")
        if flow not in FLOWS:
            raise ConfigError(f"thermal printer {url!r}: flow control must be one of {FLOWS}")
        super().__init__(url, io_timeout_s=io_timeout_s)
        self.path, self.baud, self.flow = path, baud, flow
        self._port: serial.Serial | None = None

    def open(self) -> None:
        try:
            port = serial.Serial(
                self.path,
                self.baud,
                bytesize=serial.EIGHTBITS,
                parity=serial.PARITY_NONE,
                stopbits=serial.STOPBITS_ONE,
                timeout=self.io_timeout_s,
                write_timeout=self.io_timeout_s,
                rtscts=self.flow == "rtscts",
                xonxoff=self.flow == "xonxoff",
                exclusive=True,
            )
        except (serial.SerialException, OSError, ValueError) as err:
            busy = getattr(err, "errno", None) in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EBUSY)
            raise DeviceOffline(
                f"{self.path} is in use by another program" if busy else f"cannot open {self.path}"
            ) from err
        self._port = port
        try:
            port.reset_input_buffer()  # what the printer said before we came is not an answer
        except (serial.SerialException, OSError, termios.error) as err:
            self.close()
            raise DeviceOffline(f"{self.path} failed right after opening") from err

    def close(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            with contextlib.suppress(serial.SerialException, OSError, termios.error):
                port.close()

    def _conn(self) -> serial.Serial:
        if self._port is None:
            raise DeviceOffline(f"{self.path} is not open")
        return self._port

    def _raw(self, msg: bytes, *, deadline: float | None = None) -> None:
        port = self._conn()
        deadline = time.monotonic() + self.io_timeout_s if deadline is None else deadline
        view = memoryview(msg)
        try:
            while view:
                left = _deadline_left(deadline)
                if left <= 0:
                    raise DeviceTimeout(f"{self.path}: the printer took too long to accept data")
                _timeouts(port, write=min(self.io_timeout_s, left))
                port.write(view[:CHUNK])  # all of it, or SerialTimeoutException
                view = view[CHUNK:]
        except serial.SerialTimeoutException as err:
            raise DeviceTimeout(f"{self.path}: writing timed out (flow control held?)") from err
        except (serial.SerialException, OSError, termios.error) as err:
            raise DeviceOffline(f"{self.path}: {type(err).__name__} while sending") from err

    def query(self, request: bytes, timeout_s: float) -> int | None:
        port = self._conn()
        try:
            port.reset_input_buffer()  # a late answer to an earlier query is not this one's
            _timeouts(port, read=timeout_s, write=timeout_s)
            port.write(request)
            answer = port.read(1)
        except serial.SerialTimeoutException:
            return None  # the line is held (flow control): as silent as a printer can be
        except (serial.SerialException, OSError, termios.error) as err:
            raise DeviceOffline(f"{self.path}: {type(err).__name__} during a status query") from err
        return answer[0] if answer else None


class UsbLpTransport(Transport):
    """A USB printer-class device node (``/dev/usb/lp*``, Linux usblp), non-blocking with poll.

    usblp gives one process the device at a time (``EBUSY``), answers reads from the printer's
    bulk-in endpoint (``EINVAL`` if it has none; ``EIO`` and zero-length reads are transient, to
    be retried), reports ``ENODEV`` once unplugged, and cancels a write still in flight when the
    file is closed, so :meth:`close` first waits (within the I/O timeout) for writes to finish,
    unless the printer already failed to take data or to answer: then there is nothing to save.
    """

    def __init__(self, url: str, path: str, *, io_timeout_s: float) -> None:
        super().__init__(url, io_timeout_s=io_timeout_s)
        self.path = path
        self._fd = -1
        self._settle = False  # let writes in flight finish before closing

    def open(self) -> None:
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
        except OSError as err:
            if err.errno == errno.EBUSY:
                raise DeviceOffline(f"{self.path} is in use by another program") from err
            raise DeviceOffline(
                f"cannot open {self.path}: {errno.errorcode.get(err.errno or 0)}"
            ) from err
        self._settle = True
        try:
            self._discard_input()
        except DeviceOffline:
            self.close()
            raise

    def close(self) -> None:
        fd, self._fd = self._fd, -1
        if fd < 0:
            return
        if self._settle:
            with contextlib.suppress(OSError, ValueError):
                self._poll(fd, select.POLLOUT, self.io_timeout_s)
        with contextlib.suppress(OSError):
            os.close(fd)

    @staticmethod
    def _poll(fd: int, events: int, timeout_s: float) -> int:
        """The events that came (POLLHUP and POLLERR come unasked), 0 after the timeout."""
        poller = select.poll()
        poller.register(fd, events)
        ready = poller.poll(max(0, int(timeout_s * 1000)))
        return ready[0][1] if ready else 0

    def _conn(self) -> int:
        if self._fd < 0:
            raise DeviceOffline(f"{self.path} is not open")
        return self._fd

    def _offline(self, err: OSError, doing: str) -> DeviceOffline:
        self._settle = False
        name = errno.errorcode.get(err.errno or 0, str(err.errno))
        return DeviceOffline(f"{self.path}: {name} while {doing}")

    def _write_all(self, fd: int, msg: bytes, deadline: float) -> bool:
        """False if the deadline came first."""
        view = memoryview(msg)
        while view:
            left = _deadline_left(deadline)
            if left <= 0:
                return False
            if not self._poll(fd, select.POLLOUT, min(left, 0.2)):
                continue
            try:
                written = os.write(fd, view[:CHUNK])
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as err:
                raise self._offline(err, "sending") from err
            view = view[written:]
        return True

    def _raw(self, msg: bytes, *, deadline: float | None = None) -> None:
        fd = self._conn()
        deadline = time.monotonic() + self.io_timeout_s if deadline is None else deadline
        if not self._write_all(fd, msg, deadline):
            self._settle = False
            raise DeviceTimeout(f"{self.path}: the printer took too long to accept data")

    def _discard_input(self) -> None:
        fd = self._conn()
        for _ in range(64):
            try:
                if not os.read(fd, CHUNK):
                    return
            except (BlockingIOError, InterruptedError):
                return
            except OSError as err:
                if err.errno in _GONE - {errno.EIO}:
                    raise self._offline(err, "opening") from err
                return  # EINVAL (no bulk-in endpoint) or a transient EIO: nothing to discard

    def query(self, request: bytes, timeout_s: float) -> int | None:
        fd = self._conn()
        deadline = time.monotonic() + timeout_s
        self._discard_input()
        if not self._write_all(fd, request, deadline):
            self._settle = False
            return None  # the printer does not even take the request
        while (left := _deadline_left(deadline)) > 0:
            events = self._poll(fd, select.POLLIN, min(left, 0.1))
            if events & (select.POLLHUP | select.POLLERR):
                raise DeviceOffline(f"{self.path}: the device hung up")
            if not events:
                continue
            try:
                answer = os.read(fd, 1)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as err:
                if err.errno == errno.EINVAL:
                    wire.debug("%s: no bulk-in endpoint, the printer cannot answer", self.path)
                    self._settle = False
                    return None
                if err.errno == errno.EIO:  # usblp: a failed read is resubmitted; try again
                    time.sleep(0.01)
                    continue
                raise self._offline(err, "reading a status answer") from err
            if answer:
                return answer[0]
            time.sleep(0.01)  # a zero-length packet: the answer may follow
        self._settle = False
        return None


def make_transport(
    url: str, *, io_timeout_s: float, baud: int = 9600, flow: Flow = "none"
) -> Transport:
    """The transport for ``url``, not yet open (``with`` opens and closes it)."""
    end = parse_url(url)
    if end.kind == "tcp":
        return TcpTransport(url, end.host, end.port, io_timeout_s=io_timeout_s)
    if end.kind == "serial":
        return SerialTransport(url, end.path, io_timeout_s=io_timeout_s, baud=baud, flow=flow)
    return UsbLpTransport(url, end.path, io_timeout_s=io_timeout_s)
