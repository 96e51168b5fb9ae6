"""An ESC/POS printer simulator on TCP or on a pseudo-terminal: a real peer for the thermal driver.

It parses what it receives — initialise, alignment, emphasis, character size, line feeds,
Chinese mode (``FS &`` … ``FS .``) with GB18030 text, QR codes (``GS ( k``), cuts (``GS V``) — and
keeps each receipt (split at the cut) with its exact bytes, its text and its QR data, and every
byte that came off the wire in order (``received``). It answers DLE EOT 1–4 like a printer, and
can be told to run out of paper, open its cover, go silent, or stop taking data (``stalled``).

On TCP it listens like a network printer's port 9100. With ``pty=True`` it is a serial printer:
it speaks on the master side of a pty and the driver opens the slave (``device``, e.g.
``/dev/pts/5``) with pyserial, or as a plain file the way the driver opens a usblp node;
``unplug()`` closes the pty, ``replug()`` makes a new one, which ``link_path`` (like
``/dev/kiosk-thermal``) follows. Every operation on the pty's descriptors happens on the serving
thread, so a descriptor closed by an unplug is never reused under a read in flight.

Run on its own: ``python -m drivers.escpos.simulator --out DIR [--pty [--link PATH]]``.
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

import qrcode
from PIL import Image, ImageDraw, ImageFont

from drivers.simtools import (
    OutputNumbers,
    PtyPlug,
    close_pty,
    close_server,
    open_pty,
    run_until_signal,
)

FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
_BAUDS = {
    getattr(termios, f"B{b}"): b for b in (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)
}


@dataclass
class SimReceipt:
    raw: bytes
    lines: list[str]
    qr: str | None

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def picture(self, width: int = 384) -> Image.Image:
        """The receipt as a person would see it: 58 mm paper at 203 dpi (384 dots), the CJK
        font, the QR code under the text."""
        font = ImageFont.truetype(str(FONT), 22) if FONT.exists() else ImageFont.load_default()
        line_h = 30
        qr_img = None
        if self.qr:
            maker = qrcode.QRCode(border=2, box_size=5)
            maker.add_data(self.qr)
            qr_img = maker.make_image(fill_color="black", back_color="white").get_image()
        height = 24 + line_h * max(1, len(self.lines)) + (qr_img.height + 16 if qr_img else 0)
        image = Image.new("L", (width, height), 255)
        draw = ImageDraw.Draw(image)
        y = 12
        for line in self.lines:
            draw.text((8, y), line, fill=0, font=font)
            y += line_h
        if qr_img is not None:
            image.paste(qr_img.convert("L"), ((width - qr_img.width) // 2, y + 8))
        return image


@dataclass
class _Parser:
    """Incremental ESC/POS parser; ``feed`` returns the bytes to answer (status queries)."""

    sim: EscposSimulator
    buf: bytearray = field(default_factory=bytearray)
    raw: bytearray = field(default_factory=bytearray)
    lines: list[str] = field(default_factory=list)
    line: bytearray = field(default_factory=bytearray)
    chinese: bool = False
    qr: str | None = None
    cut_pending: bool = False

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

    def _text(self) -> str:
        data = bytes(self.line)
        self.line.clear()
        return data.decode("gb18030", errors="replace")

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
        if first == 0x1B:  # ESC
            if len(b) < 2:
                return 0, None
            cmd = b[1]
            if cmd == 0x40:  # ESC @
                self.lines.clear()
                self.line.clear()
                self.chinese = False
                self.qr = None
                return 2, None
            if cmd in (0x21, 0x45, 0x61, 0x64, 0x74, 0x2D, 0x47, 0x4D, 0x33):  # one argument
                return (3, None) if len(b) >= 3 else (0, None)
            return 2, None
        if first == 0x1C:  # FS
            if len(b) < 2:
                return 0, None
            if b[1] == 0x26:
                self.chinese = True
            elif b[1] == 0x2E:
                self.chinese = False
            return 2, None
        if first == 0x1D:  # GS
            if len(b) < 2:
                return 0, None
            cmd = b[1]
            if cmd == 0x21:
                return (3, None) if len(b) >= 3 else (0, None)
            if cmd == 0x56:  # GS V m [n]
                if len(b) < 3:
                    return 0, None
                size = 4 if b[2] in (0x41, 0x42, 65, 66) else 3
                if len(b) < size:
                    return 0, None
                self.cut_pending = True
                return size, None
            if cmd == 0x28 and len(b) >= 5 and b[2] == 0x6B:  # GS ( k pL pH cn fn ...
                size = 5 + b[3] + 256 * b[4]
                if len(b) < size:
                    return 0, None
                if size >= 8 and b[5] == 0x31 and b[6] == 0x50:  # store QR data
                    self.qr = bytes(b[8:size]).decode("utf-8", errors="replace")
                return size, None
            if cmd == 0x28:
                return 0, None
            return 2, None
        if first == 0x0A:
            self.lines.append(self._text())
            return 1, None
        self.line.append(first)
        return 1, None

    def _cut(self) -> None:
        self.cut_pending = False
        if self.line:
            self.lines.append(self._text())
        self.sim.finish(SimReceipt(bytes(self.raw), list(self.lines), self.qr))
        self.raw.clear()
        self.lines.clear()
        self.qr = None


class EscposSimulator(PtyPlug):
    def __init__(
        self,
        out_dir: Path | None = None,
        host: str = "127.0.0.1",
        *,
        pty: bool = False,
        link_path: Path | str | None = None,
    ) -> None:
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
        self.silent = False
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
        with self._lock:
            self.receipts.append(receipt)
        number = self._numbers.next()
        if self.out_dir is not None:
            receipt.picture().save(self.out_dir / f"receipt-{number:04d}.png")
            (self.out_dir / f"receipt-{number:04d}.txt").write_text(
                receipt.text + (f"\n[QR] {receipt.qr}\n" if receipt.qr else "\n"), encoding="utf-8"
            )

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
    args = parser.parse_args(argv)
    sim = EscposSimulator(out_dir=args.out, pty=args.pty, link_path=args.link)
    sim.start()
    return run_until_signal({"url": sim.url, "device": sim.device}, sim.stop)


if __name__ == "__main__":
    sys.exit(main())
