"""What comes out of the simulated printer: printer profiles, and the paper with its picture.

A :class:`SimProfile` is one way printers in the field behave, as the simulator plays it:

- the paper: 58 mm (384 dots, 32 columns of Font A) or 80 mm (576 dots, 48 columns); a line
  longer than that is wrapped by the printer where its last column falls, as real ones do;
- Chinese mode at power-on and after ``ESC @`` (bytes are GB18030 until ``FS .``), or not
  (bytes are code page 437 until ``FS &``);
- ``GS ( k`` understood (the QR code is printed), or ignored (nothing printed for it);
- ``DLE EOT`` answered, or never;
- a cutter (``GS V`` ends a receipt), or none (the receipt ends when the job's connection
  closes: the resident tears it off).

The paper is kept as blocks in order — lines of text with their size and alignment, raster
images (``GS v 0``) and native QR codes — and drawn as a person would see it: 203 dpi, a
half-width character 12 dots wide and a Han character 24, so what does not fit is visible.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import qrcode
from PIL import Image, ImageDraw, ImageFont

FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
COLUMN_DOTS = 12
LINE_DOTS = 30


@dataclass(frozen=True, slots=True)
class SimProfile:
    """How the simulated printer behaves (see the module's docstring)."""

    name: str
    dots: int = 384
    chinese_default: bool = False
    native_qr: bool = True
    answers_status: bool = True
    cutter: bool = True

    @property
    def columns(self) -> int:
        return self.dots // COLUMN_DOTS


SIM_PROFILES: dict[str, SimProfile] = {
    p.name: p
    for p in (
        SimProfile("escpos-58"),
        SimProfile("escpos-80", dots=576),
        SimProfile("chinese-mode-58", chinese_default=True),
        SimProfile("chinese-mode-80", dots=576, chinese_default=True),
        SimProfile("no-gs-k-58", native_qr=False),
        SimProfile("no-status-58", answers_status=False),
        # a printer of the POS-5890 / ZJ-5870 kind: all of the above and no cutter
        SimProfile(
            "budget-58", chinese_default=True, native_qr=False, answers_status=False, cutter=False
        ),
    )
}
DEFAULT_SIM_PROFILE = SIM_PROFILES["escpos-58"]


@dataclass(frozen=True, slots=True)
class PaperLine:
    """A printed line: its characters with the columns each takes, size and alignment."""

    chars: tuple[tuple[str, int], ...]
    width: int = 1  # character size multipliers
    height: int = 1
    align: int = 0  # 0 left, 1 centre, 2 right

    @property
    def text(self) -> str:
        return "".join(ch for ch, _ in self.chars)

    @property
    def columns(self) -> int:
        return sum(cols for _, cols in self.chars)


@dataclass(frozen=True, slots=True)
class PaperQr:
    """A native QR code (``GS ( k``), printed by the printer's firmware."""

    data: str
    module: int = 3


Block = PaperLine | PaperQr | Image.Image


@dataclass
class SimReceipt:
    raw: bytes
    lines: list[str]
    qr: str | None  # the data of a native QR code (GS ( k) the printer printed
    blocks: list[Block] = field(default_factory=list)
    dots: int = 384
    wrapped: int = 0  # lines the printer wrapped itself, wherever its last column fell

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    @property
    def rasters(self) -> list[Image.Image]:
        """The raster images (``GS v 0``) on the paper, black on white."""
        return [b for b in self.blocks if isinstance(b, Image.Image)]

    def picture(self, width: int | None = None) -> Image.Image:
        """The receipt as a person would see it: the paper's dots, the CJK font, every block."""
        width = width or self.dots
        font = ImageFont.truetype(str(FONT), 22) if FONT.exists() else ImageFont.load_default()
        blocks: list[Block] = list(self.blocks)
        if not blocks:  # a receipt made by hand (tests): its lines, then its QR code
            blocks = [PaperLine(tuple((c, 1) for c in line)) for line in self.lines]
            if self.qr:
                blocks.append(PaperQr(self.qr, 5))
        drawn = [_draw(block, font, width) for block in blocks]
        image = Image.new("L", (width, 24 + sum(d.height for d in drawn)), 255)
        y = 12
        for piece in drawn:
            image.paste(piece, (0, y))
            y += piece.height
        return image


def _draw(
    block: Block, font: ImageFont.ImageFont | ImageFont.FreeTypeFont, width: int
) -> Image.Image:
    if isinstance(block, Image.Image):
        piece = Image.new("L", (width, block.height), 255)
        piece.paste(block.convert("L").crop((0, 0, min(width, block.width), block.height)), (0, 0))
        return piece
    if isinstance(block, PaperQr):
        maker = qrcode.QRCode(border=2, box_size=max(1, block.module))
        maker.add_data(block.data)
        qr_img = maker.make_image(fill_color="black", back_color="white").get_image().convert("L")
        piece = Image.new("L", (width, qr_img.height + 16), 255)
        piece.paste(qr_img, (max(0, (width - qr_img.width) // 2), 8))
        return piece
    # a line: each character at its column, the way a printer's fixed-pitch font places it
    line_w = block.columns * COLUMN_DOTS * block.width
    x0 = {1: (width - line_w) // 2, 2: width - line_w}.get(block.align, 0)
    small = Image.new("L", (max(1, line_w), LINE_DOTS), 255)
    draw = ImageDraw.Draw(small)
    x = 0
    for ch, cols in block.chars:
        draw.text((x, 2), ch, fill=0, font=font)
        x += cols * COLUMN_DOTS
    if block.width > 1 or block.height > 1:
        small = small.resize((small.width * block.width, LINE_DOTS * block.height))
    piece = Image.new("L", (width, small.height), 255)
    piece.paste(small, (max(0, x0), 0))
    return piece
