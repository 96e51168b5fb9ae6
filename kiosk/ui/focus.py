"""Keys drive every screen, and everything in focus is spoken (EZ Access style).

A tactile keypad (or a keyboard in tests) moves a focus ring through the actionable controls of
whatever is in front of the resident: the open overlay, else the current screen. One generic
mechanism, no per-screen code: the widget tree is walked for enabled, visible buttons
(:func:`actionable`), put in reading order (:func:`reading_order`: rows top to bottom, each row
left to right) and named by their own text (:func:`label_of`). Up and down move and say
"按钮：社会保险参保证明，第 2 项，共 4 项"; select presses the control as a touch would; back is
the bottom bar's back; help says what the page holds and the description of the matter in focus;
the volume keys turn the voice up and down. A reading view (the preview's document as text,
``reading_view``) is one place in that order, where the keys stop at each of its fields in the
document's order (``reading_field``: title, label and value, table row, note), each said with
its role ("字段：参保状态，正常参保，第 9 项，共 24 项"). Every key is activity for the session (it
extends the timeouts and answers "still there?"), and every key interrupts what is being said (the
runtime stops the voice on any intent).

The ring is two bands, black outside and yellow inside, drawn above everything (the window's
canvas): every colour has at least 3:1 against one of them (:func:`ring_contrast`), so the ring
stands out on any control and any background, in both modes. A field of a reading view, whose
rows sit a few pixels apart, is marked within that gap instead (a yellow ground under its text,
a thin black edge), so the rows above and below stay readable. A touch hides it; a new screen or
overlay clears the focus, and the next key starts at the page's first control below the top bar.
"""

from __future__ import annotations

import logging
import re
import unicodedata
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from kiosk.config import KEY_NAMES
from kiosk.ui.theme import contrast

log = logging.getLogger("kiosk.ui.focus")

RING_DARK = (0.0, 0.0, 0.0)
RING_LIGHT = (1.0, 0.84, 0.0)  # #FFD600
MIN_RING_CONTRAST = 3.0
_MARKUP_TAG = re.compile(r"\[/?[a-z_]+(?:=[^\]]*)?\]")


@dataclass(frozen=True)
class KeyMap:
    """Kivy key codes for each key of the keypad (``[devices] key_*``)."""

    up: frozenset[int]
    down: frozenset[int]
    back: frozenset[int]
    select: frozenset[int]
    help: frozenset[int]
    volume_up: frozenset[int]
    volume_down: frozenset[int]
    headphones: frozenset[int] = frozenset()  # a jack that is not detected: plugged / unplugged

    @classmethod
    def from_config(cls, devices: Any) -> KeyMap:
        return cls(**{name: frozenset(getattr(devices, f"key_{name}")) for name in KEY_NAMES})

    def action(self, code: int) -> str:
        """The key's name, or "" for a key that is not the keypad's."""
        for name in KEY_NAMES:
            if code in getattr(self, name):
                return name
        return ""


def ring_contrast(behind: tuple[float, float, float]) -> float:
    """The contrast of the ring against a colour: its better band's."""
    return max(contrast(RING_DARK, behind), contrast(RING_LIGHT, behind))


# --- the widget tree ---------------------------------------------------------------------------


def _visible(widget: Any) -> bool:
    w: Any = widget
    while w is not None:
        if getattr(w, "opacity", 1) <= 0.01:
            return False
        parent = getattr(w, "parent", None)
        if parent is w:
            break
        w = parent
    return bool(widget.width > 1 and widget.height > 1)


def window_rect(widget: Any) -> tuple[float, float, float, float]:
    x0, y0 = widget.to_window(widget.x, widget.y)
    return x0, y0, x0 + widget.width, y0 + widget.height


def actionable(root: Any, size: tuple[float, float] | None = None) -> list[Any]:
    """The enabled, visible buttons under ``root`` (inside the window of ``size``), in tree
    order; a matter that cannot be had now too (disabled, it says why: heard, not pressed)."""
    from kivy.uix.behaviors import ButtonBehavior

    found = []
    for widget in root.walk(restrict=True):
        if not isinstance(widget, ButtonBehavior) or not _visible(widget):
            continue
        if widget.disabled and not hasattr(widget, "service_code"):
            continue
        if size is not None:
            x0, y0, x1, y1 = window_rect(widget)
            if x1 <= 0 or y1 <= 0 or x0 >= size[0] or y0 >= size[1]:
                continue
        found.append(widget)
    return found


