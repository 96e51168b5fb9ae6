"""The Kivy app: renders :class:`kiosk.shell.runtime.Frame` values and turns touches into intents.

Kivy is configured before it is imported (``configure_kivy``): no command-line parsing, a private
Kivy home, the window size, Escape that does not quit, one mouse provider without the multitouch
emulation dots. Threads never touch widgets: the runtime is pumped from the Kivy clock, so every
``on_frame`` call happens on the UI thread.
"""

from __future__ import annotations

import io
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flows.finder import Finder
from kiosk import present, reading
from kiosk.config import Config
from kiosk.shell import sdnotify
from kiosk.shell.runtime import Frame, Intent, Runtime

log = logging.getLogger("kiosk.ui.app")

KV_DIR = Path(__file__).resolve().parent


def configure_kivy(config: Config, kivy_home: Path) -> None:
    """Set Kivy's environment and config; must run before anything imports kivy."""
    kivy_home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    os.environ.setdefault("KIVY_NO_FILELOG", "1")
    os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")
    # Kivy's default log mode takes over the root logger (level NOTSET: every DEBUG line of
    # every library reaches kiosk.log) and replaces sys.stderr; the kiosk's logging is its own
    os.environ.setdefault("KIVY_LOG_MODE", "PYTHON")
    logging.getLogger("kivy").setLevel(logging.WARNING)
    os.environ["KIVY_HOME"] = str(kivy_home)
    from kivy.config import Config as KivyConfig

    KivyConfig.set("kivy", "exit_on_escape", "0")
    KivyConfig.set("kivy", "log_level", "warning")
    KivyConfig.set("graphics", "width", str(config.ui.width))
    KivyConfig.set("graphics", "height", str(config.ui.height))
    KivyConfig.set("graphics", "fullscreen", "auto" if config.ui.fullscreen else "0")
    KivyConfig.set("graphics", "resizable", "0")
    KivyConfig.set("graphics", "show_cursor", "0" if config.ui.fullscreen else "1")
    for option in list(KivyConfig.options("input")):
        KivyConfig.remove_option("input", option)
    # exactly one input provider, so a touch is seen once (mouse emulation plus a touch device
    # provider reading the same screen is Kivy's known double-touch trap)
    if config.ui.touch_input == "mouse":
        KivyConfig.set("input", "mouse", "mouse,disable_multitouch")
    else:
        kind, _, device = config.ui.touch_input.partition(":")
        KivyConfig.set("input", "touchscreen", f"{kind},{device}")


EXIT_BROKEN = 70
"""The app's exit status when errors keep coming: systemd starts a fresh one."""


