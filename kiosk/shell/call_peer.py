"""The kiosk's end of a call: one aiortc peer connection on an asyncio loop of its own.

This is the only module that imports aiortc (the one gateway to the WebRTC stack). It plays the
station's microphone (or, in tests and the bench, a WAV file on a loop) to the staff member and
plays what it receives to the station's speaker (or writes it to a WAV file in tests), through
:class:`VolumeTrack`, which applies the resident's volume. Nothing is recorded unless the sink
configured is a file.

The call's life (:mod:`fleet.protocol.call`): the browser opens the data channel; both sides send
``ping`` every second; ``bye`` ends the call; no message for ``DROP_S`` is a dropped call. The
peer reports its phase (``talking``, ``ended`` with a reason) through ``on_phase``, called on the
peer's own thread: the caller posts it on, it never touches the screen.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.contrib.media import MediaPlayer, MediaRecorder
from av import AudioFrame
from av.frame import Frame
from av.packet import Packet

from fleet.protocol.call import BYE, DROP_S, PING, PING_S

log = logging.getLogger("kiosk.shell.call")

CONNECT_S = 20.0
"""An answered call whose media and data channel are not up by then has failed."""

OnPhase = Callable[[str, str], None]
"""(phase, reason): ``talking``; or ``ended`` with ``resident``, ``staff``, ``dropped``,
``failed``."""


@dataclass(frozen=True, slots=True)
class IceServer:
    urls: tuple[str, ...]
    username: str | None = None
    credential: str | None = None


@dataclass(frozen=True, slots=True)
class CallAudio:
    """Where the call's sound comes from and goes (FFmpeg inputs and outputs, as PyAV names
    them): ``source`` ``"default"`` with ``source_format`` ``"alsa"`` is the
    station's microphone; a ``.wav`` file is played on a loop. ``sink`` likewise."""

    source: str
    sink: str
    source_format: str | None = None
    sink_format: str | None = None
    ice_servers: tuple[IceServer, ...] = field(default_factory=tuple)


class VolumeTrack(MediaStreamTrack):
    """The staff member's voice at the resident's volume (signed 16-bit samples scaled)."""

    kind = "audio"

    def __init__(self, source: MediaStreamTrack, gain: Callable[[], float]) -> None:
        super().__init__()
        self._source = source
        self._gain = gain

    async def recv(self) -> Frame | Packet[Any]:
        frame = await self._source.recv()
        gain = self._gain()
        if gain == 1.0 or not isinstance(frame, AudioFrame) or frame.format.name != "s16":
            return frame
        samples = array.array("h", bytes(frame.planes[0]))
        scaled = array.array("h", (max(-32768, min(32767, int(s * gain))) for s in samples))
        frame.planes[0].update(scaled.tobytes())
        return frame


class CallPeer:
    """One call, from the offer to its end; thread-safe entry points."""

    def __init__(self, audio: CallAudio, on_phase: OnPhase) -> None:
        self.audio = audio
        self.volume = 1.0
        self._on_phase = on_phase
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="call-peer", daemon=True)
        self._pc: RTCPeerConnection | None = None
        self._player: MediaPlayer | None = None
        self._recorder: MediaRecorder | None = None
        self._channel: Any = None
        self._last_heard = 0.0
        self._talking = False
        self._ended = False
        self._watch: asyncio.Task[None] | None = None
        self._ending: asyncio.Future[None] | None = None
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()
        self._loop.close()

    # --- entry points (any thread) ----------------------------------------------------------

    def answer(self, offer_sdp: str, timeout_s: float) -> str:
        """The answer's SDP (with every ICE candidate); raises if none in ``timeout_s``."""
        future = asyncio.run_coroutine_threadsafe(self._answer(offer_sdp), self._loop)
        try:
            return future.result(timeout_s)
        except BaseException:
            self.hang_up("failed")
            raise

    def hang_up(self, reason: str = "resident") -> None:
        """End the call (the staff member is told by ``bye``); idempotent."""
        if self._loop.is_running():
            asyncio.run_coroutine_threadsafe(self._end(reason), self._loop)

    # --- on the loop -------------------------------------------------------------------------

    async def _answer(self, offer_sdp: str) -> str:
        servers = [
            RTCIceServer(list(s.urls), username=s.username, credential=s.credential)
            for s in self.audio.ice_servers
        ]
        pc = RTCPeerConnection(RTCConfiguration(iceServers=servers or None))
        self._pc = pc
        a = self.audio
        looped = a.source.endswith(".wav")
        self._player = MediaPlayer(a.source, format=a.source_format, loop=looped)
        self._recorder = MediaRecorder(a.sink, format=a.sink_format)

        @pc.on("track")
        def _track(track: MediaStreamTrack) -> None:
            if track.kind == "audio" and self._recorder is not None:
                self._recorder.addTrack(VolumeTrack(track, lambda: self.volume))

        @pc.on("datachannel")
        def _channel(channel: Any) -> None:
            self._channel = channel
            self._last_heard = time.monotonic()

            @channel.on("message")  # type: ignore[untyped-decorator]
            def _message(message: object) -> None:
                self._last_heard = time.monotonic()
                if message == BYE:
                    self._ending = asyncio.ensure_future(self._end("staff"))

        @pc.on("connectionstatechange")
        async def _state() -> None:
            if pc.connectionState == "failed":
                await self._end("dropped")

        await pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
        if self._player.audio is not None:
            pc.addTrack(self._player.audio)
        await self._recorder.start()
        await pc.setLocalDescription(await pc.createAnswer())  # gathers every candidate
        self._watch = asyncio.ensure_future(self._watchdog(time.monotonic()))
        return str(pc.localDescription.sdp)

    async def _watchdog(self, started: float) -> None:
        while not self._ended:
            await asyncio.sleep(PING_S / 2)
            now = time.monotonic()
            channel = self._channel
            pc = self._pc
            up = channel is not None and channel.readyState == "open"
            if up and pc is not None and pc.connectionState == "connected" and not self._talking:
                self._talking = True
                self._on_phase("talking", "")
            if up:
                with contextlib.suppress(Exception):
                    channel.send(PING)
                if now - self._last_heard > DROP_S:
                    await self._end("dropped")
            elif self._talking and channel is not None:
                await self._end("dropped")  # the data channel closed under us
            elif not self._talking and now - started > CONNECT_S:
                await self._end("failed")

    async def _end(self, reason: str) -> None:
        if self._ended:
            return
        self._ended = True
        log.info("call ended (%s)", reason)
        channel = self._channel
        if channel is not None and channel.readyState == "open" and reason != "staff":
            with contextlib.suppress(Exception):
                channel.send(BYE)
                await asyncio.sleep(0.1)  # let it leave before the connection closes
        if self._recorder is not None:
            with contextlib.suppress(Exception):
                await self._recorder.stop()
        if self._player is not None and self._player.audio is not None:
            self._player.audio.stop()
        if self._pc is not None:
            with contextlib.suppress(Exception):
                await self._pc.close()
        try:
            self._on_phase("ended", reason)
        finally:
            self._loop.call_soon(self._loop.stop)