def reading_order(widgets: Iterable[Any]) -> list[Any]:
    """Rows from the top of the screen down, each row left to right: a widget joins a row when
    its vertical middle lies within the row's first (highest) widget."""
    placed = sorted(((window_rect(w), w) for w in widgets), key=lambda p: (-p[0][3], p[0][0]))
    rows: list[list[tuple[tuple[float, float, float, float], Any]]] = []
    for rect, widget in placed:
        middle = (rect[1] + rect[3]) / 2
        if rows and rows[-1][0][0][1] <= middle <= rows[-1][0][0][3]:
            rows[-1].append((rect, widget))
        else:
            rows.append([(rect, widget)])
    return [w for row in rows for _, w in sorted(row, key=lambda p: p[0][0])]


def field_of(widget: Any) -> tuple[str, str]:
    """A reading view's focus stop: (label, value) of a field, ("", text) of a heading or a
    note; ("", "") for anything else."""
    field = tuple(getattr(widget, "reading_field", ()) or ())
    return (str(field[0]), str(field[1])) if len(field) == 2 else ("", "")


def reading_views(root: Any, size: tuple[float, float] | None = None) -> list[Any]:
    """The visible reading views under ``root`` (a widget with ``reading_view`` true, e.g. the
    preview's document as text): each is one place in the page's reading order, where its
    fields are read in the document's order."""
    found = []
    for widget in root.walk(restrict=True):
        if not getattr(widget, "reading_view", False) or widget.disabled:
            continue
        if not _visible(widget):
            continue
        if size is not None:
            x0, y0, x1, y1 = window_rect(widget)
            if x1 <= 0 or y1 <= 0 or x0 >= size[0] or y0 >= size[1]:
                continue
        found.append(widget)
    return found


def stops_in(view: Any) -> list[Any]:
    """A reading view's fields, top to bottom as the document has them (scrolled out of sight
    or not: scrolling keeps their order)."""
    stops = [w for w in view.walk(restrict=True) if any(field_of(w))]
    return sorted(stops, key=lambda w: -window_rect(w)[3])


def label_of(widget: Any) -> str:
    """What a control is called, as it reads on the screen: its ``spoken`` words when it has
    them, a matter's name, else its text without markup; a field's label (a heading's text)."""
    label, value = field_of(widget)
    if label or value:
        return label or value
    spoken = str(getattr(widget, "spoken", "") or "")
    if spoken:
        return spoken
    name = str(getattr(widget, "name", "") or "") if hasattr(widget, "service_code") else ""
    text = name or str(getattr(widget, "text", "") or "")
    text = _MARKUP_TAG.sub("", text)
    text = text.replace("&bl;", "[").replace("&br;", "]").replace("&amp;", "&")
    # pictures in the text (the rating's stars, a tile's icon) are not read out: the words are
    text = "".join(c for c in text if unicodedata.category(c) != "So")
    return " ".join(text.split())


def role_of(widget: Any) -> str:
    """The translation key of the control's role."""
    if any(field_of(widget)):
        return str(getattr(widget, "reading_role", "") or "focus.role.field")
    if hasattr(widget, "service_code"):
        if getattr(widget, "disabled", False):
            return "focus.role.unavailable"
        return "focus.role.list" if getattr(widget, "glyph", "") else "focus.role.matter"
    if getattr(widget, "group", None) is not None or hasattr(widget, "allow_no_selection"):
        on = getattr(widget, "state", "normal") == "down"
        return "focus.role.toggle_on" if on else "focus.role.toggle_off"
    return "focus.role.button"


def _reveal(widget: Any) -> None:
    """Scroll the reading view so that the field in focus is seen (the ring on it)."""
    from kivy.uix.scrollview import ScrollView

    w = widget.parent
    while w is not None and w.parent is not w:
        if isinstance(w, ScrollView):
            w.scroll_to(widget, padding=10, animate=False)
            return
        w = w.parent


def in_top_bar(widget: Any) -> bool:
    from kiosk.ui.widgets import TopBar

    w = widget.parent
    while w is not None and w.parent is not w:
        if isinstance(w, TopBar):
            return True
        w = w.parent
    return False


# --- the keys -----------------------------------------------------------------------------------


