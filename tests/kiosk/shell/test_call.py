"""The shell's side of a call (kiosk.shell.call) without a network: which ``call_offer``
commands the kiosk refuses at once, and why (the answered case runs end to end in
tests/fleet/console/test_call_browser.py)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from kiosk.shell.call_peer import CallMedia
from kiosk.shell.runtime import Frame, Intent, Runtime

OFFER = {"sdp": "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\n", "staff": "tech"}


@pytest.fixture
def rig(tmp_path: Path, bare_runtime: tuple[Runtime, list[Frame]]) -> tuple[Runtime, list[Frame]]:
    runtime, _frames = bare_runtime
    runtime.calls.audio = CallMedia(source=str(tmp_path / "mic.wav"), sink=str(tmp_path / "o.wav"))
    return bare_runtime


def offer(runtime: Runtime, command_id: str, args: dict[str, Any] | None = None) -> str:
    runtime.journal.add_command(
        command_id, "call_offer", OFFER if args is None else args, target="ui",
        deadline=time.time() + 30,
    )  # fmt: skip
    runtime.remote._next_poll = 0.0
    runtime.pump()
    record = runtime.journal.command(command_id)
    assert record is not None
    return f"{record.state} {record.detail.get('reason', '')}".strip()


def test_refusals_say_why_and_leave_the_session_alone(rig: tuple[Runtime, list[Frame]]) -> None:
    runtime, frames = rig
    runtime.post(Intent("start"))
    runtime.pump()
    assert offer(runtime, "c1") == "failed no_help_request"
    assert offer(runtime, "c2", {"sdp": "not an offer", "staff": "tech"}) == "failed bad_args"
    runtime.calls.audio = None  # no microphone at this station
    runtime.post(Intent("help"))
    runtime.pump()
    assert offer(runtime, "c3") == "failed unsupported"
    assert runtime.session.state == "identify"
    assert all(f.call.phase == "" for f in frames)


def test_a_technician_at_the_station_is_not_called(rig: tuple[Runtime, list[Frame]]) -> None:
    runtime, _frames = rig
    runtime.post(Intent("help"))
    runtime.pump()
    runtime.session.on_open_maintenance()  # the hidden gesture: the PIN pad
    assert runtime.session.state == "unlock"
    assert offer(runtime, "c1") == "failed maintenance"


def call_ends(runtime: Runtime) -> list[dict[str, Any]]:
    return [e.payload for e in runtime.journal.pending_events() if e.type == "call_end"]


def pump_until(runtime: Runtime, cond: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        runtime.pump()
        time.sleep(0.02)


@pytest.mark.parametrize(("answer", "word"), [("call.consent_yes", "yes"), (None, "no")])
def test_a_call_to_be_recorded_asks_first_and_its_end_carries_the_answer(
    rig: tuple[Runtime, list[Frame]], answer: str | None, word: str
) -> None:
    """The offer says the call is recorded: the kiosk asks on the screen and by voice before
    anything (the answer is the resident's; a question never answered is a no), and the call's
    end event carries the answer for the console, which keeps a recording only on a yes."""
    runtime, frames = rig
    said: list[str] = []
    runtime.devices.speech.speak = lambda text, **_kw: said.append(text)  # type: ignore[method-assign]
    runtime.post(Intent("help"))
    runtime.pump()
    args = {**OFFER, "record": True, "record_days": 30}
    assert offer(runtime, "c1", args) in ("claimed", "running", "failed failed")
    call = frames[-1].call
    assert call.phase == "connecting" and call.consent == "ask" and call.record_days == 30
    assert any("要录音" in t and "30天" in t for t in said)  # asked by voice too
    if answer is not None:
        before = len(said)
        runtime.post(Intent(answer))
        runtime.pump()
        assert frames[-1].call.consent == "yes"
        # the failing offer may end the call in the same pump; the answer is still spoken
        assert any("同意录音" in t for t in said[before:])
    # the offer here is no real one: the call fails, and its end is reported with the answer
    pump_until(runtime, lambda: call_ends(runtime))
    [end] = call_ends(runtime)
    assert end["call_id"] == "c1" and end["consent"] == word and end["connected"] is False


def test_a_call_not_to_be_recorded_asks_nothing(rig: tuple[Runtime, list[Frame]]) -> None:
    runtime, frames = rig
    runtime.post(Intent("help"))
    runtime.pump()
    offer(runtime, "c1")
    assert frames[-1].call.consent == ""
    runtime.post(Intent("call.consent_yes"))  # no question: nothing to agree to
    runtime.pump()
    assert frames[-1].call.consent == ""
    pump_until(runtime, lambda: call_ends(runtime))
    assert call_ends(runtime)[0]["consent"] == ""
