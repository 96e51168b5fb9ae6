"""Shared widgets; their looks are in ``widgets.kv`` and bind to ``app.theme`` and ``app.vm``."""

from __future__ import annotations

from kivy.properties import BooleanProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.button import Button
from kivy.uix.label import Label


class BigButton(Button):
    """A large touch target with text; ``kind`` chooses primary or secondary colours."""

    kind = StringProperty("primary")
    enabled = BooleanProperty(True)


class BodyLabel(Label):
    pass


class TitleLabel(Label):
    pass


class TopBar(BoxLayout):
    """Station name, language switch, elder mode and help: on every screen."""


class BottomBar(BoxLayout):
    show_back = BooleanProperty(False)
    show_cancel = BooleanProperty(True)
