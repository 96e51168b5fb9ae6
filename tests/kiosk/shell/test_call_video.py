"""A call's video at the kiosk's peer (kiosk.shell.call_peer), against a real WebRTC peer.

The technician's side is a second aiortc peer in the test, as a browser would be: its camera is a
file of four coloured quadrants, and so is the station's (``[call] camera``). Each side must
receive the other's picture whole, the right way up and not mirrored; the resident's "camera
off" sends black until it is turned on again; an offer without video, or a camera that cannot be
opened, leaves the call to sound alone. (The browser on the real console does the same in
tests/fleet/console/test_call_browser.py; the kiosk's screen in tests/kiosk/ui/test_call_gui.py.)
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiortc import MediaStreamTrack, RTCSessionDescription
from aiortc.contrib.media import MediaPlayer
from av import VideoFrame

from fleet.protocol.call import CONSENT_YES, PING
from kiosk.shell.call_peer import CallMedia, CallPeer, Picture, fit, rgb_bytes
from sandbox.camera import KIOSK_COLOURS, STAFF_COLOURS, matches, quadrants, quadrants_y4m
from tests.kiosk.shell.staff_peer import StaffPeer, tone, until

pytestmark = pytest.mark.slow


class Staff(StaffPeer):
    """The technician's end, with an optional camera and the station's picture as received."""

    def __init__(self, tmp_path: Path, camera: bool, size: tuple[int, int] = (320, 240)) -> None:
        super().__init__(tmp_path, 440.0)
        self.camera: MediaPlayer | None = None
        if camera:
            width, height = size
            y4m = quadrants_y4m(tmp_path / "staff.y4m", STAFF_COLOURS, width=width, height=height)
            self.camera = MediaPlayer(str(y4m), loop=True)
            assert self.camera.video is not None
            self.pc.addTrack(self.camera.video)
        else:
            self.pc.addTransceiver("video", direction="recvonly")  # to see the station only
        self.open_channel()
        self.heard: list[str] = []  # the kiosk's messages but its pings
        self.channel.on("message", lambda m: m == PING or self.heard.append(m))
        self.seen: list[list[tuple[int, int, int]]] = []  # the station's quadrants, in order

        @self.pc.on("track")
        def _track(track: MediaStreamTrack) -> None:
            if track.kind == "video":
                self.tasks.append(asyncio.ensure_future(self._watch(track)))

    async def _watch(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(Exception):
            while True:
                frame = await track.recv()
                assert isinstance(frame, VideoFrame)
                w, h = fit(frame.width, frame.height)
                self.seen.append(quadrants(rgb_bytes(frame, w, h), w, h))


@contextlib.asynccontextmanager
async def call(
    tmp_path: Path,
    media: CallMedia,
    *,
    staff_camera: bool = True,
    staff_size: tuple[int, int] = (320, 240),
) -> AsyncIterator[tuple[Staff, CallPeer, queue.Queue[tuple[str, str]]]]:
    staff = Staff(tmp_path, staff_camera, staff_size)
    phases: queue.Queue[tuple[str, str]] = queue.Queue()
    kiosk = CallPeer(media, lambda phase, reason: phases.put((phase, reason)))
    await staff.pc.setLocalDescription(await staff.pc.createOffer())
    loop = asyncio.get_running_loop()
    answer = await loop.run_in_executor(None, kiosk.answer, staff.pc.localDescription.sdp, 20.0)
    await staff.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    pinger = asyncio.ensure_future(staff.ping())
    try:
        yield staff, kiosk, phases
    finally:
        pinger.cancel()
        kiosk.hang_up("resident")
        await staff.close()


def drained(phases: queue.Queue[tuple[str, str]]) -> list[str]:
    found = []
    while not phases.empty():
        found.append(phases.get_nowait()[0])
    return found


def media(tmp_path: Path, camera: str | None = "kiosk") -> CallMedia:
    y4m = "" if camera is None else str(quadrants_y4m(tmp_path / f"{camera}.y4m", KIOSK_COLOURS))
    if camera == "missing":
        y4m = str(tmp_path / "no-such-camera.y4m")
    return CallMedia(
        source=str(tone(tmp_path / "kiosk.wav", 1000.0)),
        sink=str(tmp_path / "heard.wav"),
        camera=y4m,
    )


async def staff_picture(kiosk: CallPeer) -> Picture:
    """The staff member's picture at the kiosk once it shows their four quadrants as sent (the
    codec's first frames are coarse)."""
    found: list[Picture] = []

    def settled() -> bool:
        p = kiosk.picture()
        if p is None or not matches(quadrants(p.rgb, p.width, p.height), STAFF_COLOURS):
            return False
        found.append(p)
        return True

    await until(settled, 20, "the staff member's picture, settled")
    return found[-1]


