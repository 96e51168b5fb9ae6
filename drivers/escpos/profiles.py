"""Printer profiles: what a thermal printer model can do, taken from python-escpos' database.

python-escpos ships a capabilities database (``escpos.capabilities``, from the escpos-printer-db
project): per model its paper width in dots, its fonts and whether it understands the native QR
command (``GS ( k``, feature ``qrCode``), raster images (``GS v 0``, ``bitImageRaster``) and a
cutter. A station names its model in ``[devices] thermal_printer_model``; what the database does
not say, or says wrongly, the station's configuration settles:

- the paper width, ``thermal_printer_width`` (58 or 80 mm) when the model's entry leaves it
  unknown (``default`` does). Unknown means 58 mm: a line laid out for 32 columns fits any
  printer, one laid out for 48 is broken mid-word by a 58 mm printer;
- whether the printer answers real-time status (``DLE EOT``), ``thermal_printer_status``: the
  database has no such feature. ``auto`` asks and learns: a printer that has never answered is
  one that cannot, it prints and its status is "unknown".

Columns are the dots divided by 12, Font A's width at 203 dpi (384 → 32, 576 → 48); the
database's own column counts are not used (``NT-80-V-UL`` gives 12 for an 80 mm printer).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Literal

from drivers.escpos import importing_escpos
from flows.errors import ConfigError

with importing_escpos():
    from escpos.capabilities import CAPABILITIES, BaseProfile, get_profile

QrMode = Literal["native", "raster", "text"]
StatusMode = Literal["auto", "dle-eot", "none"]
STATUS_MODES: tuple[StatusMode, ...] = ("auto", "dle-eot", "none")
WIDTHS_MM = (58, 80)
DOTS = {58: 384, 80: 576}  # 203 dpi print heads: 48 mm and 72 mm of printable width
FONT_A_DOTS = 12  # one half-width column; a Han character in Chinese mode is two (24 dots)


@dataclass(frozen=True, slots=True)
class PrinterProfile:
    """The behaviour the driver chooses for one printer model and station."""

    model: str  # the python-escpos capabilities name, e.g. "NT-5890K", "TM-T20II", "default"
    dots: int  # printable width in dots
    width_mm: int  # the paper class the dots fall in: 58 (up to 432 dots) or 80
    qr: QrMode  # native GS ( k, a GS v 0 raster image, or the code's text when neither
    status: StatusMode
    cutter: bool

    @property
    def columns(self) -> int:
        """Half-width characters on a line of Font A at normal size."""
        return self.dots // FONT_A_DOTS

    def escpos_profile(self) -> BaseProfile:
        """The python-escpos profile object with the width filled in (for centring images)."""
        profile = get_profile(self.model)
        data: dict[str, Any] = copy.deepcopy(profile.profile_data)
        data.setdefault("media", {})["width"] = {"mm": self.width_mm, "pixels": self.dots}
        profile.profile_data = data  # an instance attribute: the shared class data stays as it is
        return profile


def models() -> tuple[str, ...]:
    """The model names python-escpos knows."""
    return tuple(sorted(CAPABILITIES["profiles"]))


def _known_dots(data: dict[str, Any]) -> int | None:
    pixels = data.get("media", {}).get("width", {}).get("pixels")
    return pixels if isinstance(pixels, int) and pixels > 0 else None


def load_profile(
    model: str = "default", *, width_mm: int = 0, status: StatusMode = "auto"
) -> PrinterProfile:
    """The profile of ``model``; ``width_mm`` (58 or 80) overrides its width, 0 keeps it."""
    data = CAPABILITIES["profiles"].get(model)
    if data is None:
        near = [m for m in models() if model.lower()[:3] in m.lower()][:8]
        hint = f" (similar: {', '.join(near)})" if near else ""
        raise ConfigError(
            f"thermal printer model {model!r} is not in python-escpos' capabilities database"
            f"{hint}; `default` suits most ESC/POS printers"
        )
    if width_mm and width_mm not in WIDTHS_MM:
        raise ConfigError(f"thermal printer width {width_mm}: 58 or 80 (mm), or 0 for the model's")
    if status not in STATUS_MODES:
        raise ConfigError(f"thermal printer status {status!r}: one of {', '.join(STATUS_MODES)}")
    known = _known_dots(data)
    if width_mm:
        dots = DOTS[width_mm]
    elif known is not None:
        dots = known
        width_mm = 58 if known <= 432 else 80  # RP-F10-58mm prints 432 dots on 58 mm paper
    else:
        width_mm, dots = 58, DOTS[58]  # unknown: the narrow paper, which every layout fits
    features = data.get("features", {})
    qr: QrMode = (
        "native"
        if features.get("qrCode")
        else "raster"
        if features.get("bitImageRaster")
        else "text"
    )
    cutter = bool(features.get("paperFullCut") or features.get("paperPartCut"))
    return PrinterProfile(model, dots, width_mm, qr, status, cutter)


DEFAULT_PROFILE = load_profile()
