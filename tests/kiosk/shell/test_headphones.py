"""Headphones (issue 23): plugged in, the voice goes to the headphone jack's device only and the
resident's masked ID number may be read; unplugged, it goes back to the loudspeaker and is not.

Real peers: the real speech driver (pyttsx3 + espeak-ng, played by aplay) into two ALSA devices
of ALSA's own ``file`` plugin (each writes what it is played to a file: the loudspeaker's and the
headphones'), a simulated jack (a file the :class:`JackWatch` polls, as it polls ALSA's
"Headphone Jack" control on a station), and the shell's runtime on the SAM reader's simulator.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.speech.voice import Pyttsx3Speech
from flows.synthetic import DEMO_RESIDENT
from kiosk.present import spoken_number
from kiosk.shell.jack import JackWatch, file_jack
from kiosk.shell.runtime import Intent, Runtime
from sandbox.cups import CupsSandbox

from .station import pump_until, running_station

ASOUNDRC = """
pcm.speaker {{ type file; slave.pcm "null"; file "{speaker}"; format "raw" }}
pcm.phones {{ type file; slave.pcm "null"; file "{phones}"; format "raw" }}
"""


@pytest.fixture
def sinks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """Two ALSA devices, ``speaker`` and ``phones``, in the players' own ALSA configuration."""
    home = tmp_path / "home"
    home.mkdir()
    speaker, phones = tmp_path / "speaker.raw", tmp_path / "phones.raw"
    (home / ".asoundrc").write_text(ASOUNDRC.format(speaker=speaker, phones=phones))
    monkeypatch.setenv("HOME", str(home))  # aplay reads ~/.asoundrc
    return speaker, phones


@pytest.fixture
def speech(tmp_path: Path, sinks: tuple[Path, Path]) -> Iterator[Pyttsx3Speech]:
    s = Pyttsx3Speech(
        tmp_path / "voice",
        player="aplay",
        player_args=("-D", "speaker"),
        headphone_args=("-D", "phones"),
    )
    yield s
    s.close()


def played(path: Path) -> tuple[int, int] | None:
    """When and how much a device was last played to (the plugin writes its file anew each
    time a player opens it); None: never."""
    if not path.exists():
        return None
    st = path.stat()
    return st.st_mtime_ns, st.st_size


def summary(runtime: Runtime, speech: Pyttsx3Speech) -> str:
    """The help key's summary of the page, as the UI asks for it; what the voice was given."""
    before = len(runtime.captions.history)
    runtime.post(Intent("say", ("focus.summary", {"about": "", "items": "3", "buttons": "6"})))
    pump_until(runtime, lambda: len(runtime.captions.history) > before)
    said = runtime.captions.history[-1]
    assert said.key.startswith("focus.summary")
    assert speech.wait_idle(60)
    return said.spoken


def field(runtime: Runtime, speech: Pyttsx3Speech, label: str, value: str) -> tuple[str, str]:
    """A field of the preview's reading view, as the keys' focus asks for it: (shown, spoken)."""
    before = len(runtime.captions.history)
    params = {"role": "字段", "label": label, "value": value, "n": "6", "total": "24"}
    runtime.post(Intent("say", ("focus.field", params)))
    pump_until(runtime, lambda: len(runtime.captions.history) > before)
    said = runtime.captions.history[-1]
    assert said.key == "focus.field"
    assert speech.wait_idle(60)
    return said.shown, said.spoken


