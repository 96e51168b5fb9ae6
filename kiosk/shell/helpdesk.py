"""The help button's side of the shell: duty hours, the technician's answer, the hotline slip.

Pressing help always records a help request (the centre sees it at any hour). What the resident
is told depends on the hour:

- **Inside the station's duty hours** (the catalog's ``[station] duty_hours``) staff will answer:
  the help overlay says so, with the station's phone.
- **A call** (:mod:`kiosk.shell.call`): on duty at a station with call audio the overlay and the
  prompt say that a staff member can call back here now; at a station without (no ``[call]``
  devices) they say that calls are not available here, and the hotline slip is offered at any
  hour.
- **Outside them** nobody will come until the morning, and the overlay says that honestly: staff
  are not on duty now, the request is recorded, call the hotline (``[station] hotline``, answered
  at any hour; the station's phone if the catalog names none), read out digit by digit; and a
  button prints a slip with the hotline and the duty hours to take home. One slip per press of
  help: the button says "printed" afterwards. The slip is not a transaction and holds no personal
  data; it is printed directly, not through the journal's exactly-once jobs.

**The technician's answer** (``help_reply``, :mod:`fleet.protocol.help`) arrives from the agent
through :mod:`kiosk.shell.remote` as a :class:`HelpAnswer` on the runtime's queue. It opens the
help overlay (if the resident closed it) with the answer on top, large, and speaks it. What
happens to it afterwards:

- the resident closes the overlay: it has been seen, it is gone;
- the session ends (done, cancelled, timed out) while it shows: it goes with the session; the next
  resident must not be told that someone is coming for them;
- it arrives while the station is idle (the resident's session timed out while they waited, which
  is what an elderly resident waiting for staff will often see): it shows on the home screen for
  :data:`REPLY_ON_HOME_S`, then it is dropped. A newcomer in those minutes may read it; it says
  nothing personal.

The shell stays free of Kivy: :class:`HelpState` is what the screen renders.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from fleet.protocol.help import HelpReply
from flows.effects import Effect, Speak
from flows.models import Align, Receipt, ReceiptLine

if TYPE_CHECKING:
    from kiosk.shell.runtime import Runtime

log = logging.getLogger("kiosk.shell.helpdesk")

REPLY_ON_HOME_S = 120.0
"""How long an answer that arrives on the home screen stays there."""
SLIP_DEADLINE_S = 20.0


@dataclass(frozen=True, slots=True)
class HelpAnswer:
    """The technician's answer, from the agent (queued by :mod:`kiosk.shell.remote`)."""

    reply: HelpReply


@dataclass(frozen=True, slots=True)
class HelpSlipDone:
    """The hotline slip was printed (or not)."""

    ok: bool


@dataclass(frozen=True, slots=True)
class HelpState:
    """What the help overlay shows (in :class:`kiosk.shell.runtime.Frame`)."""

    after_hours: bool = False
    reply_key: str = ""  # translation key of the technician's answer; "" when there is none
    reply_params: dict[str, str] = field(default_factory=dict)
    slip: str = ""  # "", printing, printed, failed
    call: str = ""  # "now": staff can call back here now; "none": no calls at this station

    @property
    def slip_offered(self) -> bool:
        """The hotline slip's button: after hours, and wherever no call can be taken."""
        return self.after_hours or self.call == "none"


def reply_speech(reply: HelpReply) -> tuple[str, dict[str, str]]:
    """The translation key and parameters that say (and show) an answer."""
    if reply.kind == "on_the_way":
        return "help.reply.on_the_way", {"n": str(reply.minutes)}
    if reply.kind == "call":
        return "help.reply.call", {"phone": str(reply.number)}
    return "help.reply.text", {"text": str(reply.text)}


