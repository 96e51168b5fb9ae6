"""Charts as inline SVG drawn by the server: no script, no library, nothing fetched.

Two shapes cover the Statistics page: horizontal bars (:func:`hbars`: ratings, the abandonment
funnel, uptime per station) and columns over days (:func:`columns`: daily volume), both stacked
when a bar has several segments, with a legend naming the series. The rules every chart keeps:

- every text that came from data (labels, series, notes, titles) is escaped (:func:`esc`), so a
  service name or station id can never become markup;
- every bar carries its value as text next to it (a column's total above it, where there is room
  for it; always in its tooltip), and every segment its own tooltip;
- the chart is one accessible image: ``role="img"`` with a ``<title>`` and a ``<desc>`` that
  reads out all values, so a screen reader gets the numbers without the picture;
- each bar is a ``<g class="bar">`` with ``data-label`` and ``data-value`` (and each segment a
  ``<rect class="seg">`` with ``data-series`` and ``data-value``), which is what the tests read;
- nothing to draw (no bars, or every value zero) is said in words (:func:`no_data`), not drawn
  as a row of zeros.

Sizes are in SVG user units with a ``viewBox``, so the page's CSS may scale a chart down.
Text widths are estimated (a CJK character one em, others 0.6 em); long labels are shortened
with "…", their full text stays in the tooltip.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass

# Okabe–Ito: told apart by people with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#999999", "#F0E442")
FONT = 12
ROW = 26


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def text_width(text: str, size: float = FONT) -> float:
    return sum(size if ord(c) > 0x2E80 else size * 0.6 for c in text)


def shorten(text: str, width: float, size: float = FONT) -> str:
    if text_width(text, size) <= width:
        return text
    out = ""
    for c in text:
        if text_width(out + c + "…", size) > width:
            break
        out += c
    return out + "…"


def number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


@dataclass(frozen=True)
class Segment:
    series: str  # the legend's name for it; "" for a chart of one series
    value: float


@dataclass(frozen=True)
class Bar:
    label: str
    segments: tuple[Segment, ...]
    note: str = ""  # shown after the value ("38 %", "of 412 who got here")
    text: str = ""  # shown instead of the value (e.g. "99.5 %" for a ratio)

    @property
    def total(self) -> float:
        return sum(s.value for s in self.segments)

    @property
    def value_text(self) -> str:
        shown = self.text or number(self.total)
        return f"{shown} {self.note}".strip()

    @classmethod
    def one(cls, label: str, value: float, note: str = "", text: str = "") -> Bar:
        return cls(label, (Segment("", value),), note, text)


def no_data(title: str, message: str, *, width: int = 640) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart no-data" viewBox="0 0 {width} 48"'
        f' width="{width}" height="48" role="img" aria-label="{esc(title)}: {esc(message)}">'
        f"<title>{esc(title)}</title>"
        f'<text x="{width // 2}" y="28" text-anchor="middle" font-size="{FONT + 2}"'
        f' fill="#555">{esc(message)}</text></svg>'
    )


def _open(key: str, title: str, desc: str, width: float, height: float) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="chart-{esc(key)}"'
        f' viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" height="{height:.0f}"'
        f' role="img" aria-labelledby="chart-{esc(key)}-title chart-{esc(key)}-desc"'
        f' font-size="{FONT}" font-family="sans-serif">'
        f'<title id="chart-{esc(key)}-title">{esc(title)}</title>'
        f'<desc id="chart-{esc(key)}-desc">{esc(desc)}</desc>'
    )


def _describe(bars: Sequence[Bar]) -> str:
    return "; ".join(f"{b.label}: {b.value_text}" for b in bars)


def _colours(series: Sequence[str]) -> dict[str, str]:
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(series)}


def _legend(series: Sequence[str], colours: dict[str, str], y: float, width: float) -> str:
    parts, x, line = [], 0.0, y
    for name in series:
        w = 18 + text_width(name) + 16
        if x and x + w > width:
            x, line = 0.0, line + 18
        parts.append(
            f'<g class="legend-item" data-series="{esc(name)}">'
            f'<rect x="{x:.1f}" y="{line:.1f}" width="12" height="12" fill="{colours[name]}"/>'
            f'<text x="{x + 16:.1f}" y="{line + 10:.1f}">{esc(name)}</text></g>'
        )
        x += w
    return f'<g class="legend">{"".join(parts)}</g>'


def _legend_height(series: Sequence[str], width: float) -> float:
    if not series:
        return 0.0
    lines, x = 1, 0.0
    for name in series:
        w = 18 + text_width(name) + 16
        if x and x + w > width:
            lines, x = lines + 1, 0.0
        x += w
    return lines * 18 + 8


def _segments(
    bar: Bar, colours: dict[str, str], place: Callable[[float, float], tuple[float, ...]]
) -> str:
    """The bar's segments as rects; ``place(start, value)`` gives x, y, width, height."""
    out, start = [], 0.0
    for seg in bar.segments:
        if seg.value <= 0:
            continue
        x, y, w, h = place(start, seg.value)
        tip = f"{bar.label} · {seg.series}: {number(seg.value)}" if seg.series else bar.label
        out.append(
            f'<rect class="seg" data-series="{esc(seg.series)}" data-value="{number(seg.value)}"'
            f' x="{x:.1f}" y="{y:.1f}" width="{max(w, 1):.1f}" height="{max(h, 1):.1f}"'
            f' fill="{colours.get(seg.series, PALETTE[0])}"><title>{esc(tip)}</title></rect>'
        )
        start += seg.value
    return "".join(out)


