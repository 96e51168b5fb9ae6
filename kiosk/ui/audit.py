"""Elder-first numbers, measured on the live widget tree of the running app.

For the configured screen (size, resolution) and viewing distance, every visible text must have
a capital height of at least 0.7° of visual angle in elder mode (≈ 6.1 mm at 500 mm; 4.8 mm in
standard mode), measured from the font's own metrics; a contrast against what is behind it of at
least 7:1 (4.5:1 in standard mode), computed from the colours the widgets draw with; every touch
target at least 12 × 12 mm (9 × 9 mm) with gaps of at least 2 mm to its neighbours; and no page
offers more than six choices. Every text must fit its widget (:func:`text_fits`): painted inside
its box, nothing shortened with "…", no line dropped or cut by a fixed text box. In elder mode a
resident's page has at most six targets of its own (:func:`page_target`: the top bar, the bottom
bar's back and cancel and page turning are the frame, the same on every page, and not counted;
the pinyin keypad counts as one, as a keyboard is read as one control).
:func:`audit` returns what fails, as sentences a person can act on; :func:`keys_audit` checks
that every target is reached by the keypad, has a spoken label and a visible focus ring.
"""

from __future__ import annotations

import functools
import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiosk.ui.theme import contrast, visual_angle_mm

MIN_GAP_MM = 2.0
MAX_CHOICES = 6
MAX_ELDER_TARGETS = 6  # a resident's elder page: its own targets, the frame not counted
FRAME_IDS = frozenset({"prev_page", "next_page"})  # page turning: the same on every list
TECHNICIAN_SCREENS = frozenset({"unlock", "maintenance"})  # not residents' pages
_MARKUP_TAG = re.compile(r"\[/?[a-z_]+(?:=[^\]]*)?\]")


@dataclass(frozen=True)
class Rules:
    cap_mm: float
    contrast: float
    target_mm: float

    @classmethod
    def for_mode(cls, *, elder: bool, distance_mm: float) -> Rules:
        if elder:
            return cls(max(visual_angle_mm(0.7, distance_mm), 6.1), 7.0, 12.0)
        return cls(4.8, 4.5, 9.0)


@dataclass
class Findings:
    texts: int = 0
    targets: int = 0
    problems: list[str] = field(default_factory=list)


@functools.lru_cache(maxsize=256)
def cap_height_px(font_path: str, size_px: int) -> int:
    """The height of a capital H in pixels at this em size, from the font's outlines."""
    from PIL import ImageFont

    font = ImageFont.truetype(font_path, size_px)
    _, top, _, bottom = font.getbbox("H")
    return int(bottom - top)


def _rgb(color: Any, behind: tuple[float, float, float] = (1, 1, 1)) -> tuple[float, float, float]:
    r, g, b, *rest = list(color) + [1.0] * (4 - len(color))
    a = rest[0] if rest else 1.0
    return (
        r * a + behind[0] * (1 - a),
        g * a + behind[1] * (1 - a),
        b * a + behind[2] * (1 - a),
    )


def _visible(widget: Any) -> bool:
    w: Any = widget
    while w is not None:
        if getattr(w, "opacity", 1) <= 0.01:
            return False
        parent = w.parent
        if parent is w:
            break
        w = parent
    return widget.width > 1 and widget.height > 1


def _window_rect(widget: Any) -> tuple[float, float, float, float]:
    x0, y0 = widget.to_window(widget.x, widget.y)
    return x0, y0, x0 + widget.width, y0 + widget.height


def _on_screen(rect: tuple[float, float, float, float], size: tuple[int, int]) -> bool:
    x0, y0, x1, y1 = rect
    return x1 > 0 and y1 > 0 and x0 < size[0] and y0 < size[1]


def _background(widget: Any, theme: Any) -> tuple[float, float, float]:
    """The flat colour a widget's text is drawn on: its own button face, or its container's."""
    from kivy.uix.button import Button
    from kivy.uix.modalview import ModalView

    from kiosk.ui.widgets import CaptionBar, TopBar

    w: Any = widget
    while w is not None:
        if isinstance(w, Button) and w.background_normal == "":
            return _rgb(w.background_color)
        if isinstance(w, TopBar):
            return _rgb(theme.bar)
        if isinstance(w, CaptionBar):
            return _rgb(theme.primary)
        if isinstance(w, ModalView):
            return _rgb(w.background_color)
        if w.parent is w:
            break
        w = w.parent
    return _rgb(theme.bg)


def _gap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    dx = max(b[0] - a[2], a[0] - b[2], 0.0)
    dy = max(b[1] - a[3], a[1] - b[3], 0.0)
    if dx == 0 and dy == 0:
        overlap_x = min(a[2], b[2]) - max(a[0], b[0])
        overlap_y = min(a[3], b[3]) - max(a[1], b[1])
        return -min(overlap_x, overlap_y)  # negative: they touch or overlap
    return max(dx, dy)


