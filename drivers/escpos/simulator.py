"""An ESC/POS printer simulator on TCP or on a pseudo-terminal: a real peer for the thermal driver.

It parses what it receives — initialise, alignment, emphasis, character size, line feeds,
Chinese mode (``FS &`` … ``FS .``) with GB18030 text (code page 437 outside it), QR codes
(``GS ( k``), raster images (``GS v 0``), cuts (``GS V``) — and keeps each receipt (split at the
cut) with its exact bytes, its lines as the paper shows them, its QR data and a picture
(:mod:`drivers.escpos.paper`), and every byte that came off the wire in order (``received``). It
answers DLE EOT 1–4 like a printer, and can be told to run out of paper, open its cover, go
silent, or stop taking data (``stalled``). A ``profile`` (``paper.SIM_PROFILES``) makes it a
printer as found in the field: 58 or 80 mm wide, in Chinese mode from power-on,
deaf to ``GS ( k``, silent to ``DLE EOT``, without a cutter.

On TCP it listens like a network printer's port 9100. With ``pty=True`` it is a serial printer:
it speaks on the master side of a pty and the driver opens the slave (``device``, e.g.
``/dev/pts/5``) with pyserial, or as a plain file the way the driver opens a usblp node;
``unplug()`` closes the pty, ``replug()`` makes a new one, which ``link_path`` (like
``/dev/kiosk-thermal``) follows. Every operation on the pty's descriptors happens on the serving
thread, so a descriptor closed by an unplug is never reused under a read in flight.

Run on its own: ``python -m drivers.escpos.simulator --out DIR [--pty [--link PATH]]
[--profile NAME]``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import queue
import select
import socket
import sys
import termios
import threading
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from drivers.escpos.paper import (
    DEFAULT_SIM_PROFILE,
    SIM_PROFILES,
    Block,
    PaperLine,
    PaperQr,
    SimProfile,
    SimReceipt,
)
from drivers.simtools import (
    OutputNumbers,
    PtyPlug,
    close_pty,
    close_server,
    open_pty,
    run_until_signal,
)

_BAUDS = {
    getattr(termios, f"B{b}"): b for b in (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)
}


def _gb18030_length(b: bytearray) -> int:
    """Bytes in the GB18030 character ``b`` starts with; 0 if more must come first."""
    if len(b) < 2:
        return 0
    if 0x30 <= b[1] <= 0x39:  # four-byte form: lead, digit, lead, digit
        return 4 if len(b) >= 4 else 0
    return 2


@dataclass
class _Parser:
    """Incremental ESC/POS parser; ``feed`` returns the bytes to answer (status queries)."""

    sim: EscposSimulator
    buf: bytearray = field(default_factory=bytearray)
    raw: bytearray = field(default_factory=bytearray)
    lines: list[str] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)
    line: list[tuple[str, int]] = field(default_factory=list)
    chinese: bool = False
    width: int = 1
    height: int = 1
    align: int = 0
    qr: str | None = None  # stored with GS ( k, printed with its print function
    printed_qr: str | None = None
    qr_module: int = 3
    cut_pending: bool = False
    wrapped: int = 0  # lines the printer had to wrap itself (too long for the paper)

    def __post_init__(self) -> None:
        self.chinese = self.sim.profile.chinese_default

    def feed(self, data: bytes) -> bytes:
        self.buf += data
        out = bytearray()
        while self.buf:
            used, answer = self._step()
            if used == 0:
                break  # an incomplete command: wait for more bytes
            chunk = bytes(self.buf[:used])
            del self.buf[:used]
            if answer is None:
                self.raw += chunk
            else:
                out += answer
            if self.cut_pending:
                self._cut()
        return bytes(out)

    @property
    def pending(self) -> bool:
        """Has something been printed since the last cut?"""
        return bool(self.blocks or self.line)

    def _end_line(self) -> None:
        line = PaperLine(tuple(self.line), self.width, self.height, self.align)
        self.line.clear()
        self.lines.append(line.text)
        self.blocks.append(line)

    def _char(self, ch: str, cols: int) -> None:
        used = sum(c for _, c in self.line) * self.width
        if self.line and used + cols * self.width > self.sim.profile.columns:
            self._end_line()  # the printer wraps where its last column falls
            self.wrapped += 1
        self.line.append((ch, cols))

    def _reset(self) -> None:
        self.line.clear()
        self.chinese = self.sim.profile.chinese_default
        self.width = self.height = 1
        self.align = 0
        self.qr = None

    def _step(self) -> tuple[int, bytes | None]:
        b = self.buf
        first = b[0]
        if first == 0x10:  # DLE EOT n
            if len(b) < 3:
                return 0, None
            if b[1] == 0x04 and 1 <= b[2] <= 4:
                answer = self.sim.status_byte(b[2])
                return 3, (b"" if answer is None else bytes([answer]))
            return 1, None
        if first == 0x1B:
            return self._esc(b)
        if first == 0x1C:  # FS
            if len(b) < 2:
                return 0, None
            if b[1] == 0x26:
                self.chinese = True
            elif b[1] == 0x2E:
                self.chinese = False
            return 2, None
        if first == 0x1D:
            return self._gs(b)
        if first == 0x0A:
            self._end_line()
            return 1, None
        if first < 0x20:
            return 1, None  # other control bytes print nothing
        if self.chinese and first >= 0x81:
            size = _gb18030_length(b)
            if size == 0:
                return 0, None
            self._char(bytes(b[:size]).decode("gb18030", errors="replace"), 2)
            return size, None
        self._char(bytes([first]).decode("cp437"), 1)
        return 1, None

    def _esc(self, b: bytearray) -> tuple[int, bytes | None]:
        if len(b) < 2:
            return 0, None
        cmd = b[1]
        if cmd == 0x40:  # ESC @
            self._reset()
            return 2, None
        if cmd == 0x2A:  # ESC * m nL nH d…: a column image (not drawn)
            if len(b) < 5:
                return 0, None
            size = 5 + (b[3] + 256 * b[4]) * (3 if b[2] >= 32 else 1)
            return (size, None) if len(b) >= size else (0, None)
        if cmd in (0x21, 0x45, 0x61, 0x64, 0x74, 0x2D, 0x47, 0x4D, 0x33):  # one argument
            if len(b) < 3:
                return 0, None
            if cmd == 0x21:  # ESC ! n: bit 4 double height, bit 5 double width
                self.height = 2 if b[2] & 0x10 else 1
                self.width = 2 if b[2] & 0x20 else 1
            elif cmd == 0x61:
                self.align = b[2] % 48 if b[2] >= 48 else min(b[2], 2)
            return 3, None
        return 2, None

    def _gs(self, b: bytearray) -> tuple[int, bytes | None]:
        if len(b) < 2:
            return 0, None
        cmd = b[1]
        if cmd == 0x21:  # GS ! n
            if len(b) < 3:
                return 0, None
            self.width, self.height = (b[2] >> 4) + 1, (b[2] & 0x0F) + 1
            return 3, None
        if cmd == 0x56:  # GS V m [n]
            if len(b) < 3:
                return 0, None
            size = 4 if b[2] in (0x41, 0x42) else 3
            if len(b) < size:
                return 0, None
            self.cut_pending = self.sim.profile.cutter
            return size, None
        if cmd == 0x28:  # GS ( fn pL pH …
            if len(b) < 5:
                return 0, None
            size = 5 + b[3] + 256 * b[4]
            if len(b) < size:
                return 0, None
            if b[2] == 0x6B and self.sim.profile.native_qr and size >= 8 and b[5] == 0x31:
                self._qr_function(bytes(b[:size]))
            return size, None  # GS ( k on a printer that lacks it: nothing happens
        if cmd == 0x76:  # GS v 0 m xL xH yL yH d…: a raster image
            if len(b) < 8:
                return 0, None
            x, y = b[4] + 256 * b[5], b[6] + 256 * b[7]
            size = 8 + x * y
            if len(b) < size:
                return 0, None
            if self.line:
                self._end_line()
            if x and y:
                data = bytes(b[8:size])
                self.blocks.append(Image.frombytes("1", (x * 8, y), data, "raw", "1;I"))
            return size, None
        return 2, None

    def _qr_function(self, command: bytes) -> None:
        fn = command[6]
        if fn == 0x43 and len(command) >= 8:  # module size
            self.qr_module = command[7]
        elif fn == 0x50:  # store the data
            self.qr = command[8:].decode("utf-8", errors="replace")
        elif fn == 0x51 and self.qr is not None:  # print it
            if self.line:
                self._end_line()
            self.blocks.append(PaperQr(self.qr, self.qr_module))
            self.printed_qr = self.qr

    def _cut(self) -> None:
        self.cut_pending = False
        if self.line:
            self._end_line()
        dots = self.sim.profile.dots
        receipt = SimReceipt(
            bytes(self.raw),
            list(self.lines),
            self.printed_qr,
            list(self.blocks),
            dots,
            self.wrapped,
        )
        self.sim.finish(receipt)
        self.raw.clear()
        self.lines.clear()
        self.blocks.clear()
        self.qr = self.printed_qr = None
        self.wrapped = 0

    def tear_off(self) -> None:
        """The job's connection closed: what was printed and not cut is a receipt all the same."""
        if self.pending:
            self._cut()


