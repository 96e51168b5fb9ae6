"""Text that fits its widget: the font size the kv rules give is the largest; when the text does
not fit, it is set smaller, down to a floor that stays legible in the mode (the theme's
``small``, above elder mode's minimum), and wrapped text is laid out again at each size.

The same rule the choose screen's service buttons follow (``ServiceButton.fit``), for every
big button and for the station's name in the top bar. What "fits" means is the tour's
(:func:`kiosk.ui.audit.text_fits`); the room a button may take is the height its layout gives
it (a grid's forced row, a size hint), or unlimited when the button grows with its text.
"""

from __future__ import annotations

from typing import Any

from kivy.app import App
from kivy.clock import Clock
from kivy.uix.gridlayout import GridLayout

SHRINK = 0.92  # each step: 8 % smaller


def room(widget: Any) -> tuple[float, float | None]:
    """The width and height the text may take inside ``widget`` (``None``: it grows)."""
    from kivy.uix.behaviors import ButtonBehavior

    width = float(widget.width)
    if isinstance(widget, ButtonBehavior) and widget.text_size[0] is None:
        width -= float(App.get_running_app().theme.gap)  # one line: clear of the border
    parent = widget.parent
    if isinstance(parent, GridLayout) and parent.row_force_default:
        height: float | None = float(parent.row_default_height)
    elif widget.size_hint_y is not None or not getattr(widget, "wrap", False):
        height = float(widget.height)
    else:
        height = None  # a wrapping button with its own height rule grows with its text
    return width, height


def measured_with(label: Any, *extra: Any) -> tuple[Any, ...]:
    """What ``label``'s text is measured with: its core label's text, box and font (the core's
    options follow the widget's properties through observers, which may run after a fit made
    inside another observer of the same change and set the core back to a value the fit had
    replaced), and the room it must fit in. A fit is done again only when this has changed."""
    core = label._label
    options = core.options
    font = (options.get("font_name"), options.get("font_size"), options.get("bold"))
    return (core.text, tuple(core.usersize or ()), font, room(label), *extra)


def fits(widget: Any) -> bool:
    width, height = room(widget)
    tw, th = widget.texture_size
    core = getattr(widget, "_label", None)
    iw, ih = getattr(core, "_internal_size", (tw, th)) if core is not None else (tw, th)
    uw = widget.text_size[0]
    if tw > width + 1 or (uw is not None and iw > uw + 1):
        return False
    if core is not None and getattr(core, "is_shortened", False):
        return False
    return height is None or max(th, ih) <= height + 1


class FitText:
    """Mixin for a :class:`~kivy.uix.label.Label` (or button): shrink the text until it fits.

    A subclass with its own ``fit`` (the choose screen's service buttons) keeps it: this class
    then only calls it when the kv rules change the font size or the text box.
    """

    _fit_base = 0.0  # the font size the kv rules set last: the largest the text may be
    _fit_busy = False
    _fit_key: tuple[Any, ...] = ()

    def on_size(self, *_args: Any) -> None:
        self.fit_soon()

    def on_text(self, *_args: Any) -> None:
        self.fit_soon()

    def on_text_size(self, *_args: Any) -> None:
        self.fit_soon()

    def on_font_size(self, _widget: Any, value: float) -> None:
        if not self._fit_busy:  # set by a kv rule (a mode, a theme): the new largest size
            self._fit_base = float(value)
            self._fit_key = ()  # even the same size as before: the fitted one was replaced
            self.fit_soon()

    def fit_soon(self) -> None:
        """Fit now, and again after every observer of the change has run: the label's own text
        options are among them, so fitting at once may have measured with the old font."""
        self.fit()
        trigger = self.__dict__.get("_fit_trigger")
        if trigger is None:
            trigger = self.__dict__["_fit_trigger"] = Clock.create_trigger(self._refit)
        trigger()

    def _refit(self, _dt: float) -> None:
        self.fit()  # again only if what the text was measured with has changed since

    def fit(self) -> None:
        label: Any = self
        app = App.get_running_app()
        if app is None or self._fit_busy or getattr(label, "_label", None) is None:
            return
        base = self._fit_base or float(label.font_size)
        if measured_with(label, base) == self._fit_key or not label.text:
            return
        floor = min(float(app.theme.small), base)
        self._fit_busy = True
        try:
            size = base
            label.font_size = size
            label.texture_update()
            while not fits(label) and size > floor:
                size = max(floor, size * SHRINK)
                label.font_size = size
                label.texture_update()
        finally:
            self._fit_busy = False
        self._fit_key = measured_with(label, base)
