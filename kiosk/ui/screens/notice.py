"""The one-time materials notice: everything a staffed window will need, large and spoken.

The notice is shown page by page, never in a scrolled box (elder first: nothing to drag, nothing
hidden below the edge): its lines are laid out at the mode's size in the space the screen gives
them, and a page ends before the line that would not fit; a heading never ends a page. Turning a
page says which it is, as the preview's reading view does.
"""

from __future__ import annotations

from typing import Any

from kivy.app import App
from kivy.clock import Clock
from kivy.properties import ListProperty, NumericProperty, StringProperty
from kivy.uix.screenmanager import Screen

from kiosk.present import paginate


def _height(text: str, label: Any, width: float) -> float:
    from kivy.core.text.markup import MarkupLabel

    core = MarkupLabel(
        text=text, font_size=label.font_size, font_name=label.font_name, text_size=(width, None)
    )
    core.refresh()
    return float(core.content_height)


class NoticeScreen(Screen):
    pages = ListProperty([""])  # the notice's text, page by page (Kivy markup)
    page = NumericProperty(0)
    page_text = StringProperty("")

    def on_kv_post(self, *_args: Any) -> None:
        self._paginate_soon = Clock.create_trigger(self._paginate)
        label = self.ids.notice_text
        label.bind(size=self._paginate_soon, font_size=self._paginate_soon)
        App.get_running_app().vm.bind(notice_text=self._paginate_soon)

    def on_pre_enter(self, *_args: Any) -> None:
        self.page = 0
        self._paginate()

    def _paginate(self, *_args: Any) -> None:
        label = self.ids.notice_text
        text = App.get_running_app().vm.notice_text
        width = max(1.0, label.width - App.get_running_app().theme.pad)
        room = label.height
        self.pages = paginate(text.split("\n"), lambda t: _height(t, label, width) <= room)
        self.page = min(int(self.page), len(self.pages) - 1)
        self.page_text = self.pages[int(self.page)]

    def on_page(self, *_args: Any) -> None:
        if 0 <= self.page < len(self.pages):
            self.page_text = self.pages[int(self.page)]

    def turn(self, step: int) -> None:
        page = max(0, min(len(self.pages) - 1, int(self.page) + step))
        if page != self.page:
            self.page = page
            App.get_running_app().intent("page", (page + 1, len(self.pages)))