class EscposSimulator(PtyPlug):
    def __init__(
        self,
        out_dir: Path | None = None,
        host: str = "127.0.0.1",
        *,
        pty: bool = False,
        link_path: Path | str | None = None,
        profile: SimProfile | str = DEFAULT_SIM_PROFILE,
    ) -> None:
        self.profile = SIM_PROFILES[profile] if isinstance(profile, str) else profile
        self.out_dir = out_dir
        self.host = host
        self.port = 0
        self.pty = pty
        self.link_path = Path(link_path) if link_path is not None else None
        self.device = ""  # the pty's slave, while plugged
        self.receipts: list[SimReceipt] = []  # received in this run
        self._numbers = OutputNumbers(out_dir, "receipt")
        self.received = bytearray()  # every byte off the wire, status queries included
        self.paper_out = False
        self.paper_near_end = False
        self.cover_open = False
        self.silent = not self.profile.answers_status
        self.stalled = False  # takes no more data: the line (or socket) fills up
        self._server: socket.socket | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._master = -1
        self._slave = -1
        self._requests: queue.Queue[tuple[str, threading.Event]] = queue.Queue()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self.pty:
            return f"serial:{self.link_path or self.device}"
        return f"tcp:{self.host}:{self.port}"

    def start(self) -> None:
        if self.out_dir is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        if self.pty:
            self._open_pty()
            self._thread = threading.Thread(target=self._serve_pty, name="escpos-sim", daemon=True)
            self._thread.start()
            return
        self._server = socket.create_server((self.host, 0))
        self.port = int(self._server.getsockname()[1])
        threading.Thread(target=self._accept, name="escpos-sim", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        close_server(self._server)
        if self._thread is not None:
            self._thread.join(timeout=3)
            self._thread = None
        self._close_pty()

    # --- the pty: a serial printer, unplugged and plugged in again ------------------------------

    def line_settings(self) -> dict[str, object]:
        """How the driver set up the line: baud rate and flow control (read from the pty)."""
        iflag, _oflag, cflag, _lflag, ispeed, _ospeed, _cc = termios.tcgetattr(self._slave)
        return {
            "baud": _BAUDS.get(ispeed, ispeed),
            "rtscts": bool(cflag & termios.CRTSCTS),
            "xonxoff": bool(iflag & termios.IXON) and bool(iflag & termios.IXOFF),
        }

    def _do_requests(self, parser: _Parser) -> _Parser:
        while True:
            try:
                what, done = self._requests.get_nowait()
            except queue.Empty:
                return parser
            if what == "unplug" and self._master >= 0:
                self._close_pty()
            elif what == "replug" and self._master < 0:
                self._open_pty()
                parser = _Parser(self)  # a printer that was off starts afresh
            done.set()

    def _open_pty(self) -> None:
        self._master, self._slave, self.device = open_pty(self.link_path)

    def _close_pty(self) -> None:
        close_pty(self._master, self._slave, self.link_path)
        self._master = self._slave = -1
        self.device = ""

    def _serve_pty(self) -> None:
        parser = _Parser(self)
        while not self._stop.is_set():
            parser = self._do_requests(parser)
            master = self._master
            if master < 0 or self.stalled:
                self._stop.wait(0.02)
                continue
            try:
                ready, _, _ = select.select([master], [], [], 0.05)
                data = os.read(master, 65536) if ready else b""
            except (OSError, ValueError):  # EIO: nobody has the slave open right now
                self._stop.wait(0.02)
                continue
            if data:
                self.write_pty(self._take(parser, data))
        self._do_requests(parser)

    def _take(self, parser: _Parser, data: bytes) -> bytes:
        with self._lock:
            self.received += data
        return parser.feed(data)

    def status_byte(self, n: int) -> int | None:
        if self.silent:
            return None
        base = 0x12
        if n == 1:
            return base | (0x08 if self.cover_open or self.paper_out else 0)
        if n == 2:
            return base | (0x04 if self.cover_open else 0) | (0x20 if self.paper_out else 0)
        if n == 3:
            return base
        return base | (0x0C if self.paper_near_end else 0) | (0x60 if self.paper_out else 0)

    def finish(self, receipt: SimReceipt) -> None:
        if self.paper_out or self.cover_open:
            return  # nothing comes out of a printer without paper or with its cover open
        number = self._numbers.next()
        if self.out_dir is not None:  # its files first: whoever sees the receipt finds them
            receipt.picture().save(self.out_dir / f"receipt-{number:04d}.png")
            (self.out_dir / f"receipt-{number:04d}.txt").write_text(
                receipt.text + (f"\n[QR] {receipt.qr}\n" if receipt.qr else "\n"), encoding="utf-8"
            )
        with self._lock:
            self.receipts.append(receipt)

    def _accept(self) -> None:
        assert self._server is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        parser = _Parser(self)
        with conn:
            conn.settimeout(0.5)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            while not self._stop.is_set():
                if self.stalled:
                    self._stop.wait(0.02)
                    continue
                try:
                    data = conn.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not data:
                    parser.tear_off()
                    return
                answer = self._take(parser, data)
                if answer:
                    with contextlib.suppress(OSError):
                        conn.sendall(answer)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="ESC/POS printer simulator on TCP or a pty")
    parser.add_argument("--out", type=Path, help="save each receipt as a text file here")
    parser.add_argument("--pty", action="store_true", help="a serial printer on a pty")
    parser.add_argument("--link", type=Path, help="with --pty: keep this symlink on the pty")
    parser.add_argument("--profile", choices=sorted(SIM_PROFILES), default=DEFAULT_SIM_PROFILE.name)
    args = parser.parse_args(argv)
    sim = EscposSimulator(out_dir=args.out, pty=args.pty, link_path=args.link, profile=args.profile)
    sim.start()
    return run_until_signal({"url": sim.url, "device": sim.device}, sim.stop)


if __name__ == "__main__":
    sys.exit(main())
