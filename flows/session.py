"""The resident's session as a state chart: the functional core of the terminal.

It does no I/O. The shell (``kiosk/``) feeds it events — resident intents from the screen, device
events from the drivers, print results, clock ticks — on one thread, and executes the effects it
returns: show a screen, speak a prompt, print, write to the journal. Tests drive it with a fake
clock and no GUI.

States and transitions are declared with python-statemachine; stray events raise
``TransitionNotAllowed`` (they are errors, not silently ignored). Timeouts are declared per state
in :data:`TIMEOUTS_S`; elder mode doubles them. Before a timeout fires the resident is warned and
can extend with one touch.
"""

from __future__ import annotations

import functools
import secrets
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from statemachine import State, StateMachine
from statemachine.transition_list import TransitionList

from flows.catalog import Catalog, Service
from flows.effects import (
    BuildPreview,
    Effect,
    JournalBegin,
    JournalFinish,
    JournalHelp,
    JournalRate,
    JournalUpdate,
    Offer,
    PrintDocuments,
    ReadCard,
    Selection,
    Show,
    Speak,
    StopSpeech,
)
from flows.identity import identity_hash
from flows.models import Identity, PrintOutcome
from flows.view import View, selections

__all__ = [
    "TIMEOUTS_S",
    "BuildPreview",
    "Effect",
    "JournalBegin",
    "JournalFinish",
    "JournalHelp",
    "JournalRate",
    "JournalUpdate",
    "Offer",
    "PrintDocuments",
    "ReadCard",
    "Selection",
    "Session",
    "SessionChart",
    "Show",
    "Speak",
    "StopSpeech",
    "View",
    "selections",
]

TIMEOUTS_S: dict[str, float] = {
    "identify": 60.0,
    "choose": 120.0,
    "notice": 240.0,
    "preview": 180.0,
    "rate": 40.0,
    "thanks": 5.0,
    "unlock": 60.0,
    "maintenance": 600.0,
}
"""Seconds of inactivity before a state gives up; doubled in elder mode. Printing never times out
here: the printer drivers carry their own deadlines, and ``take_card`` waits until the card is
taken (its reminder is :data:`REMIND_TAKE_CARD_S`; the console is told by the shell)."""

NO_WARNING = ("thanks",)
"""States that end without asking "are you still there?" (the thank-you is short on purpose)."""
REMIND_TAKE_CARD_S = 20.0
"""A card left on the reader is asked for again this often (spoken; it stays on the screen)."""

WARN_BEFORE_S = 15.0
"""The resident is warned (shown and spoken) this long before a timeout and can extend."""

MAX_EXTENSIONS = 20
IN_SESSION = ("identify", "choose", "notice", "preview", "rate")
SESSION_OVER = ("idle", "out_of_order", "take_card", "thanks")
"""States with no session: no identity, no transaction; a new catalog applies at once."""

WINDOW_CLOSED = ("unavailable.window_closed", "unavailable.window_opens")


def _card_first(sources: Iterable[State], take_card: State, *, otherwise: State) -> TransitionList:
    """From each of ``sources``: to ``take_card`` while a card lies on the reader, else to
    ``otherwise`` (the chart takes the first transition whose guard holds, so the card first)."""
    transitions = TransitionList()
    for source in sources:
        transitions.add_transitions(
            source.to(take_card, cond="card_on_reader") | source.to(otherwise)
        )
    return transitions


