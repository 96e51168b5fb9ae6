"""A stand-in for a sound card in tests: "plays" a WAV by taking as long as it lasts."""

import sys
import time
import wave

with wave.open(sys.argv[-1], "rb") as w:
    seconds = w.getnframes() / w.getframerate()
time.sleep(seconds)
