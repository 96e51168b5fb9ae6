"""The help button's shell without a screen (kiosk.shell.helpdesk): a technician's answer
arrives through the journal as the agent writes it, is shown and spoken, and goes when the
resident has seen it, when their session ends, or after a while on the home screen; phone numbers
are read digit by digit. The screen itself is tests/kiosk/ui/test_help.py."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import pytest

from flows.catalog import load_catalog
from kiosk.fonts import find_cjk_font
from kiosk.i18n import Translator
from kiosk.present import help_texts, spoken_number
from kiosk.shell import helpdesk
from kiosk.shell.call_peer import CallMedia
from kiosk.shell.catalog_watch import DEMO_CATALOG
from kiosk.shell.devices import SpeechOff
from kiosk.shell.deviceset import Devices
from kiosk.shell.runtime import Frame, Intent, Runtime
from statedir.journal import Journal


class SpokenLog(SpeechOff):
    def __init__(self) -> None:
        self.texts: list[str] = []

    def speak(self, text: str, *, lang: str, elder: bool = False) -> None:
        self.texts.append(text)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def rig(tmp_path: Path) -> tuple[Runtime, SpokenLog, list[Frame], Clock]:
    speech = SpokenLog()
    unused: Any = object()  # no device but the voice is used here
    clock = Clock()
    runtime = Runtime(
        catalog=load_catalog(DEMO_CATALOG),
        devices=Devices(unused, unused, unused, speech),
        journal=Journal(tmp_path / "journal.sqlite3"),
        translator=Translator(strict=True),
        font=find_cjk_font(),
        secret=b"k" * 32,
        clock=clock,
        attract_every_s=0,
    )
    runtime.remote._clock = clock
    runtime.now = lambda: dt.datetime(2026, 12, 7, 10, 0)  # on duty
    runtime.calls.audio = CallMedia(source="mic.wav", sink="heard.wav")  # a station with calls
    frames: list[Frame] = []
    runtime.on_frame = frames.append
    return runtime, speech, frames, clock


def answer(runtime: Runtime, clock: Clock, command_id: str, **args: Any) -> str:
    """What the agent does with a help_reply command, then the kiosk's next pumps."""
    runtime.journal.add_command(
        command_id, "help_reply", args, target="ui", deadline=time.time() + 120
    )
    clock.t += 1
    runtime.pump()  # the remote takes it up
    runtime.pump()  # the runtime shows it
    record = runtime.journal.command(command_id)
    assert record is not None
    return f"{record.state} {record.detail.get('shown', record.detail.get('reason'))}"


def test_an_answer_in_a_session_is_shown_spoken_and_goes_with_the_session(
    rig: tuple[Runtime, SpokenLog, list[Frame], Clock],
) -> None:
    runtime, speech, frames, clock = rig
    runtime.post(Intent("start"))
    runtime.post(Intent("help"))
    runtime.pump()
    assert frames[-1].help_shown and not frames[-1].help.after_hours
    assert (
        "已通知工作人员。工作人员可以马上在这台机器上与您通话，请留在这里。"
        "您也可以拨打服务电话 零 五 三 三，一 二 三 四 五。"
    ) in speech.texts
    assert frames[-1].help.call == "now" and not frames[-1].help.slip_offered
    runtime.post(Intent("close_help"))  # the resident closed it before the answer came
    runtime.pump()
    assert answer(runtime, clock, "c1", kind="on_the_way", minutes=5) == "succeeded session"
    frame = frames[-1]
    assert frame.help_shown  # opened again for the answer
    assert (frame.help.reply_key, frame.help.reply_params) == ("help.reply.on_the_way", {"n": "5"})
    assert speech.texts[-1] == "工作人员正在赶来，大约 5 分钟后到，请稍等。"
    runtime.post(Intent("cancel"))  # the session ends: the next resident is not told
    runtime.pump()
    assert not frames[-1].help_shown and frames[-1].help.reply_key == ""
    # an answer the station cannot take is failed, not shown
    assert answer(runtime, clock, "c2", kind="call") == "failed bad_args"
    assert not frames[-1].help_shown