def test_headphones_take_the_voice_and_only_they_hear_the_id_number(
    tmp_path: Path, cups: CupsSandbox, sinks: tuple[Path, Path], speech: Pyttsx3Speech
) -> None:
    speaker, phones = sinks
    jack = tmp_path / "jack"
    jack.write_text("0")
    stop = threading.Event()
    with running_station(tmp_path, cups, speech=speech) as station:
        runtime = station.runtime
        watch = JackWatch(
            f"file:{jack}", lambda on: runtime.post(Intent("headphones", on)), poll_s=0.05
        )
        watch.start(stop)
        runtime.post(Intent("start"))
        pump_until(runtime, lambda: runtime.session.state == "identify")
        station.sam.insert(DEMO_RESIDENT)
        pump_until(runtime, lambda: runtime.session.state == "choose")
        masked = runtime.session.view.masked_id_number
        tail = spoken_number(DEMO_RESIDENT.id_number[-4:], "zh")
        assert masked.endswith(DEMO_RESIDENT.id_number[-4:])

        # no headphones: the loudspeaker says the page, never the number
        said = summary(runtime, speech)
        assert tail not in said and "身份证" not in said
        assert played(speaker) is not None and played(phones) is None
        # nor a document's name and number field: "your name", "your ID number" in their place
        name = runtime.session.view.masked_name
        shown, spoken = field(runtime, speech, "姓名", name)
        assert (
            shown
            == spoken
            == "字段：姓名，您的姓名（为保护隐私不外放，插入耳机可收听），第 6 项，共 24 项"
        )
        shown, spoken = field(runtime, speech, "公民身份号码", masked)
        assert "您的身份证号码" in spoken and tail not in spoken and masked not in shown
        assert field(runtime, speech, "参保状态", "正常参保")[1].startswith(
            "字段：参保状态，正常参保，"
        )
        # nor the address the card gave (a residence certificate prints it): "your details"
        address = DEMO_RESIDENT.address
        shown, spoken = field(runtime, speech, "住址", address)
        assert "您的个人信息" in spoken and address not in spoken + shown
        assert played(phones) is None

        # headphones in: said so in them, and from now on only in them, the number too
        jack.write_text("1")
        pump_until(runtime, lambda: runtime.phones.plugged)
        assert runtime.captions.history[-1].key == "focus.headphones_on"
        assert speech.wait_idle(60)
        loud, private = played(speaker), played(phones)
        assert private is not None and private[1] > 0
        said = summary(runtime, speech)
        assert runtime.captions.history[-1].key == "focus.summary_who"
        assert tail in said and DEMO_RESIDENT.id_number not in said
        assert played(phones) != private and played(speaker) == loud
        # the document's fields read as the screen shows them: the number digit by digit
        shown, spoken = field(runtime, speech, "公民身份号码", masked)
        assert masked in shown and tail in spoken and "*" not in spoken
        shown, spoken = field(runtime, speech, "姓名", name)
        assert shown.startswith(f"字段：姓名，{name}，") and spoken.startswith(
            f"字段：姓名，{name[0]}，"
        )
        assert address in field(runtime, speech, "住址", address)[0]
        assert played(speaker) == loud

        # unplugged: the loudspeaker again, and the number is not read there
        jack.write_text("0")
        pump_until(runtime, lambda: not runtime.phones.plugged)
        assert speech.wait_idle(60)
        private = played(phones)
        said = summary(runtime, speech)
        assert tail not in said
        assert played(speaker) != loud and played(phones) == private
    stop.set()
    for line in runtime.captions.history:  # the name and the whole number are never said
        assert DEMO_RESIDENT.name not in line.spoken + line.shown
        assert DEMO_RESIDENT.id_number not in line.spoken + line.shown


def test_the_jack_is_read_from_a_file_or_not_at_all(tmp_path: Path) -> None:
    jack = tmp_path / "jack"
    assert file_jack(jack) is False  # no file: nothing plugged in
    jack.write_text("1\n")
    assert file_jack(jack) is True
    seen: list[bool] = []
    watch = JackWatch(f"file:{jack}", seen.append)
    watch.poll()
    watch.poll()
    jack.write_text("0")
    watch.poll()
    assert seen == [True, False]
    JackWatch("key", seen.append).poll()  # a key says it: the watcher reads nothing
    assert seen == [True, False]
