"""The imperative shell around :class:`flows.session.Session`: one queue, one thread.

Resident intents (from the screen), device events (from driver threads), print results and health
updates (from workers) are all put on one queue. :meth:`Runtime.pump` drains it on the UI thread
(the Kivy clock calls it), feeds the session, and executes the effects the session returns:
show, speak, print, journal. Nothing here imports kivy, so the shell is tested without a screen;
the app only renders :class:`Frame` values it is handed.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flows import documents
from flows.availability import unavailable_services
from flows.call import CallView
from flows.catalog import Catalog, within
from flows.models import (
    CardInserted,
    CardRemoved,
    DeviceEvent,
    DeviceFault,
    DeviceHealth,
    IdentityRead,
    ReaderConnected,
    ReaderDisconnected,
)
from flows.session import (
    BuildPreview,
    Effect,
    JournalBegin,
    JournalFinish,
    JournalHelp,
    JournalRate,
    JournalUpdate,
    PrintDocuments,
    ReadCard,
    Session,
    Show,
    Speak,
    StopSpeech,
    View,
)
from flows.tokens import Signer
from kiosk.i18n import Translator
from kiosk.present import spoken_texts
from kiosk.shell import printing
from kiosk.shell.call import CallDesk
from kiosk.shell.captions import Captions
from kiosk.shell.catalog_watch import CatalogWatch
from kiosk.shell.deviceset import Devices
from kiosk.shell.diskguard import DiskGuard
from kiosk.shell.helpdesk import HelpAnswer, HelpDesk, HelpSlipDone, HelpState
from kiosk.shell.hours import opening_hours
from kiosk.shell.jack import Headphones, JackWatch
from kiosk.shell.journal_writer import JournalWriter, mode_update
from kiosk.shell.leftcard import LeftCardWatch
from kiosk.shell.maintenance import Desk, MaintenanceNote, MaintenanceReport
from kiosk.shell.paperwork import Paperwork, Preview, PreviewDone, PrintDone
from kiosk.shell.remote import KioskRemote
from statedir.journal import Journal, identity_hash

log = logging.getLogger("kiosk.shell.runtime")

HEARTBEAT_S = 5.0
JOURNAL_EFFECTS = (JournalBegin, JournalUpdate, JournalFinish, JournalRate, JournalHelp)


@dataclass(frozen=True, slots=True)
class Intent:
    """Something the resident did on the screen."""

    name: str  # start, pick, back, confirm, rate, skip_rating, cancel, help, touch, extend,
    # lang, elder, page, browse, say
    arg: Any = None


@dataclass(frozen=True, slots=True)
class HealthUpdate:
    devices: tuple[DeviceHealth, ...]


@dataclass(frozen=True, slots=True)
class CatalogOffer:
    catalog: Catalog


@dataclass(frozen=True, slots=True)
class JournalReplay:
    """The journal can be written again: make the writes that waited."""


Item = (
    Intent
    | DeviceEvent
    | PrintDone
    | HealthUpdate
    | PreviewDone
    | CatalogOffer
    | MaintenanceNote
    | JournalReplay
    | HelpAnswer
    | HelpSlipDone
)
"""What the runtime's queue carries."""


@dataclass(frozen=True, slots=True)
class Frame:
    """Everything a screen needs, handed to the app after each change."""

    view: View
    preview: Preview | None = None
    help_shown: bool = False
    unavailable: dict[str, str] = field(default_factory=dict)
    health: dict[str, DeviceHealth] = field(default_factory=dict)
    pin_digits: int = 0  # how many digits the technician typed (the digits stay in the desk)
    pin_message: tuple[str, str] = ("maint.enter_pin", "")  # translation key, its argument
    report: MaintenanceReport | None = None
    exit_code: int | None = None  # the app should stop with this status
    louder: bool = False  # the resident turned the voice up for this session
    help: HelpState = field(default_factory=HelpState)  # after hours, an answer, the slip
    caption: str = ""  # the line being said, shown (kiosk.shell.captions)
    call: CallView = field(default_factory=CallView)  # a staff member's call (kiosk.shell.call)