class Focus:
    """The focus of one app: which control, the ring, what each key does.

    ``root`` gives the widget the keys move in (the open overlay, else the current screen);
    ``say(key, params)`` speaks and shows a line (the runtime's ``say`` intent); ``tr(key,
    **params)`` translates in the session's language; ``intent(name, arg)`` and ``back()`` are
    the app's own.
    """

    def __init__(
        self,
        keys: KeyMap,
        *,
        root: Callable[[], Any],
        say: Callable[[str, dict[str, str]], None],
        tr: Callable[..., str],
        intent: Callable[[str, Any], None],
        back: Callable[[], None],
        warning: Callable[[], bool] = lambda: False,
    ) -> None:
        self.keys = keys
        self._root = root
        self._say = say
        self._tr = tr
        self._intent = intent
        self._back = back
        self._warning = warning
        self._focused: weakref.ReferenceType[Any] | None = None
        self._context: Any = None
        self._ring: Any = None
        self._drawn: tuple[float, ...] = ()
        self._marked: tuple[weakref.ref[Any], Any] | None = None  # a reading field's ground

    @property
    def focused(self) -> Any:
        """The control in focus; None when none is, or it is gone."""
        return self._focused() if self._focused is not None else None

    def controls(self) -> list[Any]:
        from kivy.core.window import Window

        root = self._root()
        size = (Window.width, Window.height)
        views = reading_views(root, size)
        placed = reading_order([*actionable(root, size), *views])
        # a reading view is one place in the page's order: its fields, in the document's
        return [s for w in placed for s in (stops_in(w) if w in views else [w])]

    def key(self, code: int) -> bool:
        """Handle a key press; False when the key is not one of the keypad's."""
        action = self.keys.action(code)
        if not action:
            log.debug("key %d is not the keypad's", code)
            return False
        log.info("key %s", action)
        self._sync()
        if self._warning():
            self._intent("touch", None)  # any key answers "are you still there?", as a touch
            return True
        if action in ("up", "down"):
            self.move(1 if action == "down" else -1)
        elif action == "select":
            self.select()
        elif action == "back":
            self._intent("touch", None)
            self.clear()
            self._back()
        elif action == "help":
            self.summary()
        elif action == "headphones":
            self._intent("headphones", None)  # the runtime knows whether they were in
        else:
            self._intent("louder", action == "volume_up")
        return True

    def move(self, step: int, *, quiet: bool = False, controls: list[Any] | None = None) -> None:
        controls = self.controls() if controls is None else controls
        if not controls:
            if not quiet:
                self.summary()
            return
        current = self.focused
        if current in controls:
            index = (controls.index(current) + step) % len(controls)
        elif step > 0:  # a new page: its first control below the top bar
            index = next((i for i, w in enumerate(controls) if not in_top_bar(w)), 0)
        else:
            index = len(controls) - 1
        self.focus(controls[index], controls, quiet=quiet)

    def walk(self) -> list[Any]:
        """Every control the down key reaches from a fresh page, in the order it reaches them,
        without saying them (the tour's check that every control can be reached)."""
        self.clear()
        reached: list[Any] = []
        controls = self.controls()  # nothing changes while nothing is pressed
        for _ in range(len(controls) + 1):
            self.move(1, quiet=True, controls=controls)
            widget = self.focused
            if widget is None or widget in reached:
                break
            reached.append(widget)
        return reached

    def focus(self, widget: Any, controls: Sequence[Any], *, quiet: bool = False) -> None:
        self._focused = weakref.ref(widget)
        if quiet:
            return  # drawn at the next tick (the tour's walk: the page is left as it is)
        label, value = field_of(widget)
        if label or value:
            _reveal(widget)
        self.draw()
        if label or value:  # a field of the document: its label and value, as on the screen
            self._say(
                "focus.field" if label else "focus.text",
                {
                    "role": self._tr(role_of(widget)),
                    "label": label,
                    "value": value,
                    "n": str(list(controls).index(widget) + 1),
                    "total": str(len(controls)),
                },
            )
            return
        self._say(
            "focus.said",
            {
                "role": self._tr(role_of(widget)),
                "label": label_of(widget),
                "n": str(list(controls).index(widget) + 1),
                "total": str(len(controls)),
            },
        )

    def select(self) -> None:
        widget = self.focused
        if widget is None or widget not in self.controls():
            self.move(1)  # nothing in focus: the first control is said, not pressed blind
            return
        if widget.disabled or any(field_of(widget)):
            # a matter that cannot be had now, a field of a document: said again, not pressed
            self.focus(widget, self.controls())
            return
        self._intent("touch", None)
        widget.trigger_action(duration=0)
        if hasattr(widget, "allow_no_selection") or getattr(widget, "group", None) is not None:
            self.focus(widget, self.controls())  # a toggle says its new state

    def summary(self) -> None:
        controls = self.controls()
        items = sum(1 for w in controls if hasattr(w, "service_code"))
        fields = sum(1 for w in controls if any(field_of(w)))
        about = self._tr("focus.about_fields", n=str(fields)) if fields else ""
        widget = self.focused
        detail: str = str(getattr(widget, "detail", "") or "") if widget in controls else ""
        if detail:
            detail = detail.rstrip("。.！!")  # the sentence's stop is the line's
            about += self._tr("focus.about", label=label_of(widget), detail=detail)
        # the runtime adds the resident's masked ID number, in headphones only
        self._say(
            "focus.summary",
            {"about": about, "items": str(items), "buttons": str(len(controls) - items - fields)},
        )

    # --- the ring -----------------------------------------------------------------------------

    def clear(self) -> None:
        self._focused = None
        self.draw()

    def _sync(self) -> None:
        """A new screen or overlay since the last look: the focus starts again."""
        context = self._root()
        if context is not self._context:
            self._context = context
            self.clear()

    def tick(self, _dt: float = 0.0) -> None:
        """On the clock: follow the control as layouts move it; drop it with its screen."""
        self._sync()
        self.draw()

    def draw(self) -> None:
        from kivy.core.window import Window
        from kivy.graphics import InstructionGroup

        widget = self.focused
        if widget is not None and (widget.parent is None or not _visible(widget)):
            widget = None
        rect: tuple[float, ...] = window_rect(widget) if widget is not None else ()
        if rect == self._drawn:
            return
        self._drawn = rect
        if self._ring is None:
            self._ring = InstructionGroup()
            Window.canvas.after.add(self._ring)
        self._ring.clear()
        self._unmark()
        if not rect or widget is None:
            return
        if any(field_of(widget)):
            self._mark_field(widget, rect)
        else:
            self._draw_ring(rect)

    def _draw_ring(self, rect: tuple[float, ...]) -> None:
        from kivy.graphics import Color
        from kivy.metrics import dp

        band = max(3.0, float(dp(4)))  # a Line of width w is 2 w thick
        x0, y0, x1, y1 = rect
        # black | yellow | black, from the control outwards: a light control meets black, a dark
        # one yellow, and the outer black parts it from a light page
        for colour, middle, width in (
            (RING_DARK, 0.0, band / 2),
            (RING_LIGHT, band * 1.5, band),
            (RING_DARK, band * 3.5, band),
        ):
            self._ring.add(Color(*colour, 1))
            self._ring.add(_rectangle(x0, y0, x1, y1, middle, width))

    def _mark_field(self, widget: Any, rect: tuple[float, ...]) -> None:
        """A field of a reading view: its rows sit a few pixels apart, and the ring (18 px
        wide) covered the text of the rows above and below. The field is marked within the gap
        to its neighbours instead: a yellow ground under its text (the document's dark text
        keeps more than 10:1 on it) and a black edge around that ground."""
        from kivy.graphics import Color, InstructionGroup, Rectangle
        from kivy.metrics import dp

        spacing = getattr(widget.parent, "spacing", 0)
        gap = float(spacing[1] if isinstance(spacing, list | tuple) else spacing or 0)
        half = max(2.0, gap / 2)
        edge = max(1.0, min(float(dp(1.5)), half / 3))  # the Line's half-thickness
        ground = InstructionGroup()
        ground.add(Color(*RING_LIGHT, 1))
        ground.add(
            Rectangle(
                pos=(widget.x - half, widget.y - half),
                size=(widget.width + 2 * half, widget.height + 2 * half),
            )
        )
        widget.canvas.before.add(ground)
        self._marked = (weakref.ref(widget), ground)
        x0, y0, x1, y1 = rect
        self._ring.add(Color(*RING_DARK, 1))
        self._ring.add(_rectangle(x0, y0, x1, y1, half - edge, edge))

    def _unmark(self) -> None:
        if self._marked is None:
            return
        ref, ground = self._marked
        self._marked = None
        widget = ref()
        if widget is not None:
            widget.canvas.before.remove(ground)

    @property
    def ring_rect(self) -> tuple[float, ...]:
        """Where the ring is drawn (the focused control's window rectangle), () when none."""
        return self._drawn


def _rectangle(x0: float, y0: float, x1: float, y1: float, middle: float, width: float) -> Any:
    """A rectangular Line around (x0, y0)–(x1, y1), its middle ``middle`` outside the edge."""
    from kivy.graphics import Line

    return Line(
        rectangle=(x0 - middle, y0 - middle, x1 - x0 + 2 * middle, y1 - y0 + 2 * middle),
        width=width,
        joint="miter",
    )
