"""Shared widgets; their looks are in ``widgets.kv`` and bind to ``app.theme`` and ``app.vm``."""

from __future__ import annotations

from typing import Any

from kivy.app import App
from kivy.properties import BooleanProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.button import Button
from kivy.uix.label import Label


class BigButton(Button):
    """A large touch target with text; ``kind`` chooses primary or secondary colours."""

    kind = StringProperty("primary")
    enabled = BooleanProperty(True)
    wrap = BooleanProperty(True)  # long text wraps and the button grows; False: one line


class BodyLabel(Label):
    pass


class TitleLabel(Label):
    pass


class StationName(Label):
    """The station's name in the top bar; five quick taps on it are the technicians' way in."""

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
