"""Choosing a matter: tiles (most used, 一件事, the pinyin keypad, the catalog's categories), then
a list of matters, six at most to a page; unavailable ones say why.

The screen walks :class:`flows.finder.Finder`'s lists; the session hears only the pick. A change
of list is said (and shown in the caption bar) through the ``browse`` intent, which also counts as
the resident's touch for the session's timeout. "Back" in the bottom bar goes up one list here
(:meth:`ChooseScreen.up`) before it leaves the screen. A station whose matters fit one page
shows them at once (``Finder.flat``).
"""

from __future__ import annotations

from typing import Any

from kivy.app import App
from kivy.properties import (
    BooleanProperty,
    ListProperty,
    NumericProperty,
    ObjectProperty,
    StringProperty,
)
from kivy.uix.gridlayout import GridLayout
from kivy.uix.screenmanager import Screen

from flows.finder import HOME, SEARCH, Finder
from kiosk.ui.fit import measured_with
from kiosk.ui.widgets import BigButton

PER_PAGE = 6  # at most six choices per page (elder mode's rule, kept in both modes)
ELDER_LANDSCAPE_PER_PAGE = 4  # elder sizes on a landscape screen: two rows fit, not three
ROW_HEIGHT = 1.6  # a service button's height in button heights (choose.kv's grid rows)
TILE_ROW_HEIGHT = 2.0  # a tile's: its icon above a name of two lines
KEYPAD = "keypad"  # the level of the pinyin keypad; its results are "search:QUERY"


# what each service button's text was fitted to (font size, text with its markup), by all that
# its measurement depends on: the name, description, icon, theme sizes, the core label's text
# box and options (font, alignment, padding, ...) and the room; it holds no personal data
_FITTED: dict[tuple[Any, ...], tuple[float, str]] = {}
_OUTPUT = frozenset({"text", "font_size", "color", "outline_color", "disabled_color"})
FITTED_MAX = 4096


def per_page(*, elder: bool, landscape: bool) -> int:
    return ELDER_LANDSCAPE_PER_PAGE if elder and landscape else PER_PAGE