def hbars(
    key: str,
    title: str,
    bars: Sequence[Bar],
    *,
    series: Sequence[str] = (),
    width: int = 640,
    scale_max: float | None = None,
    zeros_are_data: bool = False,
    empty: str = "—",
) -> str:
    """Horizontal bars, one row each, labelled on the left, valued on the right; stacked by
    ``series`` (named in a legend) when bars have several segments. ``scale_max`` fixes the
    full length (100 for percentages); else the largest total. Bars that are all zero are "no
    data" unless ``zeros_are_data`` (an uptime of 0 % is a finding)."""
    if not bars or not (zeros_are_data or any(b.total > 0 for b in bars)):
        return no_data(title, empty, width=width)
    label_w = min(max(text_width(b.label) for b in bars) + 8, width * 0.4)
    value_w = min(max(text_width(b.value_text) for b in bars) + 12, width * 0.3)
    plot_w = width - label_w - value_w
    top = scale_max or max(b.total for b in bars) or 1.0
    colours = _colours(series)
    legend_h = _legend_height(series, width)
    height = len(bars) * ROW + legend_h + 4
    parts = [_open(key, title, _describe(bars), width, height)]
    for i, bar in enumerate(bars):
        y = i * ROW

        def place(start: float, value: float, y: float = y) -> tuple[float, ...]:
            return (label_w + plot_w * start / top, y + 4, plot_w * value / top, ROW - 8)

        end = label_w + plot_w * min(bar.total, top) / top
        parts.append(
            f'<g class="bar" data-label="{esc(bar.label)}" data-value="{number(bar.total)}">'
            f"<title>{esc(bar.label)}: {esc(bar.value_text)}</title>"
            f'<text class="label" x="{label_w - 6:.1f}" y="{y + ROW / 2 + 4:.1f}"'
            f' text-anchor="end">{esc(shorten(bar.label, label_w - 8))}</text>'
            f"{_segments(bar, colours, place)}"
            f'<text class="value" x="{end + 4:.1f}" y="{y + ROW / 2 + 4:.1f}">'
            f"{esc(bar.value_text)}</text></g>"
        )
    if series:
        parts.append(_legend(series, colours, len(bars) * ROW + 8, width))
    parts.append("</svg>")
    return "".join(parts)


def columns(
    key: str,
    title: str,
    bars: Sequence[Bar],
    *,
    series: Sequence[str] = (),
    width: int = 720,
    plot_h: int = 180,
    empty: str = "—",
) -> str:
    """Columns left to right (days), stacked by ``series``, each with its total above it when
    there is room (always in its tooltip); an axis label under every column there is room for."""
    if not bars or not any(b.total > 0 for b in bars):
        return no_data(title, empty, width=width)
    left, head = 8.0, 18.0
    col_w = (width - left) / len(bars)
    top = max(b.total for b in bars)
    colours = _colours(series)
    every = max(1, int(48 // col_w) + 1)  # an axis label needs about 48 units
    legend_h = _legend_height(series, width)
    height = head + plot_h + 20 + legend_h
    base = head + plot_h
    parts = [_open(key, title, _describe(bars), width, height)]
    parts.append(
        f'<line x1="{left}" y1="{base}" x2="{width}" y2="{base}" stroke="#888" stroke-width="1"/>'
    )
    for i, bar in enumerate(bars):
        x = left + i * col_w
        pad = min(4.0, col_w * 0.15)

        def place(start: float, value: float, x: float = x, pad: float = pad) -> tuple[float, ...]:
            h = plot_h * value / top
            return (x + pad, base - plot_h * start / top - h, col_w - 2 * pad, h)

        cx = x + col_w / 2
        total_y = base - plot_h * bar.total / top - 4
        value = (
            f'<text class="value" x="{cx:.1f}" y="{total_y:.1f}" text-anchor="middle"'
            f' font-size="{FONT - 2}">{esc(bar.value_text)}</text>'
            if text_width(bar.value_text, FONT - 2) <= col_w
            else ""
        )
        axis = (
            f'<text class="axis" x="{cx:.1f}" y="{base + 14:.1f}" text-anchor="middle"'
            f' font-size="{FONT - 2}">{esc(bar.label)}</text>'
            if i % every == 0
            else ""
        )
        parts.append(
            f'<g class="bar" data-label="{esc(bar.label)}" data-value="{number(bar.total)}">'
            f"<title>{esc(bar.label)}: {esc(bar.value_text)}</title>"
            f"{_segments(bar, colours, place)}{value}{axis}</g>"
        )
    if series:
        parts.append(_legend(series, colours, base + 26, width))
    parts.append("</svg>")
    return "".join(parts)
