"""The synthesis process: pyttsx3 (espeak-ng) turns text into WAV files, nothing else.

pyttsx3's espeak driver plays audio by shelling out to ``aplay`` inside its synthesis callback, so
``say()`` blocks and cannot be stopped; it keeps only the last of several queued texts; its
external-loop mode raises on Linux; ``init()`` caches one engine per process. So this process
only ever calls ``save_to_file`` followed by ``runAndWait`` — one file per call — and writes
through a temporary file and an atomic rename. The kiosk plays the files itself.

Requests and answers are tuples on two multiprocessing queues:
``(request_id, text, voice, rate, volume, out_path)`` → ``(request_id, ok, detail)``.
"""

from __future__ import annotations

import contextlib
import io
import os
from multiprocessing.queues import Queue
from typing import Any

Request = tuple[int, str, str, int, float, str]
Answer = tuple[int, bool, str]


def resolve_voice(engine: Any, language: str) -> str:
    """The engine's voice id for an espeak-ng language such as ``cmn-latn-pinyin`` or ``en-us``."""
    wanted = language.lower()
    fallback = ""
    for voice in engine.getProperty("voices"):
        langs = [str(x).lower() for x in (voice.languages or [])]
        if wanted in langs or str(voice.id).lower().endswith("/" + wanted):
            return str(voice.id)
        if not fallback and any(x.split("-")[0] == wanted.split("-")[0] for x in langs):
            fallback = str(voice.id)
    if fallback:
        return fallback
    raise LookupError(f"espeak-ng has no voice for {language}")


def serve(requests: Queue[Request | None], answers: Queue[Answer], delay_s: float = 0.0) -> None:
    """The loop of the synthesis process; ``None`` ends it. ``delay_s`` makes a deliberately
    slow engine, for the tests that show speech never holds the screen up."""
    import time

    import pyttsx3

    engine = pyttsx3.init("espeak")
    voices: dict[str, str] = {}
    while True:
        request = requests.get()
        if request is None:
            return
        request_id, text, language, rate, volume, out_path = request
        if delay_s:
            time.sleep(delay_s)
        tmp = f"{out_path}.{os.getpid()}.tmp.wav"
        try:
            if language not in voices:
                voices[language] = resolve_voice(engine, language)
            engine.setProperty("voice", voices[language])
            engine.setProperty("rate", rate)
            engine.setProperty("volume", volume)
            # now and then espeak's driver returns from runAndWait with nothing written (seen
            # here about once in a few hundred files): try again before calling it a failure
            for _attempt in range(3):
                with contextlib.redirect_stdout(io.StringIO()):  # pyttsx3 prints "Audio saved"
                    engine.save_to_file(text, tmp)
                    engine.runAndWait()
                if os.path.exists(tmp) and os.path.getsize(tmp) > 44:
                    break
            else:
                raise RuntimeError("the engine wrote no audio")
            os.replace(tmp, out_path)
            answers.put((request_id, True, out_path))
        except Exception as err:  # reported to the kiosk, which logs it once
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            answers.put((request_id, False, f"{type(err).__name__}: {err}"))
