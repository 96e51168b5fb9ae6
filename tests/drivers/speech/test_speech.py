"""Speech: real espeak-ng synthesis through pyttsx3 in its own process, playback we can stop."""

from __future__ import annotations

import array
import os
import sys
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.speech.voice import Pyttsx3Speech
from flows.models import DeviceState

HERE = Path(__file__).resolve().parent


def rms(path: Path) -> float:
    with wave.open(str(path), "rb") as w:
        assert w.getsampwidth() == 2
        samples = array.array("h", w.readframes(w.getnframes()))
    return (sum(s * s for s in samples) / max(1, len(samples))) ** 0.5


def seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / w.getframerate()


@pytest.fixture
def speech(tmp_path: Path) -> Iterator[Pyttsx3Speech]:
    s = Pyttsx3Speech(
        tmp_path / "cache", player=sys.executable, player_args=(str(HERE / "realtime_player.py"),)
    )
    yield s
    s.close()


@pytest.mark.parametrize(
    ("text", "lang", "low", "high"),
    [
        ("请将身份证平放在读卡区。", "zh", 1.5, 6.0),
        ("Please lay your ID card on the reader.", "en", 1.2, 5.0),
    ],
)
def test_prompts_synthesise_to_audible_wav_of_plausible_length(
    speech: Pyttsx3Speech, text: str, lang: str, low: float, high: float
) -> None:
    path = speech.wav_for(text, lang)
    assert rms(path) > 500  # not silence
    assert low < seconds(path) < high


def test_elder_mode_speaks_slower(speech: Pyttsx3Speech) -> None:
    text = "请选择要办理的事项。"
    assert seconds(speech.wav_for(text, "zh", elder=True)) > seconds(speech.wav_for(text, "zh"))


def test_speak_never_blocks_and_stop_kills_the_player(speech: Pyttsx3Speech) -> None:
    t0 = time.perf_counter()
    speech.speak("欢迎使用二十四小时自助服务，请点击开始办理。", lang="zh")
    assert time.perf_counter() - t0 < 0.05
    deadline = time.monotonic() + 20
    while not speech.player.is_playing:
        assert time.monotonic() < deadline, "playback never started"
        time.sleep(0.02)
    pid = speech.player.pid
    assert pid is not None
    speech.stop()
    assert not speech.player.is_playing
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # reaped: the player process is gone
    assert speech.health().state is DeviceState.OK


def test_cached_prompts_are_not_synthesised_again(speech: Pyttsx3Speech) -> None:
    speech.wav_for("请取走您的材料。", "zh")
    count = speech.synth_count
    first = speech.wav_for("请取走您的材料。", "zh")
    assert speech.synth_count == count
    assert speech.wav_for("请取走您的材料。", "en") != first  # voice is part of the key


def test_a_broken_player_is_a_fault_not_a_crash(tmp_path: Path) -> None:
    s = Pyttsx3Speech(tmp_path / "c", player="/nonexistent/player")
    try:
        s.speak("你好", lang="zh")
        assert s.wait_idle(20)
        health = s.health()
        assert health.state is DeviceState.FAULT and "no_player" in health.reasons
        s.speak("你好", lang="zh")  # still no exception
    finally:
        s.close()


def test_no_sound_card_is_reported(tmp_path: Path) -> None:
    s = Pyttsx3Speech(tmp_path / "c", player="false")
    try:
        s.speak("你好", lang="zh")
        assert s.wait_idle(20)
        assert "no_audio_device" in s.health().reasons
    finally:
        s.close()


def test_busy_while_speaking(speech: Pyttsx3Speech) -> None:
    assert not speech.busy()
    speech.speak("请稍候，正在为您查询。", lang="zh")
    assert speech.busy()
    assert speech.wait_idle(30)
    assert not speech.busy()


def test_a_slow_engine_never_holds_the_caller_up(tmp_path: Path) -> None:
    s = Pyttsx3Speech(
        tmp_path / "c",
        player=sys.executable,
        player_args=(str(HERE / "realtime_player.py"),),
        synth_delay_s=1.5,
    )
    try:
        worst = 0.0
        for text in ("请选择要办理的事项。", "请核对内容。", "正在打印，请稍候。"):
            t0 = time.perf_counter()
            s.speak(text, lang="zh")  # each screen change supersedes the prompt before it
            worst = max(worst, time.perf_counter() - t0)
        assert worst < 0.05
        assert s.wait_idle(30)
        assert s.synth_count <= 2  # superseded prompts are not all synthesised
        assert s.last_wav is not None and s.last_wav.exists()
    finally:
        s.close()
