"""Every prompt, error and service text the kiosk speaks, synthesised in both languages."""

from __future__ import annotations

import array
import re
import wave
from pathlib import Path

import pytest

from drivers.speech.voice import Pyttsx3Speech
from flows.catalog import load_catalog
from kiosk.i18n import Translator
from kiosk.present import spoken_texts
from kiosk.shell.catalog_watch import DEMO_CATALOG


def measure(path: Path) -> tuple[float, float]:
    with wave.open(str(path), "rb") as w:
        samples = array.array("h", w.readframes(w.getnframes()))
        seconds = w.getnframes() / w.getframerate()
    rms = (sum(s * s for s in samples) / max(1, len(samples))) ** 0.5
    return seconds, rms


@pytest.mark.slow
def test_every_spoken_text_is_audible_and_of_plausible_length(tmp_path: Path) -> None:
    texts = spoken_texts(load_catalog(DEMO_CATALOG), Translator(strict=True))
    assert len(texts) > 100 and {lang for _, lang in texts} == {"zh", "en"}
    speech = Pyttsx3Speech(tmp_path / "cache")
    problems = []
    try:
        for text, lang in texts:
            seconds, rms = measure(speech.wav_for(text, lang))
            if lang == "zh":
                units = len(re.findall(r"[\u4e00-\u9fff]", text)) + len(re.findall(r"\d", text))
                low, high = 0.10 * units, 0.45 * units + 2.0
            else:
                units = len(text.split())
                low, high = 0.15 * units, 0.8 * units + 1.5
            if rms < 300 or not low <= seconds <= high:
                problems.append(f"{lang} {text!r}: {seconds:.2f}s rms {rms:.0f}")
    finally:
        speech.close()
    assert not problems, problems
