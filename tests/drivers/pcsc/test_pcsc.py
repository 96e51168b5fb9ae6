"""PC/SC: the social security card through a real pcscd and a virtual card on vpcd."""

from __future__ import annotations

import contextlib
import logging
import queue
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.pcsc import apdu as iso
from drivers.pcsc.profiles import load_profile
from drivers.pcsc.reader import PcscReader
from drivers.pcsc.vicc import VirtualCard
from flows.errors import ConfigError, ProtocolError
from flows.models import (
    CardInserted,
    CardRemoved,
    DeviceEvent,
    DeviceFault,
    IdentityRead,
    ReaderConnected,
    ReaderDisconnected,
)
from flows.synthetic import DEMO_RESIDENT
from sandbox.pcscd import Pcscd


@pytest.fixture
def events() -> queue.Queue[DeviceEvent]:
    return queue.Queue()


@pytest.fixture
def reader(pcscd: Pcscd, events: queue.Queue[DeviceEvent]) -> Iterator[PcscReader]:
    r = PcscReader(reader_prefix="Virtual PCD", wait_ms=200, max_backoff_s=0.5)
    r.start(events.put)
    yield r
    r.stop()


def wait_for(events: queue.Queue[DeviceEvent], kind: type, timeout: float = 10.0) -> DeviceEvent:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            event = events.get(timeout=0.1)
        except queue.Empty:
            continue
        if isinstance(event, kind):
            return event
    raise AssertionError(f"no {kind.__name__} within {timeout}s")


def test_social_security_card_is_read_with_get_response_and_resend(
    pcscd: Pcscd,
    reader: PcscReader,
    events: queue.Queue[DeviceEvent],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="kiosk")
    wait_for(events, ReaderConnected)
    card = VirtualCard(pcscd.port, DEMO_RESIDENT)
    card.insert()
    read = wait_for(events, IdentityRead)
    assert isinstance(read, IdentityRead)
    identity = read.identity
    assert (identity.card_type.value, identity.name, identity.id_number) == (
        "social_security",
        DEMO_RESIDENT.name,
        DEMO_RESIDENT.id_number,
    )
    assert (identity.sex, identity.nation, identity.birth_date) == (
        "女",
        "汉",
        DEMO_RESIDENT.birth_date,
    )
    # the exact transcript: SELECT answered 61xx -> GET RESPONSE; the EF selected as the field does
    # (P1 = 02); READ RECORD Le=00 -> 6Cxx resend
    assert card.apdus[0] == bytes.fromhex("00A404000F7378312E73682EC9E7BBE1B1A3D5CF00")
    assert card.apdus[1] == bytes.fromhex("00C0000013")
    assert card.apdus[2:5] == [
        bytes.fromhex(h) for h in ("00A4020002EF06", "00B2080400", "00B2080414")
    ]
    card.remove()
    wait_for(events, CardRemoved)
    text = caplog.text
    for secret in (DEMO_RESIDENT.name, DEMO_RESIDENT.id_number):
        assert secret not in text and secret.encode("gbk").hex() not in text


def test_a_new_session_reads_the_card_that_stayed_in_the_reader(
    pcscd: Pcscd, reader: PcscReader, events: queue.Queue[DeviceEvent]
) -> None:
    wait_for(events, ReaderConnected)
    card = VirtualCard(pcscd.port, DEMO_RESIDENT)
    card.insert()
    wait_for(events, IdentityRead)
    reader.read_again()  # the card stayed: the next session reads it without a re-insert
    wait_for(events, CardInserted)
    again = wait_for(events, IdentityRead)
    assert isinstance(again, IdentityRead) and again.identity.name == DEMO_RESIDENT.name
    assert reader.reads == 2
    card.remove()
    wait_for(events, CardRemoved)


def test_pin_required_is_a_typed_fault_without_identity(
    pcscd: Pcscd, reader: PcscReader, events: queue.Queue[DeviceEvent]
) -> None:
    wait_for(events, ReaderConnected)
    card = VirtualCard(pcscd.port, DEMO_RESIDENT)
    card.pin_required = True
    card.insert()
    fault = wait_for(events, DeviceFault)
    assert isinstance(fault, DeviceFault) and fault.translation_key == "error.card.pin_required"
    card.remove()
    wait_for(events, CardRemoved)
    assert reader.reads == 0


@pytest.mark.slow
def test_pcscd_restart_is_survived_without_restarting_anything(
    pcscd: Pcscd, reader: PcscReader, events: queue.Queue[DeviceEvent]
) -> None:
    wait_for(events, ReaderConnected)
    pcscd.stop(hard=True)  # kill -9
    wait_for(events, ReaderDisconnected)
    assert reader.health().state.value == "offline"
    pcscd.start()
    wait_for(events, ReaderConnected, timeout=15)
    card = VirtualCard(pcscd.port, DEMO_RESIDENT)
    card.insert()
    read = wait_for(events, IdentityRead)
    assert isinstance(read, IdentityRead) and reader.contexts >= 2
    card.remove()


