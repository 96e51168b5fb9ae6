"""GA 467 frames: exact bytes, the checksum, the decoder's resynchronisation, status codes."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.sam import protocol as p
from drivers.sam.cards import encode_base_info
from flows.errors import DeviceError, ProtocolError
from flows.synthetic import DEMO_RESIDENT

# --- exact bytes --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "golden"),
    [
        # preamble, length 00 03 (CMD, Para, CHK), CMD, Para, CHK = 00^03^CMD^Para
        (p.RESET_SAM, "AAAAAA9669 0003 10FF EC"),
        (p.SAM_STATUS, "AAAAAA9669 0003 11FF ED"),
        (p.SAM_ID, "AAAAAA9669 0003 12FF EE"),
        (p.FIND_CARD, "AAAAAA9669 0003 2001 22"),
        (p.SELECT_CARD, "AAAAAA9669 0003 2002 21"),
        (p.READ_BASE, "AAAAAA9669 0003 3001 32"),
        (p.READ_ADDRESS, "AAAAAA9669 0003 3003 30"),
        (p.baud_command(115200), "AAAAAA9669 0003 6000 63"),
        (p.baud_command(9600), "AAAAAA9669 0003 6004 67"),
    ],
)
def test_command_frames_are_exact(command: tuple[int, int], golden: str) -> None:
    assert p.encode_command(command) == bytes.fromhex(golden)


def test_command_with_data_counts_it_in_the_length_and_checksum() -> None:
    frame = p.encode_command((0x61, 0xFF), b"\x50")  # length 4: CMD Para Data CHK
    assert frame == bytes.fromhex("AAAAAA9669 0004 61FF50 CA")


def test_response_frames_are_exact_and_decode() -> None:
    # SW1 SW2 SW3=9F, 4 data bytes; length = 3 + 4 + 1 = 8; CHK = 00^08^9F = 97
    raw = bytes.fromhex("AAAAAA9669 0008 00009F 00000000 97")
    assert p.encode_response(p.SW_CARD_FOUND, bytes(4)) == raw
    decoder = p.FrameDecoder()
    decoder.feed(raw)
    frame = decoder.next_frame()
    assert frame is not None and frame.status == 0x9F and frame.data == bytes(4)
    assert decoder.next_frame() is None and decoder.pending() == 0


def test_checksum_is_the_xor_after_the_preamble() -> None:
    assert p.checksum(b"") == 0
    assert p.checksum(bytes([0x00, 0x03, 0x20, 0x01])) == 0x22
    frame = p.encode_response(0x90, bytes(range(40)))
    assert p.checksum(frame[5:-1]) == frame[-1]


def test_baud_rates_are_only_those_the_module_offers() -> None:
    with pytest.raises(ValueError):
        p.baud_command(4800)


# --- the decoder --------------------------------------------------------------------------------


def test_decoder_resynchronises_after_garbage_and_split_reads() -> None:
    good = p.encode_response(0x90, b"\x01\x02")
    decoder = p.FrameDecoder()
    stream = b"\x00\xaa\xaa\x13junk\xaa\xaa\xaa\x96" + good
    frames = []
    for i in range(len(stream)):  # one byte at a time, as a slow UART delivers it
        decoder.feed(stream[i : i + 1])
        frame = decoder.next_frame()
        if frame is not None:
            frames.append(frame)
    assert [f.data for f in frames] == [b"\x01\x02"]
    assert decoder.skipped == len(stream) - len(good)


def test_bad_checksum_is_a_typed_error_and_the_decoder_recovers() -> None:
    bad = bytearray(p.encode_response(0x90))
    bad[-1] ^= 0xFF
    decoder = p.FrameDecoder()
    decoder.feed(bytes(bad) + p.encode_response(0x9F))
    with pytest.raises(p.FrameError) as err:
        decoder.next_frame()
    assert err.value.translation_key == "error.sam.communication"
    frame = decoder.next_frame()
    assert frame is not None and frame.status == 0x9F


def test_impossible_length_is_rejected_without_waiting_for_it() -> None:
    decoder = p.FrameDecoder()
    decoder.feed(p.PREAMBLE + b"\xff\xff" + p.encode_response(0x90))
    with pytest.raises(p.FrameError):
        decoder.next_frame()
    frame = decoder.next_frame()
    assert frame is not None and frame.status == 0x90


def test_a_real_frame_behind_a_false_preamble_is_found() -> None:
    # a false preamble whose length swallows the real frame: the checksum fails, and the
    # decoder drops one byte only, so the real frame is found next
    real = p.encode_response(0x90, b"\x05")
    decoder = p.FrameDecoder()
    decoder.feed(p.PREAMBLE + b"\x00\x05" + real)
    with pytest.raises(p.FrameError):
        decoder.next_frame()
    frame = decoder.next_frame()
    assert frame is not None and frame.data == b"\x05"


# --- status codes -------------------------------------------------------------------------------

DOCUMENTED = [0x10, 0x11, 0x21, 0x23, 0x24, 0x31, 0x32, 0x33, 0x34, 0x40, 0x41, 0x47, 0x50]
DOCUMENTED += [0x60, 0x61, 0x66, 0x80, 0x81, 0x91]


def test_every_documented_status_has_its_own_type() -> None:
    assert sorted(p.STATUS_ERRORS) == DOCUMENTED
    assert len(set(p.STATUS_ERRORS.values())) == len(DOCUMENTED)


@pytest.mark.parametrize("code", DOCUMENTED)
def test_every_status_code_maps_to_its_typed_error(code: int) -> None:
    err = p.status_error(code)
    assert type(err) is p.STATUS_ERRORS[code] and err.code == code
    assert isinstance(err, DeviceError)
    assert err.translation_key.startswith("error.sam.")
    assert f"{code:02X}" in str(err)


@pytest.mark.parametrize(
    ("code", "key"),
    [
        (0x10, "error.sam.communication"),
        (0x31, "error.sam.card_auth"),
        (0x40, "error.sam.card_unknown"),
        (0x41, "error.sam.read_failed"),
        (0x66, "error.sam.module"),
        (0x80, "error.sam.no_card"),
        (0x81, "error.sam.read_failed"),
    ],
)
def test_translation_keys_say_what_the_resident_should_do(code: int, key: str) -> None:
    assert p.status_error(code).translation_key == key


def test_wire_level_rejections_are_protocol_errors_and_module_faults_are_not() -> None:
    assert isinstance(p.status_error(0x10), ProtocolError)
    assert isinstance(p.status_error(0x21), ProtocolError)
    assert isinstance(p.status_error(0x60), p.SamModuleError)
    assert not isinstance(p.status_error(0x60), ProtocolError)


def test_an_undocumented_status_is_still_typed() -> None:
    err = p.status_error(0x77)
    assert type(err) is p.SamError and err.code == 0x77
    assert err.translation_key == "error.sam.failed"


# --- property: random, truncated and corrupted input --------------------------------------------

GOOD = p.encode_response(0x90, encode_base_info(DEMO_RESIDENT))


def _drain(stream: bytes, chunks: list[int]) -> list[p.Frame]:
    """Feed ``stream`` in ``chunks`` sizes; only typed errors may come out; bounded loops."""
    decoder = p.FrameDecoder()
    frames: list[p.Frame] = []
    pos = 0
    sizes = chunks or [len(stream) or 1]
    i = 0
    while pos < len(stream):
        size = max(1, sizes[i % len(sizes)])
        decoder.feed(stream[pos : pos + size])
        pos += size
        i += 1
        for _ in range(len(stream) + 2):  # every call consumes bytes or returns: never hangs
            try:
                frame = decoder.next_frame()
            except ProtocolError:
                continue
            if frame is None:
                break
            frames.append(frame)
            with contextlib.suppress(ProtocolError):
                p.parse_base_info(frame.data)
        else:
            raise AssertionError("the decoder did not settle")
    return frames


@settings(max_examples=300, deadline=None)
@given(
    noise=st.binary(max_size=400),
    cut=st.integers(0, len(GOOD)),
    flips=st.lists(st.tuples(st.integers(0, len(GOOD) - 1), st.integers(1, 255)), max_size=4),
    chunks=st.lists(st.integers(1, 64), max_size=6),
)
def test_random_truncated_and_corrupted_streams_only_raise_typed_errors(
    noise: bytes, cut: int, flips: list[tuple[int, int]], chunks: list[int]
) -> None:
    corrupted = bytearray(GOOD)
    for index, mask in flips:
        corrupted[index] ^= mask
    for stream in (noise, noise + GOOD, bytes(corrupted), GOOD[:cut], GOOD[:cut] + GOOD):
        _drain(stream, chunks)
    # whatever junk comes first, a whole frame behind it is found, however it is chunked
    found = _drain(noise + GOOD, chunks)
    assert found and found[-1].body == GOOD[7:-1]


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=0, max_size=1400))
def test_random_payloads_into_the_card_parser_only_raise_typed_errors(payload: bytes) -> None:
    for data in (payload, b"\x01\x00\x04\x00" + payload):
        try:
            identity = p.parse_base_info(data)
        except ProtocolError:
            continue
        assert identity.id_number  # if it parsed, it passed the number check