class ServiceButton(BigButton):
    """One service, bundle or tile; its looks are in choose.kv.

    A name too long for the button at the large size (the catalog allows 32 Chinese and 96
    English characters, ``flows.catalog``) is set smaller until it fits, never below the theme's
    small size, which stays above the elder mode's legible minimum (``kiosk.ui.theme``). A test
    walks the longest names in elder mode on the smallest screen (``test_long_names.py``).
    A matter's description follows its name, smaller, when both fit; otherwise the name alone.
    """

    service_code = StringProperty("")
    name = StringProperty("")
    detail = StringProperty("")  # shown under the name when it fits (plain text, escaped)
    glyph = StringProperty("")  # a tile's icon: one character drawn large above its name
    _fitting = False
    _fitted: tuple[Any, ...] = ()

    def on_size(self, *_args: Any) -> None:
        self.fit_soon()

    def on_name(self, *_args: Any) -> None:
        self.fit_soon()

    def fit_soon(self) -> None:
        """As :meth:`FitText.fit_soon`, but not for the fitting's own changes of the text and
        its size: :meth:`_shrink` measures each as it makes it (a refit scheduled for them
        measured everything again at the next frame)."""
        if not self._fitting:
            super().fit_soon()

    def _refit(self, _dt: float) -> None:
        """After every observer of a change has run (the label's own text options among them:
        fitting at once may have measured with the old text box), fit again if what the text
        was measured with has changed since (:meth:`fit`'s key holds the label's own box)."""
        self.fit()

    def fit(self) -> None:
        app = App.get_running_app()
        if app is None or self._fitting or getattr(self, "_label", None) is None:
            return  # still being made, or this is the fitting's own change
        theme = app.theme
        sizes = (theme.title, theme.gap, theme.body, theme.small, theme.button_h)
        given = (self.name, self.detail, self.glyph, sizes)
        if measured_with(self, given) == self._fitted:
            return
        rows = TILE_ROW_HEIGHT if self.glyph else ROW_HEIGHT
        room = theme.button_h * rows - theme.gap * 0.5
        # the same text in the same box and font fits the same way: a list's buttons are made
        # anew at every page and every visit, and measuring them again was most of a page turn
        core = self._label
        options = sorted((k, str(v)) for k, v in core.options.items() if k not in _OUTPUT)
        inputs: tuple[Any, ...] = (given, tuple(core.usersize or ()), room, *options)
        inputs += (core.__class__.__name__,)
        self._fitting = True
        try:
            known = _FITTED.get(inputs)
            if known is not None:
                self.font_size, self.text = known
                self.texture_update()
            else:
                for detail in (self.detail, "") if self.detail else ("",):
                    if self._shrink(detail, room, theme):
                        break
                if len(_FITTED) >= FITTED_MAX:
                    _FITTED.clear()
                _FITTED[inputs] = (self.font_size, self.text)
        finally:
            self._fitting = False
        self._fitted = measured_with(self, given)
        if self.parent is not None:  # BigButton's rule follows the text's height: the row wins
            self.parent._trigger_layout()

    def _shrink(self, detail: str, room: float, theme: Any) -> bool:
        """Set the text with ``detail`` at the largest size that fits; False: it never fits."""
        from kivy.utils import escape_markup

        size, floor = theme.title * 0.8, theme.small
        if self.glyph:
            size = theme.body
        while True:
            parts = []
            if self.glyph:
                parts.append(f"[size={round(theme.body * 1.6)}][b]{self.glyph}[/b][/size]")
            parts.append(escape_markup(self.name))
            if detail:  # a step smaller than the name, never below the floor
                small = round(max(floor, size * 0.8))
                parts.append(f"[size={small}]{escape_markup(detail)}[/size]")
            self.font_size = size
            self.text = "\n".join(parts)
            self.texture_update()
            if self.texture_size[1] <= room:
                return True
            if size <= floor:
                return False
            size = max(floor, size * 0.9)


class Keypad(GridLayout):
    """The pinyin initials' keys: one control (``kiosk.ui.audit`` counts it once, a keyboard
    is read as one thing); letters that would find nothing are greyed."""


