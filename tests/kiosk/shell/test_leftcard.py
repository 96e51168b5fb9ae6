"""The left-behind guard and the captions in the shell, on real drivers and simulators.

A card left on the reader at the end of a session is asked for (screen, voice and caption) until
it is taken; after ``card_left_alert_s`` the reader's health, as written for the agent, names it
(``card_left_behind``), and stops naming it when the card is taken; a card lying on the reader
when a session starts is read for that session (issue 20, point 1). Every line given to the
voice is the caption of the frame that follows, on the screen it was said on (point 2).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.sam.simulator import SamSimulator
from flows.synthetic import DEMO_RESIDENT
from kiosk.i18n import Translator
from kiosk.shell.devices import SpeechOff
from kiosk.shell.leftcard import REASON, LeftCardWatch
from kiosk.shell.runtime import Frame, Intent, Runtime
from sandbox.cups import CupsSandbox
from tests.kiosk.shell.station import pump_until, running_station

TR = Translator(strict=True)


class HeardSpeech(SpeechOff):
    """Speech off, but every line given to it is kept."""

    def __init__(self) -> None:
        self.heard: list[str] = []

    def speak(self, text: str, *, lang: str, elder: bool = False) -> None:
        self.heard.append(text)


@pytest.fixture
def rig(
    tmp_path: Path, cups: CupsSandbox
) -> Iterator[tuple[Runtime, SamSimulator, HeardSpeech, list[Frame]]]:
    speech = HeardSpeech()
    # on a Monday morning at the station (the rig's clock): staffed, the help line names its phone
    with running_station(tmp_path, cups, speech=speech, card_left_alert_s=1.0) as station:
        yield station.runtime, station.sam, speech, station.frames


def reader_reasons(runtime: Runtime) -> list[str]:
    return list(runtime.journal.health_snapshot().get("id_reader", {}).get("reasons", []))


def test_a_left_card_is_asked_for_reported_and_the_next_card_is_read(
    rig: tuple[Runtime, SamSimulator, HeardSpeech, list[Frame]],
) -> None:
    runtime, sam, speech, frames = rig
    runtime.post(Intent("start"))
    pump_until(runtime, lambda: runtime.session.state == "identify")
    sam.insert(DEMO_RESIDENT)
    pump_until(runtime, lambda: runtime.session.state == "choose")
    runtime.post(Intent("lang", "en"))
    runtime.post(Intent("cancel"))  # the resident walks off; the card stays on the reader
    pump_until(runtime, lambda: runtime.session.state == "take_card")
    frame = frames[-1]
    asked = TR("prompt.take_card", "en")
    assert (frame.view.screen, frame.view.lang, frame.caption) == ("take_card", "en", asked)
    assert speech.heard[-1] == asked and frame.view.card_on_reader
    # after the configured time, the health the agent sends names the card left behind
    pump_until(runtime, lambda: REASON in reader_reasons(runtime), timeout=5)
    record = runtime.journal.health_snapshot()["id_reader"]
    assert record["state"] == "ok" and record["detail"]["card_left_s"] >= 1
    snapshot = repr(runtime.journal.health_snapshot())
    assert DEMO_RESIDENT.name not in snapshot and DEMO_RESIDENT.id_number not in snapshot
    sam.remove()  # taken: home, and the reason goes at the next health round
    pump_until(runtime, lambda: runtime.session.state == "idle")
    pump_until(runtime, lambda: REASON not in reader_reasons(runtime), timeout=5)
    assert frames[-1].caption == TR("prompt.home", "zh")  # home speaks its own language again

    # the next resident places the card before touching Start: it is read for the session
    sam.insert(DEMO_RESIDENT)
    pump_until(runtime, lambda: runtime.session.view.card_on_reader)
    time.sleep(0.5)  # read once already, outside a session, and dropped
    runtime.post(Intent("start"))
    pump_until(runtime, lambda: runtime.session.state == "choose")


def test_the_caption_is_the_line_being_said_on_its_screen(
    rig: tuple[Runtime, SamSimulator, HeardSpeech, list[Frame]],
) -> None:
    runtime, _sam, speech, frames = rig
    runtime.post(Intent("start"))
    pump_until(runtime, lambda: runtime.session.state == "identify")
    runtime.post(Intent("help"))
    pump_until(runtime, lambda: frames[-1].help_shown)
    phone = runtime.catalog.station.help_phone
    shown = frames[-1].caption
    assert phone in shown  # as written on the screen ...
    assert phone not in speech.heard[-1]  # ... and said digit by digit
    said = list(runtime.captions.history)
    assert [s.spoken for s in said] == speech.heard  # nothing reaches the voice uncaptioned
    assert [s.screen for s in said][-2:] == ["identify", "identify"]


def test_the_watch_counts_only_while_the_card_is_asked_for() -> None:
    now = [0.0]
    watch = LeftCardWatch(30, clock=lambda: now[0])
    record = {"device": "id_reader", "state": "ok", "reasons": ["lacks_sam_id"], "detail": {}}
    watch.seen("take_card")
    now[0] = 29.0
    assert watch.decorate([record]) == [record]
    now[0] = 31.0
    [out] = watch.decorate([record])
    assert out["reasons"] == ["lacks_sam_id", REASON] and out["detail"] == {"card_left_s": 31}
    assert record["reasons"] == ["lacks_sam_id"]  # the reader's own record is not changed
    watch.seen("thanks")
    assert watch.decorate([record]) == [record]