def test_an_answer_on_the_home_screen_stays_a_while(
    rig: tuple[Runtime, SpokenLog, list[Frame], Clock],
) -> None:
    runtime, speech, frames, clock = rig
    runtime.pump()
    assert answer(runtime, clock, "c1", kind="call", number="0533-12345") == "succeeded home"
    assert frames[-1].help_shown and frames[-1].help.reply_key == "help.reply.call"
    assert speech.texts[-1] == "请拨打 零 五 三 三，一 二 三 四 五 联系工作人员。"
    clock.t += helpdesk.REPLY_ON_HOME_S - 5
    runtime.pump()
    assert frames[-1].help_shown
    clock.t += 10
    runtime.pump()
    assert not frames[-1].help_shown and frames[-1].help.reply_key == ""
    # a new session under it (a card laid on the reader) drops it at once
    assert answer(runtime, clock, "c2", kind="text", text="[b]马上到[/b]") == "succeeded home"
    assert speech.texts[-1] == "工作人员留言：[b]马上到[/b]"
    runtime.post(Intent("start"))
    runtime.pump()
    runtime.pump()
    assert not frames[-1].help_shown and frames[-1].help.reply_key == ""


def test_after_hours_the_prompt_names_the_hotline_and_the_hours(
    rig: tuple[Runtime, SpokenLog, list[Frame], Clock],
) -> None:
    runtime, speech, frames, _ = rig
    runtime.now = lambda: dt.datetime(2026, 12, 7, 8, 29)  # a minute before the duty hours
    runtime.post(Intent("help"))
    runtime.pump()
    assert frames[-1].help.after_hours
    assert speech.texts[-1] == (
        "现在不是工作时间，无人值守。您的求助已记录。"
        "如需帮助，请拨打服务热线 一 二 三 四 五。工作时间为每天8:30至17:30。"
    )
    [event] = [e for e in runtime.journal.pending_events() if e.type == "help"]
    assert event.payload["screen"] == "idle"  # still sent: the console shows it
    runtime.now = lambda: dt.datetime(2026, 12, 7, 8, 30)
    runtime.post(Intent("help"))
    runtime.pump()
    assert not frames[-1].help.after_hours


def test_phone_numbers_are_read_digit_by_digit() -> None:
    assert spoken_number("12345", "zh") == "一 二 三 四 五"
    assert spoken_number("12345", "en") == "1 2 3 4 5"
    assert spoken_number("0533-12345", "zh") == "零 五 三 三，一 二 三 四 五"
    assert spoken_number("+86 533 1234", "en") == "plus 8 6, 5 3 3, 1 2 3 4"


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_station_without_call_audio_says_so_and_offers_the_slip_at_any_hour(
    rig: tuple[Runtime, SpokenLog, list[Frame], Clock], lang: str
) -> None:
    runtime, speech, frames, _ = rig
    runtime.calls.audio = None  # no [call] devices: no microphone or speaker for calls
    if lang == "en":
        runtime.post(Intent("lang", "en"))
    runtime.post(Intent("help"))
    runtime.pump()
    state = frames[-1].help
    assert not state.after_hours and state.call == "none" and state.slip_offered
    body = help_texts(state, runtime.catalog, lang, runtime.tr)["body"]
    said = speech.texts[-1]
    if lang == "zh":
        assert "本机不能通话" in body and "打印热线小票" in body
        assert said.startswith("已通知工作人员。本机不能通话。"), said
        assert "马上" not in body + said
    else:
        assert "Calls are not available at this station" in body
        assert said.startswith("Staff have been notified. Calls are not available"), said
        assert "call you back" not in body + said
    # after hours too: the slip, and the same honesty about calls
    runtime.now = lambda: dt.datetime(2026, 12, 7, 22, 0)
    runtime.post(Intent("help"))
    runtime.pump()
    state = frames[-1].help
    assert state.after_hours and state.call == "none" and state.slip_offered
    body = help_texts(state, runtime.catalog, lang, runtime.tr)["body"]
    assert ("本机不能通话" if lang == "zh" else "Calls are not available") in body
    assert ("本机不能通话" if lang == "zh" else "Calls are not available") in speech.texts[-1]


def test_with_call_audio_on_duty_staff_can_call_back_and_after_hours_nothing_is_promised(
    rig: tuple[Runtime, SpokenLog, list[Frame], Clock],
) -> None:
    runtime, speech, frames, _ = rig
    runtime.post(Intent("help"))
    runtime.pump()
    state = frames[-1].help
    assert state.call == "now" and not state.slip_offered
    body = help_texts(state, runtime.catalog, "en", runtime.tr)["body"]
    assert "can call you back on this machine now" in body
    runtime.now = lambda: dt.datetime(2026, 12, 7, 22, 0)  # nobody on duty to call
    runtime.post(Intent("help"))
    runtime.pump()
    state = frames[-1].help
    assert state.call == "" and state.after_hours and state.slip_offered
    body = help_texts(state, runtime.catalog, "zh", runtime.tr)["body"]
    assert "通话" not in body and "通话" not in speech.texts[-1]