class ChooseScreen(Screen):
    finder = ObjectProperty(None, allownone=True)  # flows.finder.Finder, made by the app
    level = StringProperty(HOME)  # home, a tile's code, KEYPAD or "search:QUERY"
    query = StringProperty("")  # the letters typed on the keypad
    page = NumericProperty(0)
    pages = NumericProperty(1)
    elder = BooleanProperty(False)
    title = StringProperty("")
    status = StringProperty("")  # the keypad's letters and what they find
    found = NumericProperty(0)
    letters = ListProperty()  # the keypad's letters, in order
    tiles = BooleanProperty(False)  # the page shows tiles (taller rows, three across)
    _home_page = 0

    def per_page(self) -> int:
        from kivy.core.window import Window

        return per_page(elder=self.elder, landscape=Window.width > Window.height)

    def on_pre_enter(self, *_args: Any) -> None:
        self.level, self.query, self.page, self._home_page = HOME, "", 0, 0
        self._rebuild()

    def on_finder(self, *_args: Any) -> None:
        level = self.level
        if (
            self.finder is not None
            and level not in (HOME, KEYPAD)
            and not level.startswith("search:")
            and not self.finder.items(level)
        ):
            self.level = HOME  # a new catalog or mode: that list is gone
        self._rebuild()

    def on_page(self, *_args: Any) -> None:
        self._rebuild()

    def on_elder(self, *_args: Any) -> None:
        self.page = 0
        self._rebuild()

    def turn(self, step: int) -> None:
        self.page = max(0, min(self.pages - 1, self.page + step))

    # --- moving between lists ----------------------------------------------------------------

    def open(self, code: str) -> None:
        """A tile: its list, or the keypad."""
        self._home_page = int(self.page)
        if code == SEARCH:
            self.query = ""
            self._go(KEYPAD, "prompt.choose_keypad")
        else:
            self._go(code, "choose.say_list", name=self._tile_name(code))

    def key(self, letter: str) -> None:
        """A letter on the keypad (``""``: delete the last one)."""
        finder = self.finder
        self.query = self.query + letter if letter else self.query[:-1]
        if letter and finder is not None and finder.show_results(self.query):
            self.show_results()
            return
        self._rebuild()

    def show_results(self) -> None:
        n = len(self.finder.matches(self.query)) if self.finder is not None else 0
        self._go(f"search:{self.query}", "choose.say_results", n=str(n))

    def up(self) -> bool:
        """The bottom bar's back: one list up; False at the tiles (the session's back)."""
        if self.level == HOME:
            return False
        if self.level.startswith("search:"):
            self.query = self.query[:-1]
            self._go(KEYPAD, "prompt.choose_keypad")
        else:
            self._go(HOME, "choose.title", page=self._home_page)
        return True

    def _go(self, level: str, say: str, *, page: int = 0, **params: str) -> None:
        self.level, self.page = level, page
        self._rebuild()
        App.get_running_app().intent("browse", (say, params))

    def _tile_name(self, code: str) -> str:
        app = App.get_running_app()
        tiles = self.finder.home if self.finder is not None else []
        return next((t.name.get(app.vm.lang) for t in tiles if t.code == code), "")

    # --- the page ----------------------------------------------------------------------------

    def _rebuild(self) -> None:
        grid, keypad = self.ids.grid, self.ids.keypad
        grid.clear_widgets()
        app = App.get_running_app()
        finder = self.finder
        if self.level != KEYPAD or finder is None:
            keypad.clear_widgets()  # hidden keys would still be targets
        if finder is None:
            return
        lang = app.vm.lang
        if self.level == KEYPAD:
            self._keypad(finder, keypad)
            self.pages, self.tiles = 1, False
            return
        self.letters = []
        items = finder.items(self.level)
        per = finder.per(self.level)
        self.pages = max(1, -(-len(items) // per))
        if self.page >= self.pages:
            self.page = self.pages - 1
            return
        self.title = app.choose_title(self.level, finder, lang)
        start = int(self.page) * per
        self.tiles = any(item.tile for item in items)
        for row in app.choose_rows(items[start : start + per], lang):
            button = ServiceButton(enabled=row["available"], glyph=row["glyph"])
            button.service_code = row["code"]
            button.detail = row["detail"]
            button.name = row["label"]
            if row["tile"]:
                button.bind(on_release=lambda b: self.open(b.service_code))
            else:
                button.bind(on_release=lambda b: app.intent("pick", b.service_code))
            grid.add_widget(button)

    def _keypad(self, finder: Finder, keypad: Keypad) -> None:
        app = App.get_running_app()
        lang = app.vm.lang
        self.title = app.t("choose.search_title", lang)
        usable = finder.keys(self.query)
        self.letters = finder.alphabet()
        self.found = len(finder.matches(self.query)) if self.query else 0
        self.status = (
            app.tf("choose.search_status", lang, query=" ".join(self.query), n=str(self.found))
            if self.query
            else app.t("choose.search_hint", lang)
        )
        keys = list(reversed(keypad.children))
        if [key.text for key in keys] == self.letters:  # a letter typed: the same keys, greyed anew
            for key in keys:
                key.enabled = key.text in usable
            return
        keypad.clear_widgets()
        for letter in self.letters:
            button = BigButton(text=letter, kind="secondary", wrap=False, enabled=letter in usable)
            button.size_hint_y = 1
            button.bind(on_release=lambda b: self.key(b.text))
            keypad.add_widget(button)
