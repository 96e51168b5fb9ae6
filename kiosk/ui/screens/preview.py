"""Shows what will print, to check (请核对): for certificates a reading view (the document's
fields as text at the mode's own size, page by page) and the picture of each page as it prints
(rendered from the PDF, zoomed to the panel's full width: no column is cut); for slips, their
text. The resident's name and ID number are masked on screen, never on paper.

With the keypad, the reading view's fields are focus stops in the document's order (title,
each field's label and value, the table row by row, the notes: ``reading_field``), each said as
it is reached (:mod:`kiosk.ui.focus`); the runtime keeps the name and ID number off the
loudspeaker (:class:`kiosk.shell.jack.Headphones`).

Turning a page says which page it is (the runtime's ``page`` intent), so the caption bar shows
it too. In elder mode one page button (next, and from the last page back to the first) keeps
the screen's own targets to three: page, picture, print."""

from __future__ import annotations

from typing import Any

from kivy.app import App
from kivy.factory import Factory
from kivy.properties import BooleanProperty, NumericProperty
from kivy.uix.screenmanager import Screen

from kiosk.reading import table_row_field


class PreviewScreen(Screen):
    page = NumericProperty(0)  # 0-based; the same page in the reading view and the picture
    picture = BooleanProperty(False)  # the picture of the page instead of its text
    pages = NumericProperty(0)  # how many pages the document has

    def on_kv_post(self, base_widget: Any) -> None:
        vm = App.get_running_app().vm
        vm.bind(reading=lambda *_a: self.fill(), preview_pages=lambda *_a: self.fill())
        self.bind(page=lambda *_a: self.fill())

    def on_pre_enter(self, *_args: Any) -> None:
        self.picture = False  # every document starts as text, at its first page
        self.page = 0
        self.fill()

    def turn(self, step: int) -> None:
        """Next (1) or previous (-1) page; from the last page, next goes back to the first."""
        count = int(self.pages)
        if count < 2:
            return
        self.page = (self.page + step) % count
        self._to_top()
        App.get_running_app().intent("page", (self.page + 1, count))

    def toggle_picture(self) -> None:
        self.picture = not self.picture
        self._to_top()

    def _to_top(self) -> None:
        for view in (self.ids.reader, self.ids.viewport):
            view.scroll_x, view.scroll_y = 0, 1  # the top of the page: who, what, which status

    def fill(self) -> None:
        """Lay out the current page's text: title, fields, table, notes."""
        vm = App.get_running_app().vm
        self.pages = max(len(vm.reading), len(vm.preview_pages))
        if self.page >= max(1, self.pages):
            self.page = 0  # a new document with fewer pages
        sheet = self.ids.sheet
        sheet.clear_widgets()
        pages = vm.reading
        if not pages:
            return
        page = pages[min(int(self.page), len(pages) - 1)]
        sheet.add_widget(self._stop(Factory.ReadingHeading(text=page.title), "", page.title))
        for label, value in page.rows:
            field = self._row(
                Factory.ReadingLabel(text=label, size_hint_x=0.38),
                Factory.ReadingValue(text=value, size_hint_x=0.62),
            )
            sheet.add_widget(self._stop(field, label, value))
        if page.headers:
            heading = Factory.ReadingHeading(text=page.table_title)
            sheet.add_widget(self._stop(heading, "", page.table_title))
            sheet.add_widget(self._row(*(Factory.ReadingLabel(text=h) for h in page.headers)))
            for cells in page.table:
                row = self._row(*(Factory.ReadingValue(text=v) for v in cells))
                field = table_row_field(page.headers, cells, vm.lang)
                sheet.add_widget(self._stop(row, *field, role="focus.role.row"))
        for note in page.notes:
            sheet.add_widget(
                self._stop(Factory.ReadingLabel(text=note), "", note, role="focus.role.note")
            )

    @staticmethod
    def _stop(widget: Any, label: str, value: str, role: str = "") -> Any:
        """A focus stop of the keys (:mod:`kiosk.ui.focus`): the field's label and value."""
        widget.reading_field = (label, value)
        if role:
            widget.reading_role = role
        return widget

    @staticmethod
    def _row(*cells: Any) -> Any:
        row = Factory.ReadingRow()
        for cell in cells:
            row.add_widget(cell)
        return row