class HelpDesk:
    """Help state of the runtime; every method runs on the runtime's thread (the UI thread)
    except the slip's printing, which reports back through the queue."""

    def __init__(self, runtime: Runtime, *, clock: Callable[[], float]) -> None:
        self._rt = runtime
        self._clock = clock
        self._after_hours = False
        self._reply: tuple[str, dict[str, str]] | None = None
        self._reply_on_home_until: float | None = None
        self._slip = ""
        self._call = ""

    def state(self) -> HelpState:
        key, params = self._reply or ("", {})
        return HelpState(self._after_hours, key, dict(params), self._slip, self._call)

    def pressed(self) -> bool:
        """The help button: is staff on duty now? (The overlay and the prompt depend on it.)"""
        now = self._rt.now()
        on_duty = self._rt.catalog.station.on_duty(now.hour * 60 + now.minute)
        self._after_hours = not on_duty
        self._slip = ""
        self._call = "none" if not self._rt.calls.available else "now" if on_duty else ""
        return on_duty

    def said(self, effects: list[Effect]) -> list[Effect]:
        """The help button's prompt, saying what the help overlay says about a call: staff can
        call back here now (on duty, with call audio), or no call at this station."""
        if not self._call:
            return effects
        return [
            replace(e, key=f"prompt.help_call_{self._call}" + e.key[len("prompt.help") :])
            if isinstance(e, Speak) and e.key in ("prompt.help", "prompt.help_after_hours")
            else e
            for e in effects
        ]

    def closed(self) -> None:
        """The resident closed the overlay: an answer shown there has been seen."""
        self._reply = None
        self._reply_on_home_until = None

    def session_ended(self) -> None:
        """Back to the home screen: an answer shown during the session goes with it."""
        if self._reply_on_home_until is None:
            self._reply = None

    def tick(self) -> bool:
        """From the pump: an answer on the home screen has been shown long enough, or a new
        session began under it (a card was inserted); True if the overlay closed."""
        until = self._reply_on_home_until
        if until is None:
            return False
        if self._clock() < until and self._rt.session.state == "idle":
            return False
        self.closed()
        self._rt.show_help(False)
        return True

    def handle(self, item: HelpAnswer | HelpSlipDone) -> list[Effect]:
        if isinstance(item, HelpSlipDone):
            self._slip = "printed" if item.ok else "failed"
            return [Speak("prompt.help_slip_printed" if item.ok else "prompt.help_slip_failed")]
        return self._answer(item.reply)

    def _answer(self, reply: HelpReply) -> list[Effect]:
        key, params = reply_speech(reply)
        self._reply = (key, params)
        idle = self._rt.session.state == "idle"
        self._reply_on_home_until = self._clock() + REPLY_ON_HOME_S if idle else None
        self._rt.show_help()
        log.info("a technician's answer (%s) is shown %s", reply.kind, "on home" if idle else "")
        return [*self._rt.session.on_touch(), Speak(key, params)]

    def print_slip(self) -> list[Effect]:
        """The after-hours overlay's button: the hotline and the duty hours on a slip."""
        if self._slip in ("printing", "printed"):
            return []
        self._slip = "printing"
        lang = self._rt.session.lang
        receipt = self.slip_receipt(lang)
        threading.Thread(target=self._print, args=(receipt,), name="help-slip", daemon=True).start()
        return [*self._rt.session.on_touch(), Speak("prompt.help_slip_printing")]

    def slip_receipt(self, lang: str) -> Receipt:
        station = self._rt.catalog.station
        tr = self._rt.tr
        start, _, end = station.duty_hours.partition("-")
        params: dict[str, Any] = {"phone": station.night_phone, "start": start, "end": end}
        return Receipt(
            lines=(
                ReceiptLine(tr("slip.help.title", lang), Align.CENTER, double=True),
                ReceiptLine(station.name.get(lang), Align.CENTER),
                ReceiptLine(""),
                ReceiptLine(tr("slip.help.hotline", lang, **params), bold=True),
                ReceiptLine(tr("slip.help.hours", lang, **params)),
                ReceiptLine(tr("slip.help.station_phone", lang, phone=station.help_phone)),
                ReceiptLine(""),
                ReceiptLine(f"{self._rt.now():%Y-%m-%d %H:%M}", Align.CENTER),
            )
        )

    def _print(self, receipt: Receipt) -> None:
        try:
            outcome = self._rt.devices.thermal_printer.print_receipt(
                receipt, deadline_s=SLIP_DEADLINE_S
            )
            ok = outcome.ok
        except Exception:
            log.exception("printing the hotline slip failed")
            ok = False
        self._rt.queue.put(HelpSlipDone(ok))
