"""A staff call through a real TURN relay (coturn on the shipped configuration, sandbox/coturn.py).

``[call] ice_relay_only``: the kiosk's peer gathers relay candidates only, so the media goes
through coturn and never directly. The technician's side is a second aiortc peer, as a browser
would be, with the console's TURN user and the browser's default policy (every candidate): the
kiosk alone keeps the call on the relay. Both ways must carry the right tone; the kiosk's
nominated pair must be a relay one; coturn's log must show the allocations of both users. A
wrong TURN password must fail the call at once and cleanly: the answer is refused, the call ends
as ``failed``, the peer's thread ends; through the station's runtime, the console's command
fails and the resident is told. A TURN server that does not answer fails the call within 5 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import re
import time
import wave
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import numpy as np
import pytest
from aiortc import (
    MediaStreamTrack,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from av import AudioFrame

from kiosk.config import ConfigProblems, parse_config
from kiosk.shell.call_peer import CallFailed, CallMedia, CallPeer, IceServer
from kiosk.shell.runtime import Frame, Intent, Runtime
from kiosk.station import call_audio
from sandbox.coturn import TurnServer
from sandbox.process import free_port
from tests.kiosk.shell.staff_peer import RATE, StaffPeer, tone, until

STAFF_HZ, KIOSK_HZ = 440.0, 1000.0


def dominant_hz(samples: np.ndarray, rate: int) -> float:
    x = samples.astype(np.float64) - samples.mean()
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[int(np.argmax(spectrum[1:])) + 1])


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TurnServer]:
    server = TurnServer(tmp_path_factory.mktemp("coturn"))
    server.start()
    yield server
    server.stop()


class Staff(StaffPeer):
    """The technician's end, with the console's TURN user, and the station's sound as
    received (the first channel's samples)."""

    def __init__(self, tmp_path: Path, relay: TurnServer) -> None:
        turn = RTCIceServer(relay.url(), username="console", credential=relay.users.console)
        super().__init__(tmp_path, STAFF_HZ, [turn])
        self.open_channel()
        self.heard: list[np.ndarray] = []
        self.rate = RATE

        @self.pc.on("track")
        def _track(track: MediaStreamTrack) -> None:
            if track.kind == "audio":
                self.tasks.append(asyncio.ensure_future(self._listen(track)))

    async def _listen(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(Exception):
            while True:
                frame = await track.recv()
                assert isinstance(frame, AudioFrame)
                self.rate = frame.sample_rate
                channels = len(frame.layout.channels)
                samples = frame.to_ndarray().reshape(-1, channels)[:, 0]
                self.heard.append(samples)

    def seconds_heard(self) -> float:
        return sum(len(s) for s in self.heard) / self.rate


def kiosk_media(tmp_path: Path, relay: TurnServer, password: str) -> CallMedia:
    return CallMedia(
        source=str(tone(tmp_path / "kiosk.wav", KIOSK_HZ)),
        sink=str(tmp_path / "heard.wav"),
        ice_servers=(IceServer((relay.url(),), "station", password),),
        relay_only=True,
    )


@contextlib.asynccontextmanager
async def call(
    tmp_path: Path, relay: TurnServer, media: CallMedia
) -> AsyncIterator[tuple[Staff, CallPeer, str, queue.Queue[tuple[str, str]]]]:
    staff = Staff(tmp_path, relay)
    phases: queue.Queue[tuple[str, str]] = queue.Queue()
    kiosk = CallPeer(media, lambda phase, reason: phases.put((phase, reason)))
    pinger = asyncio.ensure_future(staff.ping())
    try:
        await staff.pc.setLocalDescription(await staff.pc.createOffer())
        loop = asyncio.get_running_loop()
        answer = await loop.run_in_executor(None, kiosk.answer, staff.pc.localDescription.sdp, 15)
        await staff.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        yield staff, kiosk, answer, phases
    finally:
        pinger.cancel()
        kiosk.hang_up("resident")
        await staff.close()


def reasons(phases: queue.Queue[tuple[str, str]], phase: str) -> list[str]:
    found = []
    while not phases.empty():
        got, reason = phases.get_nowait()
        if got == phase:
            found.append(reason)
    return found


def candidate_types(sdp: str) -> list[str]:
    return re.findall(r"^a=candidate:.* typ (\w+)", sdp, flags=re.MULTILINE)


def nominated_local_type(kiosk: CallPeer) -> str:
    """The type of the kiosk's local candidate in the pair ICE nominated. aiortc has no public
    accessor for the selected pair: this reads aioice's connection behind the SCTP transport."""
    pc = kiosk._pc
    assert pc is not None and pc.sctp is not None
    pairs = pc.sctp.transport.transport._connection._nominated
    assert pairs, "no nominated pair"
    return str(pairs[1].local_candidate.type)


@pytest.mark.slow
def test_a_relay_only_call_carries_sound_both_ways_through_coturn(
    tmp_path: Path, relay: TurnServer
) -> None:
    media = kiosk_media(tmp_path, relay, relay.users.station)

    async def run() -> None:
        async with call(tmp_path, relay, media) as (staff, kiosk, answer, phases):
            # the kiosk offers relay candidates only: its own addresses never leave it
            assert candidate_types(answer) and set(candidate_types(answer)) == {"relay"}
            await until(lambda: "" in reasons(phases, "talking"), 10, "talking")
            assert nominated_local_type(kiosk) == "relay"
            # the station's 1000 Hz at the technician's end, through the relay
            await until(lambda: staff.seconds_heard() > 2.0, 10, "the station's sound")
            last = np.concatenate(staff.heard)[-staff.rate :]
            assert abs(dominant_hz(last, staff.rate) - KIOSK_HZ) < 20
        ended = await until(lambda: reasons(phases, "ended"), 5, "the call's end")
        assert ended == ["resident"]

    asyncio.run(run())
    # the technician's 440 Hz at the station (the sink is a file in tests)
    with wave.open(str(tmp_path / "heard.wav"), "rb") as w:
        rate, channels = w.getframerate(), w.getnchannels()
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    samples = data.reshape(-1, channels)[:, 0]
    assert len(samples) > rate  # more than a second heard
    assert abs(dominant_hz(samples[-rate:], rate) - STAFF_HZ) < 20
    # coturn gave both users an allocation
    log = relay.log()
    for user in ("station", "console"):
        assert re.search(rf"user <{user}>: .*ALLOCATE processed, success", log), user


@pytest.mark.slow
def test_a_wrong_turn_password_fails_the_relay_only_call_at_once(
    tmp_path: Path, relay: TurnServer
) -> None:
    media = kiosk_media(tmp_path, relay, "not-the-password")

    async def run() -> None:
        staff = Staff(tmp_path, relay)
        phases: queue.Queue[tuple[str, str]] = queue.Queue()
        kiosk = CallPeer(media, lambda phase, reason: phases.put((phase, reason)))
        try:
            await staff.pc.setLocalDescription(await staff.pc.createOffer())
            loop = asyncio.get_running_loop()
            started = time.monotonic()
            with pytest.raises(CallFailed, match="no relay candidate"):
                await loop.run_in_executor(None, kiosk.answer, staff.pc.localDescription.sdp, 15)
            assert time.monotonic() - started < 5  # refused at once, not after the call's timeout
            ended = await until(lambda: reasons(phases, "ended"), 5, "the call's end")
            assert ended == ["failed"]
            await until(lambda: not kiosk._thread.is_alive(), 5, "the peer's thread to end")
        finally:
            await staff.close()

    asyncio.run(run())
    assert "user station credentials are incorrect" in relay.log()  # coturn's words


@pytest.mark.slow
def test_a_turn_server_that_does_not_answer_fails_the_relay_only_call_in_seconds(
    tmp_path: Path,
) -> None:
    """No relay at all on that port: aioice gives up gathering after 5 s, the call fails then."""
    silent = TurnServer(tmp_path / "none")
    silent.port = free_port()  # never started: nothing answers there
    media = kiosk_media(tmp_path, silent, "whatever")
    phases: queue.Queue[tuple[str, str]] = queue.Queue()
    kiosk = CallPeer(media, lambda phase, reason: phases.put((phase, reason)))
    started = time.monotonic()
    with pytest.raises(CallFailed, match="no relay candidate"):
        kiosk.answer(asyncio.run(a_technicians_offer()), 15)
    assert time.monotonic() - started < 8
    assert phases.get(timeout=5) == ("ended", "failed")
    kiosk._thread.join(5)
    assert not kiosk._thread.is_alive()


async def a_technicians_offer() -> str:
    pc = RTCPeerConnection()
    pc.addTransceiver("audio")
    pc.createDataChannel("call")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = str(pc.localDescription.sdp)
    await pc.close()
    return sdp


@pytest.mark.slow
def test_the_station_reports_the_refused_relay_call_as_failed_and_says_so(
    tmp_path: Path, relay: TurnServer, bare_runtime: tuple[Runtime, list[Frame]]
) -> None:
    """The same wrong password through the runtime: the console's command fails with
    ``failed``, the resident sees and hears that the call was cut off, the end is reported."""
    runtime, frames = bare_runtime
    runtime.calls.audio = kiosk_media(tmp_path, relay, "not-the-password")
    said: list[str] = []
    runtime.devices.speech.speak = lambda text, **_kw: said.append(text)  # type: ignore[method-assign]
    runtime.post(Intent("help"))
    runtime.pump()
    runtime.journal.add_command(
        "c1", "call_offer", {"sdp": asyncio.run(a_technicians_offer()), "staff": "tech"},
        target="ui", deadline=time.time() + 30,
    )  # fmt: skip
    runtime.remote._next_poll = 0.0
    deadline = time.monotonic() + 8
    while not (frames and frames[-1].call.phase == "ended"):
        assert time.monotonic() < deadline, "the refused call did not end"
        runtime.pump()
        time.sleep(0.02)
    assert frames[-1].call.ended == "failed"
    assert any("通话已断开" in text for text in said)  # the station's language: Chinese first
    record = runtime.journal.command("c1")
    assert record is not None and (record.state, record.detail) == ("failed", {"reason": "failed"})
    [end] = [e.payload for e in runtime.journal.pending_events() if e.type == "call_end"]
    assert end["reason"] == "failed" and end["connected"] is False


def test_relay_only_is_a_station_setting_that_needs_a_turn_server() -> None:
    turn = {
        "microphone": "default",
        "ice_servers": ["turn:turn.example:3478?transport=udp"],
        "turn_username": "station",
        "turn_password": "secret",
    }
    config = parse_config({"call": {**turn, "ice_relay_only": True}}, source="kiosk.toml")
    media = call_audio(config)
    assert media is not None and media.relay_only
    default = call_audio(parse_config({"call": turn}, source="kiosk.toml"))
    assert default is not None and not default.relay_only
    with pytest.raises(ConfigProblems) as err:
        parse_config({"call": {"ice_relay_only": True}}, source="kiosk.toml")
    assert err.value.problems == (
        "kiosk.toml: [call] ice_relay_only = true needs a `turn:` URL in ice_servers, "
        "turn_username and turn_password: without a TURN server no call could connect",
    )