def audit(
    root: Any, theme: Any, *, elder: bool, font: Path, name: str, page: bool = True
) -> Findings:
    """Check every visible text and target under ``root`` (a screen or an open overlay).

    ``page``: ``root`` is a page a resident chooses on, whose targets are counted in elder mode
    (a technician's screen or the caption bar is not).
    """
    from kivy.core.window import Window
    from kivy.uix.behaviors import ButtonBehavior
    from kivy.uix.label import Label

    rules = Rules.for_mode(elder=elder, distance_mm=theme.distance_mm)
    px_mm = float(theme.px_mm)
    found = Findings()
    targets: list[tuple[str, tuple[float, float, float, float]]] = []
    drawn: list[tuple[str, tuple[float, float, float, float]]] = []  # where text is painted
    size = (int(Window.width), int(Window.height))
    own: list[str] = []  # the page's own targets (elder mode counts them)
    for widget in root.walk(restrict=True):
        if not _visible(widget) or not _on_screen(_window_rect(widget), size):
            continue
        label = _label_name(widget)
        if isinstance(widget, Label) and widget.text.strip():
            found.texts += 1
            misfit = text_fits(widget)
            if misfit:
                found.problems.append(f"{name}: text {label} {misfit}")
            rect = _text_rect(widget)
            if not _in_scroll_view(widget):
                drawn.append((label, rect))
                if rect[0] < -1 or rect[1] < -1 or rect[2] > size[0] + 1 or rect[3] > size[1] + 1:
                    found.problems.append(f"{name}: text {label} runs off the screen")
            fs = round(float(widget.font_size))
            font_path = str(getattr(widget, "font_name", "") or font)
            if not Path(font_path).is_file():
                font_path = str(font)
            cap_mm = cap_height_px(font_path, fs) / px_mm
            if cap_mm < rules.cap_mm - 0.05:
                found.problems.append(
                    f"{name}: text {label} has capitals {cap_mm:.1f} mm high, "
                    f"needs {rules.cap_mm:.1f} mm"
                )
            bg = _background(widget, theme)
            color = widget.disabled_color if widget.disabled else widget.color
            ratio = contrast(_rgb(color, bg), bg)
            if ratio < rules.contrast:
                found.problems.append(
                    f"{name}: text {label} has contrast {ratio:.1f}:1, needs {rules.contrast}:1"
                )
        if isinstance(widget, ButtonBehavior) and not widget.disabled:
            found.targets += 1
            w_mm, h_mm = widget.width / px_mm, widget.height / px_mm
            if min(w_mm, h_mm) < rules.target_mm - 0.05:
                found.problems.append(
                    f"{name}: target {label} is {w_mm:.1f} × {h_mm:.1f} mm, "
                    f"needs {rules.target_mm:.0f} × {rules.target_mm:.0f} mm"
                )
            targets.append((label, _window_rect(widget)))
            if page_target(widget):
                own.append(label)
        if type(widget).__name__ == "Keypad" and any(not c.disabled for c in widget.children):
            own.append("the keypad")  # a keyboard is read as one control, not 23 choices
        choices = [c for c in getattr(widget, "children", ()) if hasattr(c, "service_code")]
        if len(choices) > MAX_CHOICES:
            found.problems.append(
                f"{name}: {len(choices)} choices on one page, at most {MAX_CHOICES}"
            )
    if elder and page and len(own) > MAX_ELDER_TARGETS:
        found.problems.append(
            f"{name}: {len(own)} targets on one elder page, at most {MAX_ELDER_TARGETS}: "
            + ", ".join(own)
        )
    for (la, ra), (lb, rb) in itertools.combinations(drawn, 2):
        if _gap(ra, rb) < -2:
            found.problems.append(f"{name}: texts {la} and {lb} overlap")
    for (la, ra), (lb, rb) in itertools.combinations(targets, 2):
        gap_mm = _gap(ra, rb) / px_mm
        if gap_mm < MIN_GAP_MM - 0.05:
            found.problems.append(
                f"{name}: targets {la} and {lb} are {gap_mm:.1f} mm apart, need {MIN_GAP_MM:.0f} mm"
            )
    return found


