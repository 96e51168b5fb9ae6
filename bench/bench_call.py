"""The audio path of a staff member's call on loopback (issue 22): mouth to ear.

Two aiortc peers in this process, connected over loopback as the technician's browser and the
kiosk are (ICE host candidates, DTLS-SRTP, Opus at 48 kHz in 20 ms packets). The sending side is a
track that paces 20 ms frames in real time, as a microphone does, with a 1 kHz tone burst every
0.48 s; the time each burst's first frame leaves the track is its "mouth" time. The receiving side
reads the remote track through the kiosk's own :class:`kiosk.shell.call_peer.VolumeTrack` (the
resident's volume, here 1.5), as the kiosk's speaker would, and notes when each burst's first
loud frame comes out: its "ear" time.

``call.mouth_to_ear_ms``: median of (ear - mouth) over the bursts after the first two (warm-up
of the jitter buffer), ms. ``call.mouth_to_ear_p95_ms``: their 95th percentile.
``call.mouth_to_ear_to_packet``: the median over one packet's duration (20 ms), the baseline an
audio path cannot beat (a frame is whole before it is encoded). Not included: the sound card's
own buffers at both ends and the browser's jitter buffer, which a real call adds (typically
20-60 ms each); ITU-T G.114's 150 ms one-way is the budget they share.
"""

from __future__ import annotations

import array
import asyncio
import fractions
import math
import statistics
import time

from aiortc import MediaStreamTrack, RTCPeerConnection
from av import AudioFrame

from kiosk.shell.call_peer import VolumeTrack

RATE = 48000
FRAME = 960  # 20 ms
PERIOD_FRAMES = 24  # a burst every 0.48 s
BURST_FRAMES = 5  # of 0.1 s
BURSTS = 24
WARM_UP = 2
THRESHOLD = 3000  # peak sample above which a decoded frame is "loud"


class ToneBursts(MediaStreamTrack):
    """A paced microphone: silence with a 1 kHz burst every :data:`PERIOD_FRAMES` frames."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self.mouths: list[float] = []
        self._index = 0
        self._start: float | None = None
        tone = array.array(
            "h",
            (int(12000 * math.sin(2 * math.pi * 1000 * i / RATE)) for i in range(FRAME)),
        )
        self._tone = tone.tobytes()  # 1 kHz: a whole number of periods in 20 ms
        self._silence = bytes(2 * FRAME)

    async def recv(self) -> AudioFrame:
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._index * FRAME / RATE
        if (wait := due - time.monotonic()) > 0:
            await asyncio.sleep(wait)
        position = self._index % PERIOD_FRAMES
        frame = AudioFrame(format="s16", layout="mono", samples=FRAME)
        frame.planes[0].update(self._tone if position < BURST_FRAMES else self._silence)
        frame.sample_rate = RATE
        frame.pts = self._index * FRAME
        frame.time_base = fractions.Fraction(1, RATE)
        if position == 0:
            self.mouths.append(time.monotonic())
        self._index += 1
        return frame


async def _ears(track: MediaStreamTrack, count: int) -> list[float]:
    ears: list[float] = []
    loud = False
    while len(ears) < count:
        frame = await track.recv()
        peak = max(abs(s) for s in array.array("h", bytes(frame.planes[0])))
        if peak > THRESHOLD and not loud:
            ears.append(time.monotonic())
        loud = peak > THRESHOLD
    return ears


async def _measure() -> list[float]:
    staff, kiosk = RTCPeerConnection(), RTCPeerConnection()
    mouth = ToneBursts()
    staff.addTrack(mouth)
    received: asyncio.Future[MediaStreamTrack] = asyncio.get_running_loop().create_future()
    kiosk.on("track", lambda track: received.done() or received.set_result(track))
    await staff.setLocalDescription(await staff.createOffer())
    await kiosk.setRemoteDescription(staff.localDescription)
    await kiosk.setLocalDescription(await kiosk.createAnswer())
    await staff.setRemoteDescription(kiosk.localDescription)
    track = await asyncio.wait_for(received, 20)
    ears = await asyncio.wait_for(_ears(VolumeTrack(track, lambda: 1.5), BURSTS), 60)
    await staff.close()
    await kiosk.close()
    latencies = []
    for ear in ears:
        before = [m for m in mouth.mouths if m <= ear]
        if before:
            latencies.append((ear - before[-1]) * 1000)
    return latencies[WARM_UP:]


def run() -> dict[str, float]:
    latencies = asyncio.run(_measure())
    median = statistics.median(latencies)
    p95 = statistics.quantiles(latencies, n=20)[-1]
    return {
        "call.mouth_to_ear_ms": round(median, 2),
        "call.mouth_to_ear_p95_ms": round(p95, 2),
        "call.mouth_to_ear_to_packet": round(median / (FRAME / RATE * 1000), 3),
    }


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key:45s} {value:12.4f}")
