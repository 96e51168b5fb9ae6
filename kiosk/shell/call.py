"""The shell's side of a staff member's call (远程帮办): taking the ``call_offer`` command,
the call screen's state, the resident's buttons.

The console sends the technician's WebRTC offer as the ``call_offer`` command
(:mod:`fleet.protocol.call`); :mod:`kiosk.shell.remote` hands it here on the UI thread. The
kiosk answers only when :class:`flows.call.CallGate` says its resident asked for help in this
session; otherwise the command fails at once with the reason (``no_help_request``,
``maintenance``, ``busy``; ``unsupported`` where the station has no call audio configured).
Answering: the call screen opens over the session ("connecting", the staff member's name), the
kiosk says a call is starting, and a worker thread has :class:`kiosk.shell.call_peer.CallPeer`
make the answer, which becomes the command's result. The session underneath stays as it was,
and while the call lasts the resident's silence is not a timeout.

The resident ends the call at any moment (``call.end``), turns the staff member's voice up or
down (``call.louder``, ``call.quieter``), and turns the station's camera off and on again
(``call.camera``) where it has one; the staff member's picture, when their browser sends one, is
shown on the call screen (:meth:`CallDesk.picture`, read by the screen, never stored).

A deployment may record calls (the console's ``call_recording``): the offer says so (``record``,
``record_days``), and the kiosk asks the resident on the screen and by voice before anything is
recorded (``call.consent_yes``, ``call.consent_no``). The talk goes on meanwhile, so that the staff
member can explain; the answer goes to the page on the data channel (``consent:yes``,
``consent:no``), which records only after a yes, and into the call's end event, whose word the
console keeps (a question never answered is a no).

A call that drops (no message on its data channel for a few seconds) ends on both sides, and the
screen says so for :data:`ENDED_SHOWN_S`. Every end is queued in the outbox as ``evt/call_end``
(the call's id, how it ended, how long it lasted), so that the console's audit has it even when the
technician's page died first.

The kiosk itself records nothing: the peer plays to the speaker. The staff member's name is not
personal data of a resident; it is shown and spoken, and logged by neither.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from fleet.protocol.call import (
    ANSWER_TIMEOUT_S,
    CONSENT_NO,
    CONSENT_YES,
    CallOffer,
    parse_offer,
    parse_screen_args,
)
from fleet.protocol.models import CALL_END_EVENT, CALL_META
from flows.call import CallGate, CallView, volume_step
from flows.effects import Effect, Speak
from statedir.journal import CommandRecord

if TYPE_CHECKING:
    from kiosk.shell.call_peer import CallMedia, CallPeer, Picture
    from kiosk.shell.runtime import Runtime

__all__ = ["ENDED_SHOWN_S", "CallDesk", "CallView"]

log = logging.getLogger("kiosk.shell.call")

ENDED_SHOWN_S = 4.0
AWAKE_EVERY_S = 5.0
"""While a call lasts the session is kept active this often (the resident talks, not touches)."""


class CallDesk:
    """One call at a time; every method runs on the UI thread but the peer's reports, which
    arrive through a queue."""

    def __init__(self, runtime: Runtime, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._rt = runtime
        self._clock = clock
        self.gate = CallGate()
        self._audio: CallMedia | None = None
        self._view = CallView()
        self._peer: CallPeer | None = None
        self._phases: queue.Queue[tuple[str, str]] = queue.Queue()
        self._said: list[Effect] = []
        self._ended_until = 0.0
        self._awake_at = 0.0
        self._call_id = ""  # the call_offer command's id, for the call_end event
        self._talking_at: float | None = None

    @property
    def audio(self) -> CallMedia | None:
        """The call's sound devices; None: no call at this station (no microphone)."""
        return self._audio

    @audio.setter
    def audio(self, audio: CallMedia | None) -> None:
        """Set at the station's start; noted in the journal, so that the agent reports the
        ``call`` capability (the console offers a call only to a station that can take one)."""
        self._audio = audio
        self._rt.journal.set_meta(CALL_META, "1" if audio is not None else "0")

    @property
    def available(self) -> bool:
        return self._audio is not None

    def view(self) -> CallView:
        return self._view

    def picture(self) -> Picture | None:
        """The staff member's camera, as last received (for the call screen, any thread)."""
        peer = self._peer
        return peer.picture() if peer is not None and self._view.picture else None

    def guides(self, args: dict[str, Any]) -> bool:
        """A ``screenshot`` command for the call in progress (the staff member guiding the
        resident through the current screen): only while that very call is talking."""
        screen = parse_screen_args(args)
        return (
            screen is not None
            and screen.call is not None
            and screen.call == self._call_id
            and self._view.phase == "talking"
        )

    # --- the command ---------------------------------------------------------------------------

    def offer(self, cmd: CommandRecord, state: str) -> bool:
        """A pending ``call_offer``: refuse it, or take it (True: the screen changes)."""
        journal = self._rt.journal
        offer = parse_offer(cmd.args)
        refusal = (
            "bad_args"
            if offer is None
            else "unsupported"
            if self.audio is None
            else "busy"
            if self._view.active
            else self.gate.refusal(state, self._clock())
        )
        if refusal is not None or offer is None:
            if journal.claim_command(cmd.id):
                journal.finish_command(cmd.id, "failed", {"reason": refusal})
                log.info("a call was refused (%s)", refusal)
            return False
        if not journal.claim_command(cmd.id):
            return False
        self._start(cmd, offer)
        return True

    def _start(self, cmd: CommandRecord, offer: CallOffer) -> None:
        from kiosk.shell.call_peer import CallPeer

        assert self.audio is not None
        phases = self._phases
        peer = CallPeer(self.audio, lambda phase, reason: phases.put((phase, reason)))
        self._peer = peer
        self._call_id, self._talking_at = cmd.id, None
        self._view = CallView(
            "connecting",
            offer.staff,
            self._view.volume or 1.0,
            consent="ask" if offer.record else "",
            record_days=offer.record_days,
        )
        starting = (
            Speak("call.say_starting_record", {"name": offer.staff, "days": str(offer.record_days)})
            if offer.record
            else Speak("call.say_starting", {"name": offer.staff})
        )
        self._said += [*self._rt.session.on_activity(), starting]
        log.info("a staff member's call is starting")
        threading.Thread(
            target=self._answer, args=(cmd, peer, offer), name="call-answer", daemon=True
        ).start()

    def _answer(self, cmd: CommandRecord, peer: CallPeer, offer: CallOffer) -> None:
        journal = self._rt.journal
        try:
            sdp = peer.answer(offer.sdp, ANSWER_TIMEOUT_S - 5)
        except Exception as err:
            log.warning("the call could not be answered (%s)", type(err).__name__)
            journal.finish_command(cmd.id, "failed", {"reason": "failed"})
            return
        if not journal.finish_command(cmd.id, "succeeded", {"type": "answer", "sdp": sdp}):
            peer.hang_up("failed")  # too late: the console has given up

    # --- the resident --------------------------------------------------------------------------

    def intent(self, name: str) -> list[Effect]:
        """``call.end``, ``call.louder``, ``call.quieter``, ``call.close`` (the ended notice)."""
        touch = self._rt.session.on_touch()
        if name == "call.end" and self._view.active and self._peer is not None:
            self._peer.hang_up("resident")
            return touch
        if name in ("call.louder", "call.quieter") and self._view.active:
            volume = volume_step(self._view.volume, up=name == "call.louder")
            self._view = replace(self._view, volume=volume)
            if self._peer is not None:
                self._peer.volume = volume
            return touch + [Speak("prompt.call_louder" if volume > 1 else "prompt.call_volume")]
        if name == "call.camera" and self._view.active and self._view.camera:
            camera_on = not self._view.camera_on
            self._view = replace(self._view, camera_on=camera_on)
            if self._peer is not None:
                self._peer.camera_on = camera_on
            return touch + [
                Speak("prompt.call_camera_on" if camera_on else "prompt.call_camera_off")
            ]
        if name in ("call.consent_yes", "call.consent_no") and self._view.consent == "ask":
            yes = name == "call.consent_yes"
            self._view = replace(self._view, consent="yes" if yes else "no")
            if self._peer is not None:
                self._peer.tell(CONSENT_YES if yes else CONSENT_NO)
            log.info("the resident %s the recording", "agreed to" if yes else "declined")
            return touch + [Speak("prompt.call_consent_yes" if yes else "prompt.call_consent_no")]
        if name == "call.close" and self._view.phase == "ended":
            self._view = CallView(volume=self._view.volume)
            return touch
        return touch

    # --- the pump ------------------------------------------------------------------------------

    def tick(self) -> list[Effect] | None:
        """From the pump: the peer's reports, the ended notice's end, the session kept awake;
        None if nothing changed, else what to say (the screen is drawn again)."""
        now = self._clock()
        said, self._said = self._said, []
        changed = bool(said)
        self.gate.observe(self._rt.session.state, now)
        while True:
            try:
                phase, reason = self._phases.get_nowait()
            except queue.Empty:
                break
            said += self._phase(phase, reason, now)
            changed = True
        if self._view.phase == "ended" and now >= self._ended_until:
            self._view = CallView(volume=self._view.volume)
            changed = True
        if self._view.active and now - self._awake_at >= AWAKE_EVERY_S:
            self._awake_at = now
            said += self._rt.session.on_activity()
        return said if changed or said else None

    def _phase(self, phase: str, reason: str, now: float) -> list[Effect]:
        if phase in ("camera", "picture") and self._view.active:
            camera, picture = phase == "camera", phase == "picture"
            self._view = replace(
                self._view,
                camera=self._view.camera or camera,
                picture=self._view.picture or picture,
            )
            return []
        if phase == "talking" and self._view.phase == "connecting":
            self._view = replace(self._view, phase="talking")
            self._talking_at = now
            camera = self._view.camera and self._view.camera_on
            return [Speak("prompt.call_talking_camera" if camera else "prompt.call_talking")]
        if phase == "ended" and self._view.active:
            ended = reason if reason in ("resident", "staff", "dropped", "failed") else "failed"
            self._view = replace(self._view, phase="ended", ended=ended)  # type: ignore[arg-type]
            self._ended_until = now + ENDED_SHOWN_S
            self._peer = None
            log.info("the call ended (%s)", ended)
            self._report_end(ended, now)
            key = "prompt.call_dropped" if ended in ("dropped", "failed") else "prompt.call_ended"
            return [*self._rt.session.on_activity(), Speak(key)]
        return []

    def _report_end(self, reason: str, now: float) -> None:
        """The call's end for the console's audit, through the outbox (``evt/call_end``): it
        arrives even if the technician's page died first, or after a network outage."""
        started = self._talking_at
        payload = {
            "call_id": self._call_id,
            "reason": reason,
            "connected": started is not None,
            "duration_s": 0.0 if started is None else round(max(0.0, now - started), 1),
            "consent": self._view.consent_word,
            "ts": time.time(),
        }
        try:
            self._rt.journal.queue_event(CALL_END_EVENT, payload)
        except Exception as err:  # the journal's own failure is reported by its writer
            log.warning("the call's end could not be queued (%s)", type(err).__name__)

    def close(self) -> None:
        """The app stops: end a call in progress."""
        if self._peer is not None:
            self._peer.hang_up("resident")
