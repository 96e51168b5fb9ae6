"""Sizes and colours computed for the physical screen, so elder mode meets its numbers.

Sizes are set in millimetres on the configured screen (diagonal and resolution), then turned into
pixels: body text in elder mode has a capital height of at least 0.7° of visual angle at the
viewing distance (≈ 6.1 mm at 500 mm), standard mode at least 4.8 mm; touch targets are at least
12 × 12 mm (elder) or 9 × 9 mm with gaps of at least 2 mm. Colours are chosen for a contrast of
at least 7:1 everywhere. Kivy font sizes are em sizes; a CJK font's Latin capitals are about
0.70 em tall, so the em size is the capital height divided by that ratio.
"""

from __future__ import annotations

import math

from kivy.event import EventDispatcher
from kivy.properties import ListProperty, NumericProperty

CAP_HEIGHT_RATIO = 0.70


def visual_angle_mm(degrees: float, distance_mm: float) -> float:
    return 2 * distance_mm * math.tan(math.radians(degrees) / 2)


def px_per_mm(width_px: int, height_px: int, diagonal_in: float) -> float:
    return math.hypot(width_px, height_px) / (diagonal_in * 25.4)


def relative_luminance(rgb: tuple[float, float, float]) -> float:
    def channel(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
    la, lb = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def _hex(code: str) -> list[float]:
    code = code.lstrip("#")
    return [int(code[i : i + 2], 16) / 255 for i in (0, 2, 4)] + [1.0]


class Theme(EventDispatcher):
    """Live sizes (pixels) and colours; kv rules bind to these, elder mode changes them."""

    px_mm = NumericProperty(4.0)
    body = NumericProperty(28)
    small = NumericProperty(24)
    title = NumericProperty(48)
    button_h = NumericProperty(80)
    gap = NumericProperty(16)
    pad = NumericProperty(24)
    bar_h = NumericProperty(110)  # the top bar: elder mode's geometry in both modes (fixed)
    bar_gap = NumericProperty(16)

    bg = ListProperty(_hex("#F7F5F0"))
    fg = ListProperty(_hex("#111111"))
    muted = ListProperty(_hex("#333333"))
    primary = ListProperty(_hex("#0B3D91"))
    on_primary = ListProperty(_hex("#FFFFFF"))
    secondary = ListProperty(_hex("#FFFFFF"))
    on_secondary = ListProperty(_hex("#0B3D91"))
    danger = ListProperty(_hex("#8B0000"))
    bar = ListProperty(_hex("#7A1712"))
    on_bar = ListProperty(_hex("#FFFFFF"))
    disabled = ListProperty(_hex("#D9D9D9"))
    on_disabled = ListProperty(_hex("#222222"))

    def __init__(self, *, width: int, height: int, diagonal_in: float, distance_mm: float) -> None:
        super().__init__()
        self.px_mm = px_per_mm(width, height, diagonal_in)
        self.distance_mm = distance_mm
        # the top bar's controls stay where they are when elder mode or the language changes
        # (a resident aiming at one must not hit another): its geometry is elder mode's
        self.apply(elder=True)
        self.bar_h = round(max(self.button_h * 1.15, 24 * self.px_mm))
        self.bar_gap = self.gap
        self.apply(elder=False)

    def cap_height_mm(self, elder: bool) -> float:
        if elder:
            return max(visual_angle_mm(0.7, self.distance_mm), 6.1) * 1.2
        return 4.8 * 1.2

    def apply(self, *, elder: bool) -> None:
        cap_px = self.cap_height_mm(elder) * self.px_mm
        self.body = round(cap_px / CAP_HEIGHT_RATIO)
        self.small = round(self.body * 0.88)  # still above the minimum: 1.2 × 0.88 > 1
        self.title = round(self.body * 1.6)
        target_mm = 22.0 if elder else 16.0  # well above the 12 / 9 mm minimum
        self.button_h = round(max(target_mm * self.px_mm, self.body * 2.0))
        self.gap = round((5.0 if elder else 3.5) * self.px_mm)
        self.pad = round(6.0 * self.px_mm)