class ErrorGuard:
    """Counts errors that reached Kivy's loop; too many in a minute means the app is broken."""

    def __init__(
        self,
        *,
        limit: int = 10,
        window_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self.clock = clock
        self._times: list[float] = []

    def record(self) -> bool:
        """Note one error; True when there were ``limit`` within ``window_s``."""
        now = self.clock()
        self._times = [t for t in self._times if now - t < self.window_s] + [now]
        return len(self._times) >= self.limit


def build_app(
    runtime: Runtime,
    config: Config,
    *,
    font: Path,
    simulate: Callable[[str], None] | None = None,
) -> Any:
    """Import kivy (after ``configure_kivy``) and make the app; returns a ``kivy.app.App``."""
    from kivy.app import App
    from kivy.base import ExceptionHandler, ExceptionManager
    from kivy.clock import Clock
    from kivy.core.image import Image as CoreImage
    from kivy.core.text import DEFAULT_FONT, LabelBase
    from kivy.core.window import Window
    from kivy.event import EventDispatcher
    from kivy.factory import Factory
    from kivy.lang import Builder
    from kivy.properties import (
        BooleanProperty,
        DictProperty,
        ListProperty,
        ObjectProperty,
        StringProperty,
    )
    from kivy.uix.boxlayout import BoxLayout
    from kivy.uix.modalview import ModalView
    from kivy.uix.screenmanager import NoTransition, ScreenManager

    from kiosk.ui.focus import Focus, KeyMap
    from kiosk.ui.screens.choose import per_page as choose_per_page
    from kiosk.ui.theme import Theme

    LabelBase.register(DEFAULT_FONT, str(font))
    Builder.load_file(str(KV_DIR / "widgets.kv"))
    import kiosk.ui.widgets  # noqa: F401  (registers the widget classes with the Factory)
    from kiosk.ui.screens import SCREENS

    for state in SCREENS:
        kv_name = "home" if state == "idle" else state
        Builder.load_file(str(KV_DIR / "screens" / f"{kv_name}.kv"))
    Builder.load_file(str(KV_DIR / "screens" / "call.kv"))  # the call overlay (issue 22)
    Builder.load_string(_OVERLAYS_KV)
    from kiosk.ui.screens.call import CallOverlay

    class ViewModel(EventDispatcher):
        """View state only; kv binds here and never to domain objects."""

        screen = StringProperty("idle")
        lang = StringProperty(config.station.lang)
        elder = BooleanProperty(False)
        txt = DictProperty()
        station_name = StringProperty("")
        greeting = StringProperty("")
        services = ListProperty()
        finder = ObjectProperty(None, allownone=True)  # the choose screen's lists
        service_name = StringProperty("")
        outputs_text = StringProperty("")
        preview_texture = ObjectProperty(None, allownone=True)
        preview_text = StringProperty("")
        preview_pages = ListProperty()  # a texture for every page (the picture)
        reading = ListProperty()  # kiosk.reading.ReadingPage for every page, in vm.lang
        print_text = StringProperty("")
        print_failed = BooleanProperty(False)
        preview_ready = BooleanProperty(False)
        notice_text = StringProperty("")
        unavailable_text = StringProperty("")
        out_of_order_text = StringProperty("")
        rate_tags = ListProperty()
        sim_controls = BooleanProperty(False)
        louder = BooleanProperty(False)
        attract_text = StringProperty("")
        portrait = BooleanProperty(config.ui.height > config.ui.width)
        pin_dots = StringProperty("")
        pin_message = StringProperty("")
        pin_problem = BooleanProperty(False)
        maint_devices = StringProperty("")
        maint_info = StringProperty("")
        maint_last = StringProperty("")
        maint_log = StringProperty("")
        help_title = StringProperty("")
        help_body = StringProperty("")
        help_hotline = StringProperty("")
        help_reply = StringProperty("")  # the technician's answer, shown as written (no markup)
        help_slip = StringProperty("")
        help_slip_offered = BooleanProperty(False)  # after hours, or no call here
        help_slip_enabled = BooleanProperty(True)
        caption = StringProperty("")  # the line being said (kiosk.shell.captions)
        voice_off = BooleanProperty(False)  # the voice is not working: said on the screen
        card_on_reader = BooleanProperty(False)  # as the reader says (simulator controls)
        thanks_text = StringProperty("")

    class HelpView(ModalView):
        pass

    class StillThereView(ModalView):
        pass

    guard = ErrorGuard()

    class KeepRunning(ExceptionHandler):
        """No Python error reaches the screen: it is logged and the app carries on; when errors
        keep coming, the station shows out-of-order (with the help phone) and restarts."""

        def handle_exception(self, inst: BaseException) -> Any:
            if isinstance(inst, KeyboardInterrupt | SystemExit):
                return ExceptionManager.RAISE
            log.error("error in the UI loop", exc_info=inst)
            app = App.get_running_app()
            if guard.record() and app is not None and app.exit_code is None:
                app.exit_code = EXIT_BROKEN
                app.manager.current = "out_of_order"
                Clock.schedule_once(lambda _dt: app.stop(), 10)
            return ExceptionManager.PASS

    ExceptionManager.add_handler(KeepRunning())

    class KioskApp(App):
        vm = ObjectProperty()
        theme = ObjectProperty()
        title = "Station kiosk"
        exit_code: int | None = None

        def build(self) -> Any:
            self.vm = ViewModel(
                sim_controls=simulate is not None and config.ui.show_simulator_controls
            )
            self.theme = Theme(
                width=config.ui.width,
                height=config.ui.height,
                diagonal_in=config.ui.screen_diagonal_in,
                distance_mm=config.ui.viewing_distance_mm,
            )
            self._lang_loaded = ""
            self._attract_index = 0
            self._preview_png: bytes | None = None
            self._finder_key: Any = None
            self._usage: dict[str, int] = {}
            self.help_view = HelpView()
            self.still_there_view = StillThereView()
            self.call_view = CallOverlay()  # a staff member's call, over the session
            self.manager = ScreenManager(transition=NoTransition())
            for state, cls in SCREENS.items():
                self.manager.add_widget(cls(name=state))
            root = BoxLayout(orientation="vertical")  # every screen, with its caption under it
            root.add_widget(self.manager)
            self.caption_bar = Factory.CaptionBar()
            root.add_widget(self.caption_bar)
            Window.bind(on_request_close=self._refuse_close)  # lockdown: closing does nothing
            self.focus = Focus(
                KeyMap.from_config(config.devices),
                root=self._focus_root,
                say=lambda key, params: self.intent("say", (key, params)),
                tr=lambda key, **params: runtime.tr(key, self.vm.lang or "zh", **params),
                intent=self.intent,
                back=self.back,
                warning=lambda: self.still_there_view.parent is not None,
            )
            Window.bind(on_keyboard=self._swallow_keys)
            Window.bind(on_touch_down=self._any_touch)
            return root

        def on_start(self) -> None:
            Clock.schedule_interval(sdnotify.tick, sdnotify.watchdog_period_s())  # systemd
            runtime.on_frame = self.on_frame
            runtime.remote.screenshot = lambda path: Window.screenshot(name=str(path))
            Clock.schedule_interval(lambda _dt: runtime.pump(), 1 / 30)
            Clock.schedule_interval(lambda _dt: runtime.heartbeat(), 5.0)
            Clock.schedule_interval(self.focus.tick, 0.1)  # the ring follows its control
            Clock.schedule_interval(self._call_picture, 0.1)  # the staff member's camera
            runtime.heartbeat()
            runtime.start()
            Clock.schedule_once(self._ready, 0)  # after the first frame with the home screen
            self._attract(0)
            Clock.schedule_interval(self._attract, 4.0)
            mirror = os.environ.get("KIOSK_SCREEN_MIRROR")
            if mirror:  # development on a machine without a screen (make run): see the screen
                Clock.schedule_interval(lambda _dt: self._mirror(Path(mirror)), 2.0)

        def _attract(self, _dt: float, step: int = 1) -> None:
            """The attract screen names, one after another, what can be done here; ``step`` 0
            says the same one again (in a new language)."""
            names = [s.name.get(self.vm.lang or "zh") for s in runtime.catalog.enabled_services()]
            if not names:
                self.vm.attract_text = ""
                return
            self._attract_index = (self._attract_index + step) % len(names)
            self.vm.attract_text = runtime.tr(
                "home.attract", self.vm.lang or "zh", name=names[self._attract_index]
            )

        def _ready(self, _dt: float) -> None:
            log.info("home screen ready")
            sdnotify.ready("home screen ready")
            print("kiosk: home screen ready", flush=True)

        def _mirror(self, target: Path) -> None:
            shot = Path(Window.screenshot(name=str(target.with_name(".mirror.png"))))
            shot.replace(target)

        def on_stop(self) -> None:
            sdnotify.stopping()
            runtime.stop()

        def t(self, key: str, _lang: str) -> str:
            """kv text lookup; the language argument makes kv re-evaluate when it changes."""
            return str(self.vm.txt.get(key, ""))

        def tf(self, key: str, lang: str, **params: object) -> str:
            """kv text lookup with parameters (``vm.txt`` holds the texts without)."""
            return runtime.tr(key, lang, **params) if lang else ""

        # --- from the screen -----------------------------------------------------------------

        def intent(self, name: str, arg: Any = None) -> None:
            runtime.post(Intent(name, arg))

        def toggle_tag(self, tag: str, on: bool) -> None:
            tags = [t for t in self.vm.rate_tags if t != tag]
            self.vm.rate_tags = [*tags, tag] if on else tags

        def simulate(self, action: str) -> None:
            if simulate is not None:
                simulate(action)

        def _any_touch(self, *_args: Any) -> None:
            self.focus.clear()  # a touch: the ring was for keys
            runtime.post(Intent("touch"))

        def _focus_root(self) -> Any:
            """What the keys move in: the open overlay, else the current screen."""
            for view in (self.still_there_view, self.help_view):
                if view.parent is not None:
                    return view
            return self.manager.current_screen

        # --- lockdown --------------------------------------------------------------------------

        def _on_keyboard_settings(self, *_args: Any) -> bool:
            """Kivy's F1 opens its settings panel (the app's and Kivy's own configuration, on
            the screen of a public station): never here; F1 is the keypad's help key."""
            return False

        def open_settings(self, *_args: Any) -> bool:
            return False

        def _refuse_close(self, *_args: Any, **_kw: Any) -> bool:
            """Window close and Alt+F4 arrive here; only a technician leaves (maintenance)."""
            log.warning("a request to close the window was refused")
            return True

        def _swallow_keys(
            self, _window: Any, key: int, _scancode: int, _text: Any, modifiers: Any
        ) -> bool:
            """The keypad's keys move the focus (:mod:`kiosk.ui.focus`); no other key does
            anything on a kiosk: Escape, Alt+F4, F11 and the rest are swallowed."""
            chord = {"alt", "ctrl", "meta", "super"} & set(modifiers or ())
            if not chord and self.focus.key(key):
                return True
            if key in (27, 285) or "alt" in (modifiers or ()):
                log.info("key %d swallowed", key)
            return True

        # --- to the screen -------------------------------------------------------------------

        def on_frame(self, frame: Frame) -> None:
            view = frame.view
            vm = self.vm
            if view.lang != self._lang_loaded:
                keys = runtime.tr.keys("zh") | runtime.tr.keys("en")
                txt = {k: runtime.tr(k, view.lang) for k in keys if "{" not in runtime.tr(k, "zh")}
                txt["help.body"] = runtime.tr(
                    "help.body", view.lang, phone=runtime.catalog.station.help_phone
                )
                vm.txt = txt
                vm.lang = ""  # re-evaluate every kv text bound to the language
                vm.station_name = runtime.catalog.station.name.get(view.lang)
                self._lang_loaded = view.lang
            relabel = vm.lang != view.lang
            vm.lang = view.lang
            if relabel:  # the ticker follows the language at once, not at its next turn
                self._attract(0, step=0)
            if vm.elder != view.elder:
                self.theme.apply(elder=view.elder)
            vm.elder = view.elder
            vm.louder = frame.louder
            vm.greeting = (
                runtime.tr("choose.greeting", view.lang, name=view.masked_name)
                if view.masked_name
                else ""
            )
            vm.services = present.offer_rows(view, runtime.tr)
            self._find(view)
            vm.unavailable_text = present.unavailable_text(view, runtime.tr)
            selection = view.selection
            vm.service_name = selection.name.get(view.lang) if selection else ""
            pages = frame.preview.pages if frame.preview else 0
            vm.outputs_text = present.outputs_text(selection, pages, view.lang, runtime.tr)
            vm.notice_text = present.notice_text(selection, view.lang, runtime.tr)
            vm.out_of_order_text = present.out_of_order_text(runtime.catalog, view.lang, runtime.tr)
            vm.preview_ready = view.preview_ready
            self._show_preview(frame)
            vm.print_failed = view.print_ok is False
            vm.print_text = present.print_text(view, runtime.tr)
            vm.caption = frame.caption
            speech = frame.health.get("speech")
            vm.voice_off = speech is not None and speech.state.value in ("fault", "offline")
            vm.card_on_reader = view.card_on_reader
            vm.thanks_text = runtime.tr(view.prompt_key, view.lang) if view.prompt_key else ""
            if view.screen == "rate" and vm.screen != "rate":
                vm.rate_tags = []
            if self.manager.current != view.screen:
                self.manager.current = view.screen
            vm.screen = view.screen
            self._maintenance(frame)
            self._help(frame)
            self._overlay(self.help_view, frame.help_shown)
            self._overlay(self.still_there_view, view.warning and not frame.help_shown)
            self.call_view.show(frame.call, view.lang, runtime.tr)
            self._overlay(self.call_view, bool(frame.call.phase))

        def _find(self, view: Any) -> None:
            """The choose screen's lists, made again when what it offers or how it is laid out
            changes (the most used are counted once a session, from the journal)."""
            if view.screen != "choose":
                self._finder_key = None
                return
            per = choose_per_page(elder=view.elder, landscape=not self.vm.portrait)
            key = (view.offers, per, bool(view.masked_name))
            if key == self._finder_key:
                return
            if self._finder_key is None:
                self._usage = runtime.journal.usage()
            self._finder_key = key
            self.vm.finder = Finder(
                runtime.catalog,
                view.offers,
                usage=self._usage,
                per_page=per,
                anonymous=not view.masked_name,
                tile_names=present.tile_names(runtime.tr),
            )

        def choose_rows(self, items: Any, lang: str) -> list[dict[str, Any]]:
            return present.finder_rows(items, lang, runtime.tr)

        def choose_title(self, level: str, finder: Any, lang: str) -> str:
            return present.choose_title(level, finder, lang, runtime.tr)

        def back(self) -> None:
            """The bottom bar's back: the screen's own step back first (a list, a step of the
            rating), then the session's."""
            up = getattr(self.manager.current_screen, "up", None)
            if up is None or not up():
                self.intent("back")

        def _maintenance(self, frame: Frame) -> None:
            vm, lang = self.vm, frame.view.lang
            vm.pin_dots = present.pin_dots(frame.pin_digits)
            vm.pin_message = present.pin_message(frame.pin_message, lang, runtime.tr)
            vm.pin_problem = frame.pin_message[0] != "maint.enter_pin"
            texts = present.maintenance_texts(frame.report, lang, runtime.tr)
            vm.maint_devices = texts["devices"]
            vm.maint_info = texts["info"]
            vm.maint_last = texts["last"]
            vm.maint_log = texts["log"]
            if frame.exit_code is not None and self.exit_code is None:
                self.exit_code = frame.exit_code
                log.warning("a technician left to the desktop")
                Clock.schedule_once(lambda _dt: self.stop(), 0)

        def _help(self, frame: Frame) -> None:
            vm, lang = self.vm, frame.view.lang
            texts = present.help_texts(frame.help, runtime.catalog, lang, runtime.tr)
            vm.help_title, vm.help_body, vm.help_slip = texts["title"], texts["body"], texts["slip"]
            vm.help_hotline = texts["hotline"]
            heading = runtime.tr("help.reply_heading", lang)
            vm.help_reply = f"{heading}\n{texts['reply']}" if texts["reply"] else ""
            vm.help_slip_offered = frame.help.slip_offered
            vm.help_slip_enabled = frame.help.slip in ("", "failed")

        def _show_preview(self, frame: Frame) -> None:
            png = frame.preview.png if frame.preview else None
            if png is not self._preview_png:
                self._preview_png = png
                pngs = frame.preview.page_pngs if frame.preview else ()
                textures = [CoreImage(io.BytesIO(p), ext="png").texture for p in pngs]
                if png and not textures:
                    textures = [CoreImage(io.BytesIO(png), ext="png").texture]
                self.vm.preview_pages = textures
                self.vm.preview_texture = textures[0] if textures else None
            records = frame.preview.records if frame.preview else ()
            self.vm.reading = reading.reading_pages(records, frame.view.lang)
            self.vm.preview_text = "\n".join(frame.preview.lines) if frame.preview else ""

        def _call_picture(self, _dt: float) -> None:
            """The staff member's latest picture on the call overlay (drawn, never stored)."""
            if self.call_view.parent is not None and (picture := runtime.calls.picture()):
                self.call_view.show_picture(picture.width, picture.height, picture.rgb, picture.seq)

        @staticmethod
        def _overlay(view: Any, shown: bool) -> None:
            if shown and view.parent is None:
                view.open(animation=False)
            elif not shown and view.parent is not None:
                view.dismiss(animation=False)

    return KioskApp()


_OVERLAYS_KV = """
<HelpView>:
    # on duty: staff will answer; after hours: say so, the hotline, a slip to take home; a
    # technician's answer on top, large, on the primary colour (kiosk.shell.helpdesk)
    auto_dismiss: False
    size_hint: 0.8, 0.85
    background: ''
    background_color: app.theme.bg
    overlay_color: 0, 0, 0, 0.6
    BoxLayout:
        orientation: 'vertical'
        padding: app.theme.pad
        spacing: app.theme.gap * 1.5
        TitleLabel:
            id: help_title
            text: app.vm.help_title
        Label:
            id: help_reply
            text: app.vm.help_reply
            markup: False
            font_size: app.theme.title * 0.8
            bold: True
            color: app.theme.on_primary
            halign: 'center'
            valign: 'middle'
            text_size: self.width - app.theme.pad * 2, None
            size_hint_y: None
            height: self.texture_size[1] + app.theme.pad * 2 if self.text else 0
            opacity: 1 if self.text else 0
            canvas.before:
                Color:
                    rgba: app.theme.primary if self.text else (0, 0, 0, 0)
                Rectangle:
                    pos: self.pos
                    size: self.size
        BodyLabel:
            id: help_body
            text: app.vm.help_body
            color: app.theme.fg
        CaptionBar:
        TitleLabel:
            id: help_hotline
            text: app.vm.help_hotline
            color: app.theme.primary
            height: self.texture_size[1] if self.text else 0
            opacity: 1 if self.text else 0
        Widget:
        BoxLayout:
            size_hint_y: None
            height: self.minimum_height
            spacing: app.theme.gap * 2 if app.vm.help_slip_offered else 0
            BigButton:
                id: help_slip_button
                kind: 'secondary'
                # hidden on duty: no text either, or a sliver of a button wraps it a letter a
                # line, grows as tall as the words are long and pushes the overlay off the screen
                text: app.vm.help_slip if app.vm.help_slip_offered else ''
                size_hint_x: 1.4 if app.vm.help_slip_offered else 0.001
                opacity: 1 if app.vm.help_slip_offered else 0
                enabled: app.vm.help_slip_offered and app.vm.help_slip_enabled
                on_release: app.intent('help_slip')
            BigButton:
                id: close_help
                text: app.t('help.close', app.vm.lang)
                on_release: app.intent('close_help')

<StillThereView>:
    auto_dismiss: False
    size_hint: 0.7, 0.5
    background: ''
    background_color: app.theme.bg
    overlay_color: 0, 0, 0, 0.6
    BoxLayout:
        orientation: 'vertical'
        padding: app.theme.pad
        spacing: app.theme.gap * 2
        TitleLabel:
            text: app.t('warning.still_there', app.vm.lang)
        CaptionBar:
        Widget:
        BigButton:
            id: extend_button
            text: app.t('warning.extend', app.vm.lang)
            on_release: app.intent('extend')
"""