def test_each_side_sees_the_others_camera_and_the_resident_can_turn_theirs_off(
    tmp_path: Path,
) -> None:
    async def run() -> None:
        async with call(tmp_path, media(tmp_path)) as (staff, kiosk, phases):
            # the staff member's picture at the kiosk: four quadrants, as sent
            picture = await staff_picture(kiosk)
            assert (picture.width, picture.height) == (320, 240)
            print("the kiosk sees", quadrants(picture.rgb, picture.width, picture.height))
            # the station's camera at the technician's end
            await until(
                lambda: staff.seen and matches(staff.seen[-1], KIOSK_COLOURS),
                15,
                f"the station's picture (last seen {staff.seen[-1:]})",
            )
            seen: list[str] = []
            await until(lambda: "talking" in seen or seen.extend(drained(phases)), 5, "talking")
            assert {"camera", "picture"} <= set(seen)
            kiosk.tell(CONSENT_YES)  # the resident's answer to the recording's question
            await until(lambda: staff.heard == [CONSENT_YES], 5, "the answer on the channel")
            # the resident turns the camera off: black, then the picture again
            kiosk.camera_on = False
            await until(
                lambda: all(max(q) < 40 for q in staff.seen[-1]), 10, "black from the station"
            )
            kiosk.camera_on = True
            await until(lambda: matches(staff.seen[-1], KIOSK_COLOURS), 10, "the camera again")
            # the camera's file has played round (a second long): the picture still comes
            count = len(staff.seen)
            await asyncio.sleep(1.5)
            assert len(staff.seen) > count + 10 and matches(staff.seen[-1], KIOSK_COLOURS)
        # nothing of the staff member's picture is kept once the call has ended
        await until(lambda: kiosk.picture() is None, 5, "the picture gone")

    asyncio.run(run())


def test_a_large_camera_is_shown_within_the_picture_box_in_its_proportions(tmp_path: Path) -> None:
    """A technician's 960x540 camera (16:9) reaches the kiosk as at most 480x360: 480x270,
    whole, the quadrants where they were (the kiosk keeps and draws no more than that)."""

    async def run() -> None:
        async with call(tmp_path, media(tmp_path), staff_size=(960, 540)) as (_s, kiosk, _ph):
            picture = await staff_picture(kiosk)
            assert (picture.width, picture.height) == (480, 270)
            assert len(picture.rgb) == 480 * 270 * 3

    asyncio.run(run())


def test_no_video_offered_or_no_camera_leaves_the_call_to_sound(tmp_path: Path) -> None:
    async def run() -> None:
        # the technician has no camera and the station none: an audio call
        async with call(tmp_path, media(tmp_path, None), staff_camera=False) as (s, kiosk, ph):
            await until(lambda: "talking" in drained(ph), 15, "talking")
            await asyncio.sleep(1.0)
            assert kiosk.picture() is None and not s.seen
        # the station's camera cannot be opened: the call goes on with sound, no "camera"
        async with call(tmp_path, media(tmp_path, "missing")) as (s, kiosk, ph):
            seen: list[str] = []
            await until(lambda: "talking" in seen or seen.extend(drained(ph)), 15, "talking")
            await until(kiosk.picture, 15, "the staff member's picture all the same")
            seen += drained(ph)
            assert "camera" not in seen and not s.seen

    asyncio.run(run())
