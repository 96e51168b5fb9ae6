"""The speech port on pyttsx3 + espeak-ng: never blocks the caller, silences at once.

``speak`` returns at once: a controller thread of its own takes the newest request, gets its WAV
from the cache (keyed by text, voice, rate and volume) or from the synthesis process
(:mod:`drivers.speech.synth`), and plays it with :class:`drivers.speech.player.Player`. A newer
request or ``stop`` supersedes what is queued and kills the player. No sound card or a broken
engine is logged once, reported in health, and the kiosk carries on.

Mandarin uses espeak-ng's ``cmn-latn-pinyin`` voice (the plain ``cmn`` voice reads many
characters as English); elder mode speaks slower.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import queue
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from drivers.speech import synth
from drivers.speech.player import Player, wav_seconds
from drivers.speech.player import player_args as player_args_of
from flows.errors import DeviceError
from flows.models import DeviceHealth, DeviceState

log = logging.getLogger("kiosk.drivers.speech")

VOICES = {"zh": "cmn-latn-pinyin", "en": "en-us"}
RATES_WPM = {"zh": 165, "en": 165}


class SpeechEngineError(DeviceError):
    translation_key = "error.speech"


class Pyttsx3Speech:
    """Implements :class:`flows.ports.Speech`."""

    def __init__(
        self,
        cache_dir: Path,
        *,
        name: str = "speech",
        player: str = "aplay",
        player_args: tuple[str, ...] = (),
        headphone_args: tuple[str, ...] = (),
        rate_wpm: dict[str, int] | None = None,
        elder_rate_factor: float = 0.8,
        volume: float = 1.0,
        synth_timeout_s: float = 20.0,
        synth_delay_s: float = 0.0,
    ) -> None:
        self.name = name
        self.cache_dir = Path(cache_dir)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.rates = dict(RATES_WPM if rate_wpm is None else rate_wpm)
        self.elder_rate_factor = elder_rate_factor
        self.volume = volume
        self.synth_timeout_s = synth_timeout_s
        self.synth_delay_s = synth_delay_s
        self.player = Player(player, player_args_of(player, player_args))
        self.loudspeaker = self.player
        # the headphone jack's own ALSA device: the player to it, when there is one
        self.headphones = (
            Player(player, player_args_of(player, headphone_args)) if headphone_args else None
        )
        self.last_wav: Path | None = None
        self.recent: deque[tuple[str, str, Path]] = deque(maxlen=20)  # (text hash, lang, wav)
        self.synth_count = 0
        self._faults: dict[str, str] = {}
        self._logged: set[str] = set()
        self._generation = 0
        self._busy = False
        self._work: queue.Queue[tuple[int, str, str, bool] | None] = queue.Queue()
        self._prewarm: deque[tuple[str, str, bool]] = deque()
        self._ctx = multiprocessing.get_context("spawn")
        self._requests: Any = None
        self._answers: Any = None
        self._proc: Any = None
        self._request_id = 0
        self._closed = False
        self._thread = threading.Thread(target=self._control, name="speech", daemon=True)
        self._thread.start()

    # --- the port ------------------------------------------------------------------------------

    def speak(self, text: str, *, lang: str, elder: bool = False) -> None:
        if self._closed or not text:
            return
        self._generation += 1
        self.player.stop()
        self._work.put((self._generation, text, lang, elder))

    def stop(self) -> None:
        self._generation += 1
        self.player.stop()

    def busy(self) -> bool:
        return self._busy or self.player.is_playing or not self._work.empty()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.stop()
        self._work.put(None)
        self._thread.join(timeout=5)
        self._end_synth()

    def health(self) -> DeviceHealth:
        if self._faults:
            return DeviceHealth(
                self.name,
                "speech",
                DeviceState.FAULT,
                tuple(sorted(self._faults)),
                {"detail": "; ".join(self._faults.values())[:200]},
            )
        return DeviceHealth(self.name, "speech", DeviceState.OK)

    # --- extras --------------------------------------------------------------------------------

    def prewarm(self, items: list[tuple[str, str]], elder: bool = False) -> None:
        """Synthesise prompts into the cache in the background, when nothing is being said."""
        self._prewarm.extend((text, lang, elder) for text, lang in items)
        self._work.put((-1, "", "", False))  # wake the controller

    def describe(self, lang: str, *, elder: bool = False) -> dict[str, object]:
        """Engine, voice and rate, for technicians (``kiosk say``)."""
        voice, rate = self._params(lang, elder)
        return {
            "engine": "pyttsx3 + espeak-ng",
            "voice": voice,
            "rate_wpm": rate,
            "player": self.player.command,
        }

    def wav_for(self, text: str, lang: str, *, elder: bool = False) -> Path:
        """The cached WAV of a prompt, synthesising it now if needed (blocks: for tools/tests)."""
        return self._wav(text, lang, elder)

    def wait_idle(self, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._work.empty() and not self._busy and not self.player.is_playing:
                return True
            time.sleep(0.02)
        return False

    # --- the controller thread -----------------------------------------------------------------

    def _control(self) -> None:
        while True:
            item = self._work.get()
            if item is None:
                return
            generation, text, lang, elder = item
            if generation == -1 or generation != self._generation:
                self._do_prewarm()
                continue
            self._busy = True
            try:
                self._say(generation, text, lang, elder)
            finally:
                self._busy = False
            self._do_prewarm()

    def _say(self, generation: int, text: str, lang: str, elder: bool) -> None:
        try:
            path = self._wav(text, lang, elder)
        except SpeechEngineError as err:
            self._fault("engine_failed", str(err))
            return
        self._faults.pop("engine_failed", None)
        if generation != self._generation:
            return  # superseded while synthesising
        self.last_wav = path
        self.recent.append((hashlib.sha256(text.encode()).hexdigest()[:12], lang, path))
        try:
            proc = self.player.play(path)
        except OSError as err:
            self._fault("no_player", f"{self.player.command}: {err.strerror}")
            return
        code, stderr = self.player.wait(proc, wav_seconds(path) * 1.5 + 2.0)
        if code != 0 and generation == self._generation:
            first = stderr.splitlines()[-1] if stderr else f"exit {code}"
            self._fault("no_audio_device", first)
        elif code == 0:
            self._faults.pop("no_audio_device", None)

    def _do_prewarm(self) -> None:
        while self._prewarm and self._work.empty():
            text, lang, elder = self._prewarm.popleft()
            try:
                self._wav(text, lang, elder)
            except SpeechEngineError as err:
                self._fault("engine_failed", str(err))
                return

    def route(self, headphones: bool) -> bool:
        """Speak into the headphone jack's device only, or the loudspeaker's; whatever is being
        said on the other is stopped at once (a line never continues on the loudspeaker)."""
        target = self.headphones if headphones else self.loudspeaker
        if target is None:
            return False
        if target is not self.player:
            self.stop()
            self.player = target
            log.info("speech goes to the %s", "headphones" if headphones else "loudspeaker")
        return True

    def set_volume(self, level: float) -> None:
        """Loudness of what is spoken from now on; prompts are cached per loudness."""
        self.volume = round(min(1.0, max(0.0, level)), 2)

    # --- synthesis -----------------------------------------------------------------------------

    def _params(self, lang: str, elder: bool) -> tuple[str, int]:
        voice = VOICES.get(lang, VOICES["en"])
        rate = self.rates.get(lang, 160)
        if elder:
            rate = int(rate * self.elder_rate_factor)
        return voice, rate

    def _wav(self, text: str, lang: str, elder: bool) -> Path:
        voice, rate = self._params(lang, elder)
        key = hashlib.sha256(f"{voice}|{rate}|{self.volume}|{text}".encode()).hexdigest()
        path = self.cache_dir / f"{key[:32]}.wav"
        if path.exists():
            return path
        self._synthesise(text, voice, rate, path)
        return path

    def _synthesise(self, text: str, voice: str, rate: int, path: Path) -> None:
        if self._proc is None or not self._proc.is_alive():
            self._start_synth()
        self._request_id += 1
        request_id = self._request_id
        self._requests.put((request_id, text, voice, rate, self.volume, str(path)))
        deadline = time.monotonic() + self.synth_timeout_s
        while True:
            try:
                answer = self._answers.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                self._end_synth()  # a stuck engine is replaced at the next request
                raise SpeechEngineError("speech synthesis timed out") from None
            if answer[0] != request_id:
                continue  # a late answer to an abandoned request
            if not answer[1]:
                raise SpeechEngineError(answer[2])
            self.synth_count += 1
            return

    def _start_synth(self) -> None:
        self._requests = self._ctx.Queue()
        self._answers = self._ctx.Queue()
        self._proc = self._ctx.Process(
            target=synth.serve,
            args=(self._requests, self._answers, self.synth_delay_s),
            name="speech-synth",
            daemon=True,
        )
        self._proc.start()

    def _end_synth(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.pid is None:  # none, or closed while it was being started
            return
        try:
            self._requests.put(None)
            proc.join(timeout=2)
        finally:
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=2)
            for q in (self._requests, self._answers):
                q.close()
                q.join_thread()

    def _fault(self, reason: str, detail: str) -> None:
        self._faults[reason] = detail
        if reason not in self._logged:
            self._logged.add(reason)
            log.error("speech: %s (%s); the kiosk carries on without it", reason, detail)
