"""The technician's end of a call in the shell's call tests: a real aiortc peer, as a browser
would be, with a looping tone for a microphone, the data channel's keep-alive pings, and the
tasks that read what it receives. test_call_video.py and test_call_turn.py add what each
checks (a camera and the station's picture; the station's sound through a relay)."""

from __future__ import annotations

import asyncio
import time
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection
from aiortc.contrib.media import MediaPlayer

from fleet.protocol.call import PING

RATE = 48000


def tone(path: Path, hz: float, seconds: float = 2.0) -> Path:
    """A mono 16-bit tone of a whole number of periods (it loops without a click)."""
    t = np.arange(int(RATE * seconds)) / RATE
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes((8000 * np.sin(2 * np.pi * hz * t)).astype("<i2").tobytes())
    return path


async def until(cond: Callable[[], Any], timeout: float, what: str) -> Any:
    """The value of ``cond`` once it is true, polled on the loop; fails after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not (value := cond()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)
    return value


class StaffPeer:
    """The peer and its microphone; a subclass adds its tracks, then :meth:`open_channel`."""

    def __init__(self, tmp_path: Path, hz: float, ice: list[RTCIceServer] | None = None) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=ice) if ice else None)
        self.mic = MediaPlayer(str(tone(tmp_path / "staff.wav", hz)), loop=True)
        assert self.mic.audio is not None
        self.pc.addTrack(self.mic.audio)
        self.tasks: list[asyncio.Task[None]] = []

    def open_channel(self) -> None:
        self.channel = self.pc.createDataChannel("call")

    async def ping(self) -> None:
        """What the console's page does: a ping every half second keeps the call alive."""
        while True:
            if self.channel.readyState == "open":
                self.channel.send(PING)
            await asyncio.sleep(0.5)

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await self.pc.close()