def test_card_pulled_mid_read_gives_no_half_identity(
    pcscd: Pcscd, reader: PcscReader, events: queue.Queue[DeviceEvent]
) -> None:
    wait_for(events, ReaderConnected)
    card = VirtualCard(pcscd.port, DEMO_RESIDENT)
    original = card._apdu

    def pulled(command: bytes) -> bytes:
        if len(card.apdus) >= 4:  # the resident pulls the card after a few commands
            card.remove()
        return original(command)

    card._apdu = pulled  # type: ignore[method-assign]
    card.insert()
    seen: list[DeviceEvent] = []
    deadline = time.monotonic() + 8
    while time.monotonic() < deadline and not any(isinstance(e, CardRemoved) for e in seen):
        with contextlib.suppress(queue.Empty):
            seen.append(events.get(timeout=0.1))
    assert not any(isinstance(e, IdentityRead) for e in seen)
    assert any(isinstance(e, DeviceFault) for e in seen)


# --- the transport logic, against random answers --------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.binary(max_size=40), st.integers(0, 255), st.integers(0, 255)),
        min_size=1,
        max_size=40,
    )
)
def test_random_answers_only_raise_typed_errors_and_never_loop(
    answers: list[tuple[bytes, int, int]],
) -> None:
    replies = iter(answers)
    calls = 0

    def transmit(_command: bytes) -> tuple[bytes, int, int]:
        nonlocal calls
        calls += 1
        try:
            return next(replies)
        except StopIteration:
            return b"", 0x90, 0x00

    try:
        data = iso.exchange(transmit, iso.read_record(8))
        iso.parse_tlv(data)
    except ProtocolError:
        pass
    assert calls <= iso.MAX_ROUNDS


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_tlv_parser_on_random_bytes(data: bytes) -> None:
    try:
        for tag, value in iso.parse_tlv(data):
            assert tag >= 0 and len(value) <= len(data)
    except ProtocolError:
        pass


def test_status_words_map_to_typed_errors() -> None:
    assert isinstance(iso.status_error(0x6982), iso.SecurityNotSatisfied)
    assert isinstance(iso.status_error(0x6A82), iso.FileNotFound)
    assert isinstance(iso.status_error(0x6A83), iso.RecordNotFoundOnCard)
    assert type(iso.status_error(0x6F00)) is iso.CardError


def test_read_card_command_reads_a_social_security_card(pcscd: Pcscd) -> None:
    import json
    import subprocess
    import sys
    import threading

    card = VirtualCard(pcscd.port, DEMO_RESIDENT)
    threading.Timer(1.5, card.insert).start()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "kiosk.cli",
            "read-card",
            "--reader",
            "pcsc:Virtual PCD",
            "--timeout",
            "20",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    card.remove()
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["card_type"] == "social_security" and shown["name"] == "张**"
    assert DEMO_RESIDENT.id_number not in result.stdout


LOCAL_CARD = """
name = "county_citizen_card"
aid = "A000000632010105"
[[fields]]
field = "name"
fid = "0101"
offset = 0
length = 30
encoding = "gbk"
[[fields]]
field = "id_number"
fid = "0101"
offset = 30
length = 18
"""


def test_a_local_card_is_mapped_by_a_profile_file_without_code(
    pcscd: Pcscd, events: queue.Queue[DeviceEvent], tmp_path: Path
) -> None:
    path = tmp_path / "county.toml"
    path.write_text(LOCAL_CARD)
    profile = load_profile(path)
    content = DEMO_RESIDENT.name.encode("gbk").ljust(30, b" ") + DEMO_RESIDENT.id_number.encode()
    card = VirtualCard(pcscd.port, DEMO_RESIDENT, aid=profile.aid, binary_files={0x0101: content})
    reader = PcscReader(profile=profile, wait_ms=200)
    reader.start(events.put)
    try:
        wait_for(events, ReaderConnected)
        card.insert()
        read = wait_for(events, IdentityRead)
        assert isinstance(read, IdentityRead)
        assert (read.identity.name, read.identity.id_number) == (
            DEMO_RESIDENT.name,
            DEMO_RESIDENT.id_number,
        )
        assert bytes.fromhex("00B000001E") in card.apdus  # READ BINARY offset 0, 30 bytes
    finally:
        card.remove()
        reader.stop()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("aid = 'zz'\n", "aid: required, hex digits"),
        ("aid = 'A000000632'\n", "fields: at least one"),
        (
            "aid = 'A000000632'\n[[fields]]\nfield = 'age'\nfid = '01'\nrecord = 1\n",
            "fields[0].field: must be one of",
        ),
        (
            "aid = 'A000000632'\n[[fields]]\nfield = 'name'\nfid = '01'\n",
            "fields[0]: needs record (1-254) or offset and length",
        ),
        (
            "aid = 'A000000632'\n[[fields]]\nfield = 'name'\nfid = '01'\nrecord = 9\n",
            "fields: must map at least id_number and name",
        ),
    ],
)
def test_profile_mistakes_name_the_field_and_the_rule(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_profile(path)
