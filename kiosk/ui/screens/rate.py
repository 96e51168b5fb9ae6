"""Five-level rating after the service (the 好差评 scale): spoken, skippable, never blocking the
way home.

Standard mode asks for the level and the optional reasons on one page. Elder mode asks in two
steps, so that no page offers more than six targets (``kiosk.ui.audit``): first the five levels
and "skip"; a level then opens the optional reasons with "send" and "skip reasons", and "back"
to change the level. Either way
the rating goes to the session as one ``rate`` intent, ``(level, tags)``: the journal and the
fleet's rating event keep their shape.
"""

from typing import Any

from kivy.app import App
from kivy.properties import BooleanProperty, NumericProperty
from kivy.uix.screenmanager import Screen
from kivy.uix.togglebutton import ToggleButton


class RateScreen(Screen):
    elder = BooleanProperty(False)
    level = NumericProperty(0)  # elder mode: the level picked in step one; 0 before

    def on_pre_enter(self, *_args: object) -> None:
        """Every resident starts at step one, with no reason selected."""
        self.level = 0
        for widget in self.walk():
            if isinstance(widget, ToggleButton):
                widget.state = "normal"

    def on_elder(self, *_args: Any) -> None:
        self.level = 0

    def up(self) -> bool:
        """The bottom bar's back in step two: the five levels again, to change the level."""
        if not self.level:
            return False
        self.level = 0
        return True

    def pick(self, level: int) -> None:
        """A level: sent at once in standard mode; in elder mode, the reasons come next."""
        if self.elder:
            self.level = level
        else:
            self.send(level)

    def send(self, level: int, *, reasons: bool = True) -> None:
        app = App.get_running_app()
        tags = tuple(app.vm.rate_tags) if reasons else ()
        app.intent("rate", (level, tags))