class Runtime:
    def __init__(
        self,
        *,
        catalog: Catalog,
        devices: Devices,
        journal: Journal,
        translator: Translator,
        font: Path,
        secret: bytes,
        signer: Signer | None = None,
        lang: str = "zh",
        elder: bool = False,
        clock: Callable[[], float] = time.monotonic,
        health_interval_s: float = 5.0,
        print_deadline_s: float = 90.0,
        desk: Desk | None = None,
        volume: float = 0.8,
        quiet_volume: float = 0.5,
        quiet_hours: str = "",
        attract_every_s: float = 300.0,
        card_left_alert_s: float = 120.0,
    ) -> None:
        self.devices = devices
        self._journal = journal
        self.tr = translator
        self.font = font
        self.session = Session(
            catalog,
            clock=clock,
            lang=lang,
            elder=elder,
            pseudonymise=functools.partial(identity_hash, secret),
        )
        self.queue: queue.Queue[Item] = queue.Queue()
        self.desk = desk
        self.diskguard: DiskGuard | None = None
        self._volume = (volume, quiet_volume, quiet_hours)
        self._louder = False
        self.phones = Headphones(devices.speech, translator)  # the voice in the jack, privately
        self.jack: JackWatch | None = None
        # a journal that cannot write (a full disk): nothing is served that would not be
        # recorded, and the writes that failed wait here, in order, until they can be made
        self.writer = JournalWriter(journal)
        self._catalog_noted = ""
        self._clock = clock
        self._attract_every_s = attract_every_s  # the idle station says its invitation again
        self._last_spoken = clock()
        self.on_frame: Callable[[Frame], None] = lambda frame: None
        self._preview: Preview | None = None
        self._document: documents.Document | None = None
        self._help_shown = False
        self._health: dict[str, DeviceHealth] = {}
        self._health_interval_s = health_interval_s
        self._stop = threading.Event()
        self._refresh_health = threading.Event()
        self._health_thread: threading.Thread | None = None
        # the station's clock (its catalog's zone), never the machine's (UTC on many)
        self.now: Callable[[], dt.datetime] = lambda: dt.datetime.now(self.catalog.station.zone)
        self.paperwork = Paperwork(
            catalog=lambda: self.catalog,
            a4=devices.a4_printer,
            thermal=devices.thermal_printer,
            providers=devices.providers,
            journal=journal,
            font=font,
            signer=signer,
            now=lambda: self.now(),
            post=self.queue.put,
            tr=translator,
            print_deadline_s=print_deadline_s,
        )
        self.catalog_watch: CatalogWatch | None = None  # offers catalogs the agent committed
        self.remote = KioskRemote(self)  # remote commands the agent passes on (kiosk.shell.remote)
        self.helpdesk = HelpDesk(self, clock=clock)  # duty hours, answers, the hotline slip
        self.captions = Captions(translator)  # everything spoken is shown
        self.leftcard = LeftCardWatch(card_left_alert_s, clock=clock)  # tells the console
        self.calls = CallDesk(self, clock=clock)  # a staff member's call (远程帮办)

    @property
    def journal(self) -> Journal:
        return self._journal

    @journal.setter
    def journal(self, journal: Journal) -> None:
        """One journal for the session's writes, the print jobs and health (tests swap it)."""
        self._journal = journal
        self.writer.journal = journal
        self.paperwork.journal = journal

    # --- life cycle ----------------------------------------------------------------------------

    def start(self) -> None:
        documents.register_font(self.font)
        self.remote.recover()
        open_txns = self.journal.open_transactions()  # before any new session begins
        threading.Thread(  # settle the print jobs and transactions a crash may have left open
            target=printing.recover,
            args=(self.journal, self.devices.a4_printer),
            kwargs={"open_txns": open_txns},
            name="print-recovery",
            daemon=True,
        ).start()
        for reader in self.devices.readers():
            reader.start(self.queue.put)
        self._health_thread = threading.Thread(target=self._health_loop, name="health", daemon=True)
        self._health_thread.start()
        if self.catalog_watch is not None:
            self.catalog_watch.start(self._stop)
        if self.jack is not None:
            self.jack.start(self._stop)
        self.devices.speech.set_volume(self.base_volume())
        self._note_catalog()
        self._render()
        self._execute([Speak("prompt.home")])
        self.devices.speech.prewarm(spoken_texts(self.catalog, self.tr))

    def stop(self) -> None:
        self._stop.set()
        self._refresh_health.set()
        for closer in (
            *(reader.stop for reader in self.devices.readers()),
            self.devices.speech.close,
            *self.devices.closers,
        ):
            try:
                closer()
            except Exception:
                log.exception("closing a device failed")
        if self._health_thread is not None:
            self._health_thread.join(timeout=5)

    @property
    def catalog(self) -> Catalog:
        """The catalog in force: a new one takes over only between sessions."""
        return self.session.catalog

    def offer_catalog(self, catalog: Catalog) -> None:
        """Any thread: a new verified catalog; the session applies it when it is idle."""
        self.queue.put(CatalogOffer(catalog))

    def post(self, intent: Intent) -> None:
        """Called by the screen (any thread): the resident did something."""
        self.queue.put(intent)

    def show_help(self, shown: bool = True) -> None:
        """Open the help overlay (an answer arrived), or close it (the answer has gone)."""
        self._help_shown = shown

    def heartbeat(self) -> None:
        """Called from the UI clock: proves to the agent that the UI is not frozen."""
        self.journal.touch_ui_heartbeat()

    # --- the one thread that changes the session -------------------------------------------

    def pump(self, max_items: int = 50) -> int:
        """Handle queued items and clock ticks; returns how many items were handled."""
        handled = 0
        if self.devices.speech.busy():
            self.session.on_activity()  # listening to a long prompt is not idling
        effects: list[Effect] = list(self.session.on_tick())
        if (
            self._attract_every_s
            and self.session.state == "idle"
            and self._clock() - self._last_spoken >= self._attract_every_s
        ):
            effects.append(Speak("prompt.home"))  # the attract loop, at the hour's volume
        while handled < max_items:
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                break
            handled += 1
            try:
                effects += self._handle(item)
            except Exception:
                log.exception("handling %s failed", type(item).__name__)
        if effects:
            self._execute(effects)  # renders too
        elif handled:
            self._render()  # something changed without effects (a preview arrived, health)
        if self.remote.poll() | self.helpdesk.tick():
            self._render()  # a remote restart_ui (the exit code); an answer shown long enough
        if (said := self.calls.tick()) is not None:  # a call starts or ends; the session awake
            self._execute(said)
        return handled

    def _handle(self, item: Item) -> list[Effect]:
        s = self.session
        if isinstance(item, Intent):
            return self._intent(item)
        if isinstance(item, HelpAnswer | HelpSlipDone):
            return self.helpdesk.handle(item)
        if isinstance(item, JournalReplay):
            self.writer.replay()
            return []
        if isinstance(item, MaintenanceNote):
            if self.desk is not None:
                self.desk.noted(self, item.text)
            return []
        if isinstance(item, CardInserted):
            self.leftcard.device = item.device
            return s.on_card_inserted()
        if isinstance(item, CatalogOffer):
            applied = s.offer_catalog(item.catalog)
            log.info(
                "catalog version %d %s",
                item.catalog.version,
                "applied" if applied else "waits for the end of the session",
            )
            if applied:
                self._note_catalog()
            return []
        if isinstance(item, PreviewDone):
            if item.txn_id != s.txn_id:
                return []  # a preview for a session that is gone
            if item.error_key:
                return s.on_fetch_failed(item.error_key)
            self._preview, self._document = item.preview, item.document
            return s.on_preview_ready() + list(item.said)
        if isinstance(item, IdentityRead):
            return s.on_identity(item.identity)
        if isinstance(item, CardRemoved):
            return s.on_card_removed()
        if isinstance(item, DeviceFault):
            log.warning("device fault on %s: %s", item.device, item.translation_key)
            return s.on_card_fault(item.translation_key)
        if isinstance(item, PrintDone):
            if item.txn_id != s.txn_id or s.state != "printing":
                log.error("print result for a session that is gone")
                return []
            return s.on_printed(item.outcome, item.outputs)
        if isinstance(item, HealthUpdate):
            return self._apply_health(item.devices)
        if isinstance(item, ReaderConnected | ReaderDisconnected):
            self._refresh_health.set()  # do not wait for the next round to update the services
        return []  # card inserted: the identity follows

    def _intent(self, intent: Intent) -> list[Effect]:
        s = self.session
        self.devices.speech.stop()  # a touch interrupts the current prompt
        name = intent.name
        if name.startswith("maint."):
            return self.desk.intent(self, name, intent.arg) if self.desk is not None else []
        if name.startswith("call."):
            return self.calls.intent(name)
        if name == "help":
            self._help_shown = True
            self.calls.gate.help_pressed(self._clock())
            return self.helpdesk.said(s.on_help(on_duty=self.helpdesk.pressed()))
        if name == "close_help":
            self._help_shown = False
            self.helpdesk.closed()
            return s.on_touch()
        if name == "help_slip":
            return self.helpdesk.print_slip()
        if name == "louder":
            self._louder = bool(intent.arg)
            self.devices.speech.set_volume(1.0 if self._louder else self.base_volume())
            return s.on_touch() + [Speak("prompt.louder" if self._louder else "prompt.softer")]
        if name == "page":  # the preview's reading view turned a page: say which (1-based)
            page, pages = intent.arg
            return s.on_touch() + [Speak("preview.page", {"page": str(page), "pages": str(pages)})]
        # the choose screen opened another list: say which; a key moved the focus: say where
        if name in ("browse", "say"):
            key, params = intent.arg
            return s.on_touch() + [self.phones.private(str(key), params, s.view, s.identity)]
        if name == "headphones":  # the jack (kiosk.shell.jack) or, where it is not detected, a key
            plugged = not self.phones.plugged if intent.arg is None else intent.arg
            return s.on_touch() + self.phones.plugged_in(plugged)
        if name == "lang":
            return s.set_lang(str(intent.arg)) + mode_update(s)
        if name == "elder":
            return s.set_elder(bool(intent.arg)) + mode_update(s)
        if name == "pick":
            return s.on_pick(str(intent.arg))
        if name == "rate":
            rating, tags = intent.arg if isinstance(intent.arg, tuple) else (intent.arg, ())
            return s.on_rate(int(rating), tuple(tags))
        handler: Callable[[], list[Effect]] = {
            "start": s.on_start,
            "skip_identity": s.on_skip_identity,
            "back": s.on_back,
            "confirm": s.on_confirm,
            "skip_rating": s.on_skip_rating,
            "cancel": s.on_cancel,
            "touch": s.on_touch,
            "extend": s.on_extend,
        }[name]
        return handler()

    # --- effects -------------------------------------------------------------------------------

    def _execute(self, effects: list[Effect]) -> None:
        for effect in effects:
            try:
                self._effect(effect)
            except Exception:
                log.exception("effect %s failed", type(effect).__name__)
        self._render()

    def _effect(self, effect: Effect) -> None:
        s = self.session
        if isinstance(effect, Show):
            self.captions.screen_changed()
            if effect.screen in ("idle", "choose", "out_of_order"):
                self._preview = None
                self._document = None
                self.paperwork.release()  # queue numbers shown and not printed
            if effect.screen == "idle":
                self._help_shown = False
                self.helpdesk.session_ended()
            if effect.screen in ("idle", "out_of_order"):
                self._note_catalog()  # a new catalog takes over between sessions
                self._louder = False  # the next resident hears the station's own volume
                self.devices.speech.set_volume(self.base_volume())
        elif isinstance(effect, BuildPreview):
            self._preview = None
            self._document = None
            threading.Thread(
                target=self.paperwork.build_preview, args=(effect,), name="preview", daemon=True
            ).start()
        elif isinstance(effect, Speak):
            self._last_spoken = self._clock()
            text = self.captions.said(effect.key, effect.params, screen=s.state, lang=s.lang)
            self.devices.speech.speak(text, lang=s.lang, elder=s.elder)
        elif isinstance(effect, ReadCard):
            for reader in self.devices.readers():
                reader.read_again()
        elif isinstance(effect, StopSpeech):
            self.devices.speech.stop()
        elif isinstance(effect, PrintDocuments):
            self.paperwork.start_printing(effect, self._document)
        elif isinstance(effect, JOURNAL_EFFECTS):
            self._journal_write(self.writer.op(effect), begins=isinstance(effect, JournalBegin))

    def _journal_write(self, op: Callable[[], object], *, begins: bool = False) -> None:
        if self.writer.write(op):
            return
        if begins and self.session.state == "identify":
            self.queue.put(Intent("cancel"))  # this resident is told, not served
        self._refresh_health.set()

    def _render(self) -> None:
        self.leftcard.seen(self.session.state)
        self.on_frame(
            Frame(
                view=self.session.view,
                preview=self._preview,
                help_shown=self._help_shown,
                unavailable=self.session.unavailable(),
                health=dict(self._health),
                louder=self._louder,
                help=self.helpdesk.state(),
                caption=self.captions.text,
                call=self.calls.view(),
                **{**self._desk_frame(), **self._remote_frame()},
            )
        )

    def _remote_frame(self) -> dict[str, Any]:
        code = self.remote.exit_code
        return {} if code is None else {"exit_code": code}

    @property
    def health(self) -> dict[str, DeviceHealth]:
        """The latest health of every device (kind → report)."""
        return dict(self._health)

    def refresh_health(self) -> None:
        """Ask the health loop for a round now."""
        self._refresh_health.set()

    def _note_catalog(self) -> None:
        """The catalog version serving residents, for the agent's birth and the console."""
        version = str(self.catalog.version)
        if version != self._catalog_noted:
            self.journal.set_meta("catalog_version", version)
            self._catalog_noted = version

    def base_volume(self) -> float:
        """The station's volume at this hour: softer in the quiet hours (night, early morning)."""
        volume, quiet_volume, quiet_hours = self._volume
        now = self.now()
        if quiet_hours and within(quiet_hours, now.hour * 60 + now.minute):
            return quiet_volume
        return volume

    @property
    def _print_deadline_s(self) -> float:
        return self.paperwork.print_deadline_s

    @_print_deadline_s.setter
    def _print_deadline_s(self, value: float) -> None:  # tests and faults shorten it
        self.paperwork.print_deadline_s = value

    def _desk_frame(self) -> dict[str, Any]:
        desk = self.desk
        if desk is None:
            return {}
        return {
            "pin_digits": len(desk.pad.digits),
            "pin_message": (desk.pad.message_key, desk.pad.message_arg),
            "report": desk.report,
            "exit_code": desk.exit_code,
        }

    # --- health --------------------------------------------------------------------------------

    def _health_loop(self) -> None:
        while not self._stop.is_set():
            reports: list[DeviceHealth] = []
            for device in self.devices.all():
                try:
                    reports.append(device.health())
                except Exception:
                    log.exception("health of %s failed", getattr(device, "name", "?"))
            if not self.writer.ok and self.writer.probe():
                self.queue.put(JournalReplay())
            self.queue.put(HealthUpdate(tuple(reports)))
            if self.diskguard is not None:
                try:
                    self.diskguard.check()  # a nearly full disk: quieter logs, an alert
                except Exception:
                    log.exception("checking the free disk space failed")
            try:
                self.journal.put_health(self.leftcard.decorate([h.as_dict() for h in reports]))
            except Exception:
                log.exception("writing health failed")
            self._refresh_health.wait(self._health_interval_s)
            self._refresh_health.clear()

    def _apply_health(self, reports: tuple[DeviceHealth, ...]) -> list[Effect]:
        self._health = {h.device if h.kind == "provider" else h.kind: h for h in reports}
        now = self.now()
        unavailable = unavailable_services(
            self.catalog.enabled_services(),
            minute_of_day=now.hour * 60 + now.minute,
            journal_ok=self.writer.ok,
            health=self._health,
            providers={key: p.name for key, p in self.devices.providers.items()},
        )
        unavailable, params = opening_hours(unavailable, self.catalog, now)
        if (unavailable, params) == (self.session.unavailable(), self.session.reason_params()):
            return []
        effects = self.session.set_unavailable(unavailable, params)
        self._render()
        return effects