class SessionChart(StateMachine):
    """The resident's session; see the module docstring."""

    idle = State(initial=True)
    out_of_order = State()
    identify = State()
    choose = State()
    notice = State()
    preview = State()
    printing = State()
    rate = State()
    take_card = State()  # the session is over, its card is still on the reader: ask for it
    thanks = State()  # the session is over: a short thank-you, then home
    unlock = State()  # a technician's PIN pad, reached by a hidden gesture
    maintenance = State()

    break_down = idle.to(out_of_order)
    back_in_service = out_of_order.to(idle)
    start = idle.to(identify)
    identified = identify.to(choose)
    skip_identity = identify.to(choose)
    pick = choose.to(preview)
    pick_notice = choose.to(notice)
    back = preview.to(choose) | notice.to(choose)
    fetch_failed = preview.to(choose)
    confirm = preview.to(printing) | notice.to(printing)
    printed = printing.to(rate)
    # a session that ends with its card on the reader asks for the card before anything else
    rated = _card_first((rate,), take_card, otherwise=thanks)
    skip_rating = _card_first((rate,), take_card, otherwise=thanks)
    _in_session = (identify, choose, notice, preview, rate)  # IN_SESSION's states
    cancel = _card_first(_in_session, take_card, otherwise=idle) | thanks.to(idle)
    timeout = (
        _card_first(_in_session, take_card, otherwise=idle)
        | thanks.to(idle)
        | unlock.to(idle)
        | maintenance.to(idle)
    )
    card_removed = (
        choose.to(idle)
        | notice.to(idle)
        | preview.to(idle)
        | take_card.to(thanks, cond="thank_after")
        | take_card.to(idle)
    )
    open_maintenance = idle.to(unlock) | out_of_order.to(unlock)
    unlocked = unlock.to(maintenance)
    close_maintenance = unlock.to(idle) | maintenance.to(idle)

    # guards, kept by the Session: a card lies on the reader; the resident rated (or skipped)
    card_on_reader = False
    thank_after = False


