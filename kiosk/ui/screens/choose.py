"""The services this station offers now, at most six to a page; unavailable ones say why."""

from __future__ import annotations

from typing import Any

from kivy.app import App
from kivy.properties import BooleanProperty, ListProperty, NumericProperty, StringProperty
from kivy.uix.screenmanager import Screen

from kiosk.ui.widgets import BigButton

PER_PAGE = 6  # at most six choices per page (elder mode's rule, kept in both modes)
ELDER_LANDSCAPE_PER_PAGE = 4  # elder sizes on a landscape screen: two rows fit, not three


class ServiceButton(BigButton):
    """One service or bundle of the catalog; its looks are in choose.kv."""

    service_code = StringProperty("")


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