def text_fits(widget: Any) -> str:
    """Why a label's text does not fit its widget, or "" when it does.

    Kivy paints a label's texture centred on the widget; ``halign``/``valign``, ``padding`` and
    ``text_size`` act inside the texture. So the text fits when the texture lies inside the
    widget's box, nothing was shortened with "…" (``shorten``), and a fixed ``text_size`` did
    not cut a line (its laid-out size is larger) or drop one (fewer characters were laid out
    than the text has).
    """
    widget.texture_update()
    tw, th = widget.texture_size
    if tw > widget.width + 1 or th > widget.height + 1:
        return (
            f"is {tw:.0f} × {th:.0f} px, larger than its widget "
            f"({widget.width:.0f} × {widget.height:.0f} px)"
        )
    core = getattr(widget, "_label", None)
    if core is None:
        return ""
    if getattr(core, "is_shortened", False):
        return "is shortened to fit"
    uw, uh = core.text_size
    iw, ih = getattr(core, "_internal_size", (0, 0))
    if (uw is not None and iw > uw + 1) or (uh is not None and ih > uh + 1):
        return f"is cut by its text box ({iw:.0f} × {ih:.0f} px in {uw} × {uh})"
    laid = "".join(w.text for line in core._cached_lines for w in line.words)
    text = widget.text
    if widget.markup:
        text = _MARKUP_TAG.sub("", text)
        text = text.replace("&bl;", "[").replace("&br;", "]").replace("&amp;", "&")
    if len("".join(laid.split())) < len("".join(text.split())):
        return "has lines dropped by its text box"
    return ""


def page_target(widget: Any) -> bool:
    """A target of the page itself, not of its frame (top bar, back/cancel, page turning); the
    keys of a keypad count as one target, the keypad (:func:`audit`)."""
    from kiosk.ui.widgets import BottomBar, TopBar

    w: Any = widget.parent
    while w is not None and w.parent is not w:
        if isinstance(w, TopBar | BottomBar) or type(w).__name__ == "Keypad":
            return False
        if any(_same(v, widget) for k, v in getattr(w, "ids", {}).items() if k in FRAME_IDS):
            return False
        w = w.parent
    return True


def _same(ref: Any, widget: Any) -> bool:
    """``ids`` hold weak proxies, never the widget itself: compare by the widget's uid."""
    try:
        return bool(ref.uid == widget.uid)
    except ReferenceError:  # the widget it named is gone
        return False


def _text_rect(widget: Any) -> tuple[float, float, float, float]:
    """Where a label's text is painted: its texture, centred in the widget as Kivy draws it."""
    x0, y0, x1, y1 = _window_rect(widget)
    tw, th = widget.texture_size
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return cx - tw / 2, cy - th / 2, cx + tw / 2, cy + th / 2


def _in_scroll_view(widget: Any) -> bool:
    from kivy.uix.scrollview import ScrollView

    w = widget.parent
    while w is not None and w.parent is not w:
        if isinstance(w, ScrollView):
            return True
        w = w.parent
    return False


def _label_name(widget: Any) -> str:
    text = str(getattr(widget, "text", "") or "").replace("\n", " ").strip()
    ident, w = "", widget
    for _ in range(8):
        w = getattr(w, "parent", None)
        if w is None or ident:
            break
        ident = next((k for k, v in getattr(w, "ids", {}).items() if _same(v, widget)), "")
    short = text[:24] + ("…" if len(text) > 24 else "")
    return f"{type(widget).__name__}{'#' + ident if ident else ''} '{short}'"


def keys_audit(root: Any, theme: Any, focus: Any, *, name: str) -> list[str]:
    """Usable without sight (:mod:`kiosk.ui.focus`): every target under ``root`` is reached by
    the down key, is named when it is (a spoken label), and the focus ring stands out at least
    3:1 against the control and what is around it. Returns the problems; leaves no focus."""
    from kivy.core.window import Window
    from kivy.uix.behaviors import ButtonBehavior

    from kiosk.ui.focus import MIN_RING_CONTRAST, label_of, ring_contrast

    size = (int(Window.width), int(Window.height))
    targets = [
        w
        for w in root.walk(restrict=True)
        if isinstance(w, ButtonBehavior)
        and not w.disabled
        and _visible(w)
        and _on_screen(_window_rect(w), size)
    ]
    reached = focus.walk()
    problems = []
    uids = {w.uid for w in reached}
    for widget in targets:
        if widget.uid not in uids:
            problems.append(f"{name}: target {_label_name(widget)} cannot be reached by keys")
    for widget in reached:
        if not label_of(widget):
            problems.append(f"{name}: target {_label_name(widget)} has no spoken label")
        for where, behind in (
            ("the control", _background(widget, theme)),
            ("its surroundings", _background(widget.parent, theme)),
        ):
            ratio = ring_contrast(behind)
            if ratio < MIN_RING_CONTRAST:
                problems.append(
                    f"{name}: the focus ring on {_label_name(widget)} has contrast "
                    f"{ratio:.1f}:1 against {where}, needs {MIN_RING_CONTRAST}:1"
                )
    focus.clear()
    return problems
