"""The services this station offers now, at most six to a page; unavailable ones say why."""

from __future__ import annotations

from typing import Any

from kivy.app import App
from kivy.properties import BooleanProperty, ListProperty, NumericProperty, StringProperty
from kivy.uix.screenmanager import Screen

from kiosk.ui.widgets import BigButton

PER_PAGE = 6  # at most six choices per page (elder mode's rule, kept in both modes)
ELDER_LANDSCAPE_PER_PAGE = 4  # elder sizes on a landscape screen: two rows fit, not three
ROW_HEIGHT = 1.6  # a service button's height in button heights (choose.kv's grid rows)


class ServiceButton(BigButton):
    """One service or bundle of the catalog; its looks are in choose.kv.

    A name too long for the button at the large size (the catalog allows 32 Chinese and 96
    English characters, ``flows.catalog``) is set smaller until it fits, never below the theme's
    small size, which stays above the elder mode's legible minimum (``kiosk.ui.theme``). A test
    walks the longest names in elder mode on the smallest screen (``test_long_names.py``).
    """

    service_code = StringProperty("")
    _fitting = False
    _fitted: tuple[Any, ...] = ()

    def on_size(self, *_args: Any) -> None:
        self.fit()

    def on_text(self, *_args: Any) -> None:
        self.fit()

    def fit(self) -> None:
        app = App.get_running_app()
        if app is None or self._fitting or getattr(self, "_label", None) is None:
            return  # still being made, or this is the fitting's own change
        theme = app.theme
        key = (self.text, round(self.width), theme.title, theme.body, theme.button_h, theme.gap)
        if key == self._fitted:
            return
        size, floor = theme.title * 0.8, theme.small
        room = theme.button_h * ROW_HEIGHT - theme.gap * 0.5
        self._fitting = True
        try:
            self.font_size = size
            self.texture_update()
            while self.texture_size[1] > room and size > floor:
                size = max(floor, size * 0.9)
                self.font_size = size
                self.texture_update()
        finally:
            self._fitting = False
        self._fitted = key
        if self.parent is not None:  # BigButton's rule follows the text's height: the row wins
            self.parent._trigger_layout()


class ChooseScreen(Screen):
    services = ListProperty()
    page = NumericProperty(0)
    pages = NumericProperty(1)
    elder = BooleanProperty(False)

    def per_page(self) -> int:
        from kivy.core.window import Window

        landscape = Window.width > Window.height
        return ELDER_LANDSCAPE_PER_PAGE if self.elder and landscape else PER_PAGE

    def on_pre_enter(self, *_args: Any) -> None:
        self.page = 0

    def on_services(self, *_args: Any) -> None:
        self._rebuild()

    def on_page(self, *_args: Any) -> None:
        self._rebuild()

    def on_elder(self, *_args: Any) -> None:
        self.page = 0
        self._rebuild()

    def turn(self, step: int) -> None:
        self.page = max(0, min(self.pages - 1, self.page + step))

    def _rebuild(self) -> None:
        grid = self.ids.grid
        grid.clear_widgets()
        app = App.get_running_app()
        per_page = self.per_page()
        self.pages = max(1, -(-len(self.services) // per_page))
        if self.page >= self.pages:
            self.page = self.pages - 1
            return
        start = int(self.page) * per_page
        for item in self.services[start : start + per_page]:
            button = ServiceButton(text=item["label"], enabled=item["available"])
            button.service_code = item["code"]
            button.bind(on_release=lambda b: app.intent("pick", b.service_code))
            grid.add_widget(button)
