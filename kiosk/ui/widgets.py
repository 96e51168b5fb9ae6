"""Shared widgets; their looks are in ``widgets.kv`` and bind to ``app.theme`` and ``app.vm``."""

from __future__ import annotations

from typing import Any

from kivy.app import App
from kivy.properties import BooleanProperty, NumericProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.button import Button
from kivy.uix.label import Label
from kivy.uix.togglebutton import ToggleButton

from kiosk.ui.fit import FitText


class BigButton(FitText, Button):
    """A large touch target with text; ``kind`` chooses primary or secondary colours. Its text
    is set smaller (down to the theme's ``small``) when it does not fit (:mod:`kiosk.ui.fit`)."""

    kind = StringProperty("primary")
    enabled = BooleanProperty(True)
    wrap = BooleanProperty(True)  # long text wraps and the button grows; False: one line
    spoken = StringProperty("")  # what the keys' focus says instead of the text (kiosk.ui.focus)
    fixed_h = NumericProperty(0)  # a height that neither the mode nor the text changes; 0: none


class FitToggle(FitText, ToggleButton):
    """A toggle whose text shrinks to fit, like :class:`BigButton` (the rating's reasons)."""


class BodyLabel(Label):
    pass


class TitleLabel(Label):
    pass


class StationName(FitText, Label):
    """The station's name in the top bar; five quick taps on it are the technicians' way in.
    A long name is set smaller until it fits, never cut."""

    def on_touch_down(self, touch: Any) -> bool:
        if self.collide_point(*touch.pos):
            App.get_running_app().intent("maint.gesture")
        return bool(super().on_touch_down(touch))


class TopBar(BoxLayout):
    """Station name, language switch, elder mode and help: on every screen."""


class CaptionBar(BoxLayout):
    """The line being said, shown under every screen and in the overlays (everything spoken is
    shown: :mod:`kiosk.shell.captions`), and a word when the voice is not working."""


class BottomBar(BoxLayout):
    show_back = BooleanProperty(False)
    show_cancel = BooleanProperty(True)
