"""The kiosk's end of a call: one aiortc peer connection on an asyncio loop of its own.

This is the only module that imports aiortc (the one gateway to the WebRTC stack). It plays the
station's microphone (or, in tests and the bench, a WAV file on a loop) to the staff member and
plays what it receives to the station's speaker (or writes it to a WAV file in tests), through
:class:`VolumeTrack`, which applies the resident's volume. Nothing is recorded unless the sink
configured is a file.

Video, where the station has a camera (``[call] camera``; a ``.y4m`` file on a loop in tests):
the camera goes to the staff member through :class:`CameraTrack`, which sends black while the
resident has turned it off. The staff member's camera, when the browser sends one, is kept as the
latest :class:`Picture` (RGB, at most :data:`PICTURE_MAX`, :data:`PICTURE_FPS` a second), which
the call screen shows; nothing of it is stored.

The call's life (:mod:`fleet.protocol.call`): the browser opens the data channel; both sides send
``ping`` every second; ``bye`` ends the call; no message for ``DROP_S`` is a dropped call. The
peer reports its phase (``talking``, ``ended`` with a reason) through ``on_phase``, called on the
peer's own thread: the caller posts it on, it never touches the screen.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import fractions
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCIceTransportPolicy,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.contrib.media import MediaPlayer, MediaRecorder
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame, VideoFrame
from av.frame import Frame
from av.packet import Packet

from fleet.protocol.call import BYE, DROP_S, PING, PING_S
from flows.errors import KioskError

log = logging.getLogger("kiosk.shell.call")

CONNECT_S = 20.0
"""An answered call whose media and data channel are not up by then has failed."""

OnPhase = Callable[[str, str], None]
"""(phase, reason): ``talking``; or ``ended`` with ``resident``, ``staff``, ``dropped``,
``failed``; and, without a change of phase, ``camera`` (the station's camera is in the call) and
``picture`` (the staff member's picture has begun to arrive)."""

VIDEO_CLOCK = 90000  # RTP's video clock rate, Hz
PICTURE_MAX = (480, 360)
PICTURE_FPS = 10.0


class CallFailed(KioskError):
    """The call could not be set up (raised by :meth:`CallPeer.answer`); the resident hears
    that the call did not work (``prompt.call_dropped``), never this text."""


@dataclass(frozen=True, slots=True)
class IceServer:
    urls: tuple[str, ...]
    username: str | None = None
    credential: str | None = None


@dataclass(frozen=True, slots=True)
class CallMedia:
    """Where the call's sound comes from and goes, and the station's camera (FFmpeg inputs and
    outputs, as PyAV names them): ``source`` ``"default"`` with ``source_format`` ``"alsa"`` is
    the station's microphone; a ``.wav`` file is played on a loop. ``sink`` likewise. ``camera``
    ``"/dev/video0"`` with ``camera_format`` ``"v4l2"``; a ``.y4m`` file is played on a loop;
    empty: no camera. ``relay_only``: the media goes through the TURN server of ``ice_servers``
    only, never directly (WebRTC's ``iceTransportPolicy`` ``relay``)."""

    source: str
    sink: str
    source_format: str | None = None
    sink_format: str | None = None
    ice_servers: tuple[IceServer, ...] = field(default_factory=tuple)
    relay_only: bool = False
    camera: str = ""
    camera_format: str | None = None
    camera_options: tuple[tuple[str, str], ...] = ()  # e.g. (("video_size", "640x480"),)


@dataclass(frozen=True, slots=True)
class Picture:
    """The staff member's camera, as last received: ``rgb`` rows top to bottom."""

    width: int
    height: int
    rgb: bytes
    seq: int


def fit(width: int, height: int, box: tuple[int, int] = PICTURE_MAX) -> tuple[int, int]:
    """The size within ``box`` with the picture's proportions (even numbers, never zero)."""
    scale = min(1.0, box[0] / max(1, width), box[1] / max(1, height))
    return max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)


def rgb_bytes(frame: VideoFrame, width: int, height: int) -> bytes:
    """``frame`` scaled to ``width`` x ``height``, as packed RGB rows."""
    plane = frame.reformat(width=width, height=height, format="rgb24").planes[0]
    data, row = bytes(plane), width * 3
    if plane.line_size == row:
        return data[: row * height]
    return b"".join(data[y * plane.line_size : y * plane.line_size + row] for y in range(height))


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


class CameraTrack(MediaStreamTrack):
    """The station's camera, or black while the resident has turned it off. Every frame is
    stamped again from a monotonic clock: the encoder refuses a time that goes back, which a
    file played on a loop does, and a camera whose own clock jumps."""

    kind = "video"

    def __init__(self, source: MediaStreamTrack, enabled: Callable[[], bool]) -> None:
        super().__init__()
        self._source = source
        self._enabled = enabled
        self._start: float | None = None
        self._pts = -1

    async def recv(self) -> Frame | Packet[Any]:
        frame = await self._source.recv()
        if not isinstance(frame, VideoFrame):
            return frame
        if not self._enabled():
            black = VideoFrame(frame.width, frame.height, "yuv420p")
            for plane, value in zip(black.planes, (16, 128, 128), strict=True):
                plane.update(bytes([value]) * plane.buffer_size)
            frame = black
        now = time.monotonic()
        if self._start is None:
            self._start = now
        self._pts = max(self._pts + 1, int((now - self._start) * VIDEO_CLOCK))
        frame.pts, frame.time_base = self._pts, fractions.Fraction(1, VIDEO_CLOCK)
        return frame


class CallPeer:
    """One call, from the offer to its end; thread-safe entry points."""

    def __init__(self, audio: CallMedia, on_phase: OnPhase) -> None:
        self.audio = audio
        self.volume = 1.0
        self.camera_on = True  # the resident may turn the station's camera off (black is sent)
        self._picture: Picture | None = None
        self._tasks: set[asyncio.Future[None]] = set()  # held: the loop keeps weak references
        self._told: deque[str] = deque()  # for the staff member's page, once the channel is open
        self._camera: MediaPlayer | None = None
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
        pending = asyncio.all_tasks(self._loop)  # the watchdog, a picture being read
        for task in pending:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
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

    def picture(self) -> Picture | None:
        """The staff member's camera as last received (any thread); None before any."""
        return self._picture

    def tell(self, message: str) -> None:
        """A message to the staff member's page on the data channel (the resident's consent),
        sent now or as soon as the channel is open (any thread)."""
        self._told.append(message)
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._flush)

    def _flush(self) -> None:
        channel = self._channel
        while self._told and channel is not None and channel.readyState == "open":
            with contextlib.suppress(Exception):
                channel.send(self._told[0])
            self._told.popleft()

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
        policy = RTCIceTransportPolicy.RELAY if self.audio.relay_only else RTCIceTransportPolicy.ALL
        pc = RTCPeerConnection(
            RTCConfiguration(iceServers=servers or None, iceTransportPolicy=policy)
        )
        self._pc = pc
        a = self.audio
        looped = a.source.endswith(".wav")
        self._player = MediaPlayer(a.source, format=a.source_format, loop=looped)
        self._recorder = MediaRecorder(a.sink, format=a.sink_format)

        @pc.on("track")
        def _track(track: MediaStreamTrack) -> None:
            if track.kind == "audio" and self._recorder is not None:
                self._recorder.addTrack(VolumeTrack(track, lambda: self.volume))
            elif track.kind == "video":
                self._tasks.add(asyncio.ensure_future(self._pictures(track)))

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
            if pc.connectionState == "failed":  # never connected: failed; else dropped
                await self._end("dropped" if self._talking else "failed")

        await pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
        if self._player.audio is not None:
            pc.addTrack(self._player.audio)
        if a.camera and "\nm=video " in "\n" + offer_sdp:
            self._add_camera(pc)
        await self._recorder.start()
        await pc.setLocalDescription(await pc.createAnswer())  # gathers every candidate
        sdp = str(pc.localDescription.sdp)
        if self.audio.relay_only and "\na=candidate:" not in "\n" + sdp:
            # the TURN server refused the station's credentials, or cannot be reached: an
            # answer without a candidate could never connect, so the call fails at once
            raise CallFailed("no relay candidate: the TURN server refused or did not answer")
        self._watch = asyncio.ensure_future(self._watchdog(time.monotonic()))
        return sdp

    def _add_camera(self, pc: RTCPeerConnection) -> None:
        """The station's camera into the call; a camera that cannot be opened leaves the call
        to sound alone (logged: the technician sees no picture, the resident is not told of a
        camera)."""
        a = self.audio
        try:
            self._camera = MediaPlayer(
                a.camera,
                format=a.camera_format,
                options=dict(a.camera_options),
                loop=a.camera.endswith(".y4m"),
            )
        except Exception as err:  # no such device, busy, unreadable
            log.warning("the camera could not be opened (%s)", type(err).__name__)
            return
        if self._camera.video is not None:
            pc.addTrack(CameraTrack(self._camera.video, lambda: self.camera_on))
            self._on_phase("camera", "")

    async def _pictures(self, track: MediaStreamTrack) -> None:
        """Keep the staff member's latest picture, :data:`PICTURE_FPS` a second."""
        shown = 0.0
        while not self._ended:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            now = time.monotonic()
            if not isinstance(frame, VideoFrame) or now - shown < 1 / PICTURE_FPS:
                continue
            shown = now
            width, height = fit(frame.width, frame.height)
            seq = 1 if self._picture is None else self._picture.seq + 1
            picture = Picture(width, height, rgb_bytes(frame, width, height), seq)
            if self._ended:
                return
            self._picture = picture
            if seq == 1:
                self._on_phase("picture", "")

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
                self._flush()
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
        if self._camera is not None and self._camera.video is not None:
            self._camera.video.stop()
        self._picture = None
        if self._pc is not None:
            with contextlib.suppress(Exception):
                await self._pc.close()
        try:
            self._on_phase("ended", reason)
        finally:
            self._loop.call_soon(self._loop.stop)