class Session:
    """One terminal's session logic. Feed it events with the ``on_*`` methods; read ``view``."""

    def __init__(
        self,
        catalog: Catalog,
        *,
        clock: Callable[[], float],
        lang: str = "zh",
        elder: bool = False,
        timeouts: dict[str, float] | None = None,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
        pseudonymise: Callable[[str], str] | None = None,
    ) -> None:
        """``pseudonymise`` turns an ID number into what the journal keeps (the station's keyed
        hash, :func:`flows.identity.identity_hash`); by default a key of this session's own."""
        self.catalog = catalog
        if pseudonymise is None:
            key = secrets.token_bytes(32)
            pseudonymise = functools.partial(identity_hash, key)
        self._pseudonymise = pseudonymise
        self._selections = selections(catalog)
        self._clock = clock
        self._new_id = new_id
        self.default_lang = lang
        self.default_elder = elder
        self.lang = lang
        self.elder = elder
        self._timeouts = dict(TIMEOUTS_S if timeouts is None else timeouts)
        self.chart = SessionChart()
        self._identity: Identity | None = None
        self._anonymous = False
        self._selection: Selection | None = None
        self._preview_ready = False
        self._txn_id: str | None = None
        self._deadline: float | None = None
        self._warned = False
        self._extensions = 0
        self._print_result: PrintOutcome | None = None
        self._unavailable: dict[str, str] = {}
        self._rated = False
        self._remind_at: float | None = None  # take_card: when to ask for the card again
        self._reason_params: dict[str, dict[str, str]] = {}
        self._pending_catalog: Catalog | None = None

    # --- the catalog: changes apply between sessions, never in the middle of one ---------------

    def offer_catalog(self, catalog: Catalog) -> bool:
        """Take a new (verified) catalog; True if it applies now, False if it waits for idle."""
        if self.state in SESSION_OVER:
            self._use_catalog(catalog)
            return True
        self._pending_catalog = catalog
        return False

    def _use_catalog(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._selections = selections(catalog)
        self._pending_catalog = None

    # --- reading -------------------------------------------------------------------------------
    @property
    def state(self) -> str:
        return str(self.chart.current_state_value)

    @property
    def identity(self) -> Identity | None:
        return self._identity

    @property
    def txn_id(self) -> str | None:
        return self._txn_id

    @property
    def selection(self) -> Selection | None:
        return self._selection

    def offers(self) -> tuple[Offer, ...]:
        result = []
        for sel in self._selections:
            code = next((s.code for s in sel.services if self._blocks(sel, s.code)), "")
            reason = self._unavailable.get(code, "")
            if self._anonymous and sel.needs_identity:  # without a card, this is the reason
                reason = "unavailable.needs_id"
            params = tuple(sorted(self._reason_params.get(code, {}).items()))
            result.append(Offer(sel, not reason, reason, params))
        if self._anonymous:  # usable first; what needs a card after, marked
            result.sort(key=lambda o: (o.reason.endswith("needs_id"), not o.available))
        return tuple(result)

    def _blocks(self, selection: Selection, code: str) -> bool:
        """Does the service ``code`` keep ``selection`` from being served now? A bundle is
        served when one of its windows is closed: its receipt says when that window opens."""
        reason = self._unavailable.get(code, "")
        return bool(reason) and not (selection.is_bundle and reason in WINDOW_CLOSED)

    def available_services(self) -> tuple[Service, ...]:
        return self.view.services

    @property
    def view(self) -> View:
        ident = self._identity
        left = None if self._deadline is None else max(0.0, self._deadline - self._clock())
        result = self._print_result
        return View(
            screen=self.state,
            lang=self.lang,
            elder=self.elder,
            masked_name=ident.masked_name if ident else "",
            masked_id_number=ident.masked_id_number if ident else "",
            offers=self.offers(),
            selection=self._selection,
            preview_ready=self._preview_ready,
            warning=self._warned,
            seconds_left=left,
            print_ok=None if result is None else result.ok,
            print_error_key="" if result is None or result.ok else result.translation_key,
            card_on_reader=self.chart.card_on_reader,
            prompt_key=self._prompt(),
        )

    # --- settings the resident may change on any screen ----------------------------------------
    def set_lang(self, lang: str) -> list[Effect]:
        if lang not in ("zh", "en"):
            raise ValueError(f"unsupported language {lang!r}")
        self.lang = lang
        return self._activity() + [Speak(self._prompt())]

    def set_elder(self, elder: bool) -> list[Effect]:
        self.elder = elder
        self._arm_timeout()
        return [Speak("prompt.elder_on" if elder else "prompt.elder_off")]

    def set_unavailable(
        self, unavailable: dict[str, str], params: dict[str, dict[str, str]] | None = None
    ) -> list[Effect]:
        """Services that cannot be served now (code → reason key), kept fresh by the shell;
        ``params`` are a reason's parameters by service (when a closed window opens).

        When nothing at all can be served, an idle terminal goes out of order (and says how to
        get help); when something can again, it comes back.
        """
        self._unavailable = dict(unavailable)
        self._reason_params = {code: dict(p) for code, p in (params or {}).items()}
        anything = self._anything()
        if self.state == "idle" and not anything:
            self.chart.send("break_down")
            return self._entered()
        if self.state == "out_of_order" and anything:
            self.chart.send("back_in_service")
            return self._entered()
        return []

    def _anything(self) -> bool:
        return any(s.code not in self._unavailable for s in self.catalog.enabled_services())

    def unavailable(self) -> dict[str, str]:
        return dict(self._unavailable)

    def reason_params(self) -> dict[str, dict[str, str]]:
        return {code: dict(p) for code, p in self._reason_params.items()}

    # --- resident intents ----------------------------------------------------------------------

    def on_start(self) -> list[Effect]:
        self.chart.send("start")
        self._txn_id = self._new_id()
        # a card already on the reader (placed early, or read before) is read for this session
        return [JournalBegin(self._txn_id, self.lang, self.elder), *self._entered(), ReadCard()]

    def on_skip_identity(self) -> list[Effect]:
        """Services that need no ID card (checklists, queue tickets) without placing a card."""
        self.chart.send("skip_identity")
        self._anonymous = True
        return self._entered()

    def on_pick(self, code: str) -> list[Effect]:
        offer = {o.selection.code: o for o in self.offers()}.get(code)
        if offer is None or not offer.available:
            raise KeyError(f"{code!r} is not available")
        selection = offer.selection
        self.chart.send("pick_notice" if selection.notice is not None else "pick")
        self._selection = selection
        self._preview_ready = selection.notice is not None
        assert self._txn_id is not None
        effects: list[Effect] = [JournalUpdate(self._txn_id, service=code)]
        effects += self._entered()
        if self.state == "preview":
            effects.append(BuildPreview(self._txn_id, selection, self._identity, self.lang))
        return effects

    def on_preview_ready(self) -> list[Effect]:
        if self.state != "preview":
            return []  # the resident left the preview while it was being built
        self._preview_ready = True
        return self._activity()

    def on_fetch_failed(self, translation_key: str) -> list[Effect]:
        """The records could not be fetched: say why and offer the other services."""
        if self.state != "preview":
            return []
        self.chart.send("fetch_failed")
        self._selection = None
        self._preview_ready = False
        return self._entered() + [Speak(translation_key)]

    def on_back(self) -> list[Effect]:
        self.chart.send("back")
        self._selection = None
        self._preview_ready = False
        return self._entered()

    def on_confirm(self) -> list[Effect]:
        if self.state == "preview" and not self._preview_ready:
            return []  # nothing to print yet: the preview is still being built
        self.chart.send("confirm")
        assert self._txn_id is not None and self._selection is not None
        printing = PrintDocuments(self._txn_id, self._selection, self._identity, self.lang)
        return self._entered() + [printing]

    def on_rate(self, rating: int, tags: tuple[str, ...] = ()) -> list[Effect]:
        if not 1 <= rating <= 5:
            raise ValueError(f"rating must be 1..5, not {rating}")
        txn = self._txn_id
        self.chart.thank_after, self._rated = True, True
        self.chart.send("rated")
        effects: list[Effect] = [] if txn is None else [JournalRate(txn, rating, tags)]
        return effects + self._entered()

    def on_skip_rating(self) -> list[Effect]:
        self.chart.thank_after = True
        self.chart.send("skip_rating")
        return self._entered()

    def on_cancel(self) -> list[Effect]:
        abandoned = self._abandon("cancel")
        self.chart.send("cancel")
        return abandoned + self._entered()

    def on_help(self, *, on_duty: bool = True) -> list[Effect]:
        """The help button: the request is recorded at any hour (the centre sees it, and outside
        the duty hours its alert waits for the morning); what the resident hears says honestly
        whether anyone is on duty now, and outside the hours names the hotline instead."""
        station = self.catalog.station
        said = (
            Speak("prompt.help", {"phone": station.help_phone})
            if on_duty
            else Speak(
                "prompt.help_after_hours",
                {"phone": station.night_phone, "hours": station.duty_hours},
            )
        )
        return self._activity() + [JournalHelp(self.state, self._txn_id), said]

    def on_touch(self) -> list[Effect]:
        """Any touch is activity: it postpones the timeout and clears a warning."""
        return self._activity()

    def on_activity(self) -> list[Effect]:
        """The resident is busy without touching: a card being read, a long document read out."""
        return self._activity()

    def on_extend(self) -> list[Effect]:
        if self._extensions >= MAX_EXTENSIONS:
            return []
        self._extensions += 1
        return self._activity()

    # --- the technician's way in: a hidden gesture, then a PIN the shell checks ----------------

    def on_open_maintenance(self) -> list[Effect]:
        """The hidden gesture on an idle (or out-of-order) screen: show the PIN pad."""
        self.chart.send("open_maintenance")
        return self._entered()

    def on_unlocked(self) -> list[Effect]:
        """The shell verified the technician's PIN."""
        self.chart.send("unlocked")
        return self._entered()

    def on_close_maintenance(self) -> list[Effect]:
        self.chart.send("close_maintenance")
        return self._entered()

    # --- device and shell events ---------------------------------------------------------------

    def on_card_inserted(self) -> list[Effect]:
        self.chart.card_on_reader = True
        return self._activity() if self.state == "identify" else []

    def on_card_fault(self, translation_key: str) -> list[Effect]:
        """A card could not be read (moved, pulled, PIN wanted): tell the resident what to do."""
        if self.state != "identify":
            return []
        return self._activity() + [Speak(translation_key)]

    def on_identity(self, identity: Identity) -> list[Effect]:
        """A card was read. Outside ``identify`` it is not wanted and is dropped at once."""
        self.chart.card_on_reader = True
        if self.state != "identify":
            return []
        self.chart.send("identified")
        self._identity = identity
        assert self._txn_id is not None
        keyed = self._pseudonymise(identity.id_number)
        return [JournalUpdate(self._txn_id, identity_hash=keyed)] + self._entered()

    def on_card_removed(self) -> list[Effect]:
        self.chart.card_on_reader = False
        if self.state == "take_card":
            self.chart.send("card_removed")
            return self._entered()
        if self.state not in ("choose", "notice", "preview") or self._identity is None:
            return []
        abandoned = self._abandon("card_removed")
        self.chart.send("card_removed")
        return abandoned + self._entered()

    def on_printed(self, outcome: PrintOutcome, outputs: tuple[str, ...]) -> list[Effect]:
        self.chart.send("printed")
        assert self._txn_id is not None
        self._print_result = outcome
        finish = JournalFinish(
            self._txn_id,
            "completed" if outcome.ok else "failed",
            outputs,
            reason=None if outcome.ok else outcome.translation_key,
        )
        effects: list[Effect] = [finish, *self._entered()]
        if not outcome.ok:
            effects.insert(1, Speak(outcome.translation_key or "error.print_failed"))
        return effects

    def on_tick(self) -> list[Effect]:
        """Called by the shell's clock a few times a second."""
        now = self._clock()
        if self._remind_at is not None and now >= self._remind_at:
            self._remind_at = now + REMIND_TAKE_CARD_S
            return [Speak("prompt.take_card")]
        if self._deadline is None:
            return []
        if now >= self._deadline:
            abandoned = self._abandon("timeout")
            self.chart.send("timeout")
            return abandoned + self._entered()
        if self.state in NO_WARNING:
            return []
        if not self._warned and now >= self._deadline - self._warn_s():
            self._warned = True
            return [Speak("prompt.still_there")]
        return []

    # --- internals -----------------------------------------------------------------------------

    def _warn_s(self) -> float:
        return WARN_BEFORE_S * (2 if self.elder else 1)

    def _arm_timeout(self) -> None:
        base = self._timeouts.get(self.state)
        self._warned = False
        self._deadline = None if base is None else self._clock() + base * (2 if self.elder else 1)

    def _activity(self) -> list[Effect]:
        if self._deadline is not None and self.state not in NO_WARNING:
            self._arm_timeout()
        return []

    def _abandon(self, reason: str) -> list[Effect]:
        if self._txn_id is None or self.state not in IN_SESSION or self.state == "rate":
            return []
        return [JournalFinish(self._txn_id, "abandoned", (), self.state, reason)]

    def _entered(self) -> list[Effect]:
        """Effects of arriving in the current state; identity is wiped on the way to idle."""
        if self.state == "idle" and not self._anything():  # a device broke in the last session
            self.chart.send("break_down")
        self._arm_timeout()
        self._remind_at = None
        if self.state == "take_card":
            self._remind_at = self._clock() + REMIND_TAKE_CARD_S
        effects: list[Effect] = [StopSpeech(), Show(self.state), Speak(self._prompt())]
        if self.state in SESSION_OVER:
            # the session is over: its data goes; its language stays until home
            if self._pending_catalog is not None:
                self._use_catalog(self._pending_catalog)
            self._identity = None
            self._anonymous = False
            self._selection = None
            self._preview_ready = False
            self._txn_id = None
            self._print_result = None
            self._extensions = 0
        if self.state in ("idle", "out_of_order"):
            self.lang = self.default_lang
            self.elder = self.default_elder
            self.chart.thank_after, self._rated = False, False
        elif self.state == "choose":
            self._extensions = 0
        return effects

    def _prompt(self) -> str:
        """The key of what the current screen says (spoken on arrival, shown as its title)."""
        if self.state == "thanks" and not self._rated:
            return "prompt.goodbye"
        return _PROMPTS[self.state]

    def debug_state(self) -> dict[str, Any]:
        """For logs: the state and timers, never the identity."""
        return {
            "state": self.state,
            "has_identity": self._identity is not None,
            "deadline": self._deadline,
            "warned": self._warned,
        }


_PROMPTS: dict[str, str] = {
    "idle": "prompt.home",
    "out_of_order": "prompt.out_of_order",
    "identify": "prompt.identify",
    "choose": "prompt.choose",
    "notice": "prompt.notice",
    "preview": "prompt.preview",
    "printing": "prompt.printing",
    "rate": "prompt.rate",
    "take_card": "prompt.take_card",
    "thanks": "prompt.thanks",
    "unlock": "prompt.unlock",
    "maintenance": "prompt.maintenance",
}
