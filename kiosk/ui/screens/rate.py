"""Five-level rating after the service: spoken, skippable, never blocking the way home."""

from kivy.uix.screenmanager import Screen
from kivy.uix.togglebutton import ToggleButton


class RateScreen(Screen):
    def on_pre_enter(self, *_args: object) -> None:
        """Reason tags start unselected for every resident."""
        for widget in self.walk():
            if isinstance(widget, ToggleButton):
                widget.state = "normal"
