"""Shows the document as it will print (the PDF rendered to an image, the resident's name and ID
number masked on screen) or the slip text; a magnifier shows the page larger, to scroll."""

from typing import Any

from kivy.properties import NumericProperty
from kivy.uix.screenmanager import Screen

MAGNIFIED = 1.6  # magnified: the column's width, or the whole page's width × 1.6 if wider


class PreviewScreen(Screen):
    zoom = NumericProperty(1.0)

    def on_pre_enter(self, *_args: Any) -> None:
        self.zoom = 1.0  # every document starts as a whole page

    def toggle_zoom(self) -> None:
        self.zoom = 1.0 if self.zoom > 1 else MAGNIFIED
        self.ids.viewport.scroll_x = 0
        self.ids.viewport.scroll_y = 1  # the top of the page: who, what, which status
