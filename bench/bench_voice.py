"""Voice figures, with the real synthesis process and a real player subprocess.

- ``voice.stop_ms``: stop request → the player process is gone (silence), median ms. Goal < 100.
- ``voice.cached_first_sample_ms``: speak request of a cached prompt → the player has read the
  first audio sample of the file, median ms. Goal < 150.
- ``voice.live_to_cached``: the same measurement for a prompt not yet cached (live synthesis)
  over the cached one. Goal ≥ 10 (the cache is worth keeping).

The "first sample" player is ``sh`` reading one byte past the WAV header with ``dd`` and writing
the time; the stop measurement uses ``sh -c "exec sleep 30"`` as a player that runs until killed.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from drivers.speech.voice import Pyttsx3Speech

PROMPT = "欢迎使用二十四小时自助服务，请点击开始办理。"


def first_sample_ms(speech: Pyttsx3Speech, mark: Path, text: str) -> float:
    mark.unlink(missing_ok=True)
    t0 = time.time()
    speech.speak(text, lang="zh")
    deadline = time.monotonic() + 30
    while not mark.exists() or not mark.read_text().strip():
        if time.monotonic() > deadline:
            raise TimeoutError("the player never started")
        time.sleep(0.001)
    return (float(mark.read_text()) - t0) * 1000


def run(rounds: int = 10) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        mark = root / "first-sample"
        script = f'dd if="$0" bs=1 skip=44 count=1 of=/dev/null status=none; date +%s.%N > "{mark}"'
        speech = Pyttsx3Speech(root / "cache", player="sh", player_args=("-c", script))
        try:
            speech.wav_for("热身", "zh")  # the synthesis process is up before measuring
            cached, live = [], []
            for i in range(rounds):
                text = f"{PROMPT}第{i}次。"
                live.append(first_sample_ms(speech, mark, text))  # not in the cache yet
                speech.wait_idle(10)
                cached.append(first_sample_ms(speech, mark, text))  # now it is
                speech.wait_idle(10)
        finally:
            speech.close()
        # sh ignores the WAV path it is given ($0) and sleeps until killed.
        stopper = Pyttsx3Speech(root / "cache", player="sh", player_args=("-c", "exec sleep 30"))
        stops = []
        try:
            for _ in range(rounds):
                stopper.speak(PROMPT, lang="zh")
                deadline = time.monotonic() + 30
                while not stopper.player.is_playing:
                    if time.monotonic() > deadline:
                        raise TimeoutError("playback never started")
                    time.sleep(0.001)
                pid = stopper.player.pid
                t0 = time.perf_counter()
                stopper.stop()
                while pid is not None and Path(f"/proc/{pid}").exists():
                    time.sleep(0.0005)
                stops.append((time.perf_counter() - t0) * 1000)
        finally:
            stopper.close()
    cached_ms = statistics.median(cached)
    return {
        "voice.stop_ms": round(statistics.median(stops), 2),
        "voice.cached_first_sample_ms": round(cached_ms, 2),
        "voice.live_to_cached": round(statistics.median(live) / cached_ms, 2),
    }
