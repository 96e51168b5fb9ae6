"""An ESC/POS printer simulator on TCP: a real peer for the thermal driver.

It parses what it receives — initialise, alignment, emphasis, character size, line feeds,
Chinese mode (``FS &`` … ``FS .``) with GB18030 text, QR codes (``GS ( k``), cuts (``GS V``) — and
keeps each receipt (split at the cut) with its exact bytes, its text and its QR data. It answers
DLE EOT 1–4 like a printer, and can be told to run out of paper, open its cover or go silent.

Run on its own: ``python -m drivers.escpos.simulator --out DIR``.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import qrcode
from PIL import Image, ImageDraw, ImageFont

from drivers.simtools import close_server, run_until_signal

FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")


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


class EscposSimulator:
    def __init__(self, out_dir: Path | None = None, host: str = "127.0.0.1") -> None:
        self.out_dir = out_dir
        self.host = host
        self.port = 0
        self.receipts: list[SimReceipt] = []
        self.paper_out = False
        self.paper_near_end = False
        self.cover_open = False
        self.silent = False
        self._server: socket.socket | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"tcp:{self.host}:{self.port}"

    def start(self) -> None:
        self._server = socket.create_server((self.host, 0))
        self.port = int(self._server.getsockname()[1])
        if self.out_dir is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        threading.Thread(target=self._accept, name="escpos-sim", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        close_server(self._server)

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
            number = len(self.receipts)
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
                try:
                    data = conn.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not data:
                    return
                answer = parser.feed(data)
                if answer:
                    with contextlib.suppress(OSError):
                        conn.sendall(answer)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="ESC/POS printer simulator on TCP")
    parser.add_argument("--out", type=Path, help="save each receipt as a text file here")
    args = parser.parse_args(argv)
    sim = EscposSimulator(out_dir=args.out)
    sim.start()
    return run_until_signal({"url": sim.url}, sim.stop)


if __name__ == "__main__":
    sys.exit(main())
