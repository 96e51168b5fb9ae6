"""The SAM driver against the simulator on a real pseudo-terminal."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from drivers.sam import protocol as p
from drivers.sam.cards import PLACEHOLDER_PHOTO, encode_base_info
from drivers.sam.reader import SamReader
from drivers.sam.simulator import SamSimulator
from flows.models import (
    CardInserted,
    CardRemoved,
    CardType,
    DeviceFault,
    DeviceState,
    IdentityRead,
    ReaderConnected,
    ReaderDisconnected,
)
from flows.synthetic import DEMO_FOREIGN, DEMO_RESIDENT

# the fixtures (sim, reader, events, make_reader, wait_until) are in conftest.py


def test_full_read_yields_the_identity(sim: SamSimulator, reader: SamReader, events) -> None:
    events.wait_for(ReaderConnected)
    sim.insert(DEMO_RESIDENT)
    read = events.wait_for(IdentityRead)
    assert events.kinds() == ["ReaderConnected", "CardInserted", "IdentityRead"]
    expected = dataclasses.replace(DEMO_RESIDENT, photo=PLACEHOLDER_PHOTO)
    for field in dataclasses.fields(expected):
        assert getattr(read.identity, field.name) == getattr(expected, field.name), field.name
    assert read.device == "id_reader"
    commands = sim.commands()
    assert commands[0] == p.SAM_STATUS  # connected means the module answered
    assert commands[-4:] == [p.FIND_CARD, p.SELECT_CARD, p.READ_BASE, p.READ_ADDRESS]
    health = reader.health()
    assert health.kind == "id_reader" and health.state is DeviceState.OK
    assert health.detail["card"] == "read" and health.detail["reads"] == 1


def test_a_card_that_stays_is_not_read_again_and_removal_is_seen(
    sim: SamSimulator, reader: SamReader, events, wait_until
) -> None:
    events.wait_for(ReaderConnected)
    sim.insert(DEMO_RESIDENT)
    events.wait_for(IdentityRead)
    polls = len(sim.commands())
    wait_until(lambda: len(sim.commands()) > polls + 20)  # many polls with the card staying
    assert reader.reads == 1 and sim.commands().count(p.READ_BASE) == 1
    assert events.count(CardInserted) == 1 and events.count(CardRemoved) == 0
    sim.remove()
    events.wait_for(CardRemoved)
    sim.insert(DEMO_FOREIGN)  # the next resident's card is read afresh
    read = events.wait_for(IdentityRead)
    assert read.identity.card_type is CardType.FOREIGN_PERMANENT and reader.reads == 2
    assert p.READ_ADDRESS not in sim.commands()[-3:]  # residents' cards only


def test_a_new_session_reads_the_card_that_stayed(
    sim: SamSimulator, reader: SamReader, events, wait_until
) -> None:
    """The card left by one resident (or placed before the session began) is read again when
    the next session asks (issue 20), without being taken away first."""
    events.wait_for(ReaderConnected)
    reader.read_again()  # no card: nothing happens, and nothing is remembered for later
    n = len(sim.commands())
    wait_until(lambda: len(sim.commands()) > n + 5)
    sim.insert(DEMO_RESIDENT)
    events.wait_for(IdentityRead)
    assert reader.reads == 1
    n = len(sim.commands())
    wait_until(lambda: len(sim.commands()) > n + 10)
    assert reader.reads == 1  # it stays: not read again on its own
    reader.read_again()
    wait_until(lambda: events.count(IdentityRead) == 2)
    assert events.kinds()[-2:] == ["CardInserted", "IdentityRead"] and reader.reads == 2
    assert events.count(CardRemoved) == 0


def test_a_halting_module_reads_the_card_that_stayed(
    tmp_path: Path, make_reader: Callable[..., SamReader], events, wait_until
) -> None:
    sim = SamSimulator(link_path=tmp_path / "sam", halt_after_read=True)
    sim.start()
    try:
        reader = make_reader(str(tmp_path / "sam"))
        events.wait_for(ReaderConnected)
        sim.insert(DEMO_RESIDENT)
        events.wait_for(IdentityRead)
        reader.read_again()  # find card says no now; select still says yes
        wait_until(lambda: events.count(IdentityRead) == 2)
        assert events.count(CardRemoved) == 0
    finally:
        sim.stop()


def test_removal_is_debounced(sim: SamSimulator, reader: SamReader, events, wait_until) -> None:
    events.wait_for(ReaderConnected)
    sim.insert(DEMO_RESIDENT)
    events.wait_for(IdentityRead)
    for _ in range(5):  # one "no card" answer now and then (the card flickers in the field)
        sim.answer_next(p.CardNotFound.code, p.FIND_CARD)
        sim.answer_next(p.CardSelectFailed.code, p.SELECT_CARD)
        n = len(sim.commands())
        wait_until(lambda n=n: len(sim.commands()) > n + 4)
    assert events.count(CardRemoved) == 0 and reader.reads == 1


def test_a_module_that_stops_finding_a_read_card_keeps_it_present(
    tmp_path: Path, make_reader: Callable[..., SamReader], events, wait_until
) -> None:
    sim = SamSimulator(link_path=tmp_path / "sam", halt_after_read=True)
    sim.start()
    try:
        make_reader(str(tmp_path / "sam"))
        events.wait_for(ReaderConnected)
        sim.insert(DEMO_RESIDENT)
        events.wait_for(IdentityRead)
        n = len(sim.commands())
        wait_until(lambda: len(sim.commands()) > n + 20)
        assert events.count(CardRemoved) == 0  # find says no, select says yes: still there
        sim.remove()
        events.wait_for(CardRemoved)
    finally:
        sim.stop()


def test_the_latest_appended_address_replaces_the_printed_one(
    sim: SamSimulator, reader: SamReader, events
) -> None:
    events.wait_for(ReaderConnected)
    sim.insert(DEMO_RESIDENT, appended_address="江苏省南京市玄武区示例路1号")
    read = events.wait_for(IdentityRead)
    assert read.identity.address == "江苏省南京市玄武区示例路1号"


@pytest.mark.parametrize("fault", ["bad_checksum", "garbage", "partial", "silence"])
def test_wire_faults_are_resynchronised(
    sim: SamSimulator, reader: SamReader, events, fault: str
) -> None:
    events.wait_for(ReaderConnected)
    sim.insert(DEMO_RESIDENT)
    for _ in range(2):  # spoil the answers to find card and select card
        sim.inject(fault)
    read = events.wait_for(IdentityRead)
    assert read.identity.name == DEMO_RESIDENT.name
    assert events.count(CardInserted) == 1 and events.count(DeviceFault) == 0
    assert reader.health().state is DeviceState.OK


def test_garbage_before_the_big_frame_is_skipped(
    sim: SamSimulator, reader: SamReader, events, wait_until
) -> None:
    events.wait_for(ReaderConnected)
    sim.inject("partial", p.READ_BASE)  # half of the 1,300-byte answer, then nothing more
    sim.inject("bad_checksum", p.READ_BASE)
    sim.inject("garbage", p.READ_BASE)  # junk before the whole answer: skipped in place
    sim.insert(DEMO_RESIDENT)
    events.wait_for(IdentityRead)
    assert sim.commands().count(p.READ_BASE) == 3  # two retried, garbage skipped
    assert events.count(DeviceFault) == 0


def test_a_transient_read_failure_is_retried_silently(
    sim: SamSimulator, reader: SamReader, events
) -> None:
    events.wait_for(ReaderConnected)
    sim.answer_next(p.CardReadFailed.code, p.READ_BASE)  # the card moved while being placed
    sim.insert(DEMO_RESIDENT)
    events.wait_for(IdentityRead)
    assert events.count(DeviceFault) == 0 and events.count(CardInserted) == 1


def test_every_status_code_reaches_the_flow_as_its_translation_key(
    sim: SamSimulator, reader: SamReader, events
) -> None:
    events.wait_for(ReaderConnected)
    for code, cls in sorted(p.STATUS_ERRORS.items()):
        for _ in range(reader.read_attempts):
            sim.answer_next(code, p.READ_BASE)
        sim.insert(DEMO_RESIDENT)
        fault = events.wait_for(DeviceFault)
        assert (fault.translation_key, fault.detail) == (cls.translation_key, cls.__name__)
        sim.remove()
        events.wait_for(CardRemoved)
    assert reader.reads == 0 and events.count(IdentityRead) == 0


def test_a_card_that_fails_every_time_is_reported_once_until_placed_again(
    sim: SamSimulator, reader: SamReader, events, wait_until
) -> None:
    events.wait_for(ReaderConnected)
    wrong = DEMO_RESIDENT.id_number[:-1] + ("1" if DEMO_RESIDENT.id_number[-1] != "1" else "2")
    sim.insert(encode_base_info(dataclasses.replace(DEMO_RESIDENT, id_number=wrong)))
    fault = events.wait_for(DeviceFault)
    assert fault.detail == "InvalidIdNumber" and fault.translation_key == "error.sam.read_failed"
    n = len(sim.commands())
    wait_until(lambda: len(sim.commands()) > n + 20)
    assert events.count(DeviceFault) == 1
    assert sim.commands().count(p.READ_BASE) == reader.read_attempts


def test_module_faults_show_in_health_and_clear(
    sim: SamSimulator, reader: SamReader, events, wait_until
) -> None:
    events.wait_for(ReaderConnected)
    for _ in range(3):
        sim.answer_next(p.SamNotAuthorised.code, p.FIND_CARD)
    wait_until(lambda: reader.health().reasons == ("sam_status_66",))
    assert reader.health().state is DeviceState.FAULT
    wait_until(lambda: reader.health().state is DeviceState.OK)


def test_a_silent_module_is_a_fault_and_recovers(
    sim: SamSimulator, reader: SamReader, events, wait_until
) -> None:
    events.wait_for(ReaderConnected)
    sim.mute()
    fault = events.wait_for(DeviceFault)
    assert fault.translation_key == "error.sam.module" and fault.detail == "no_answer"
    assert reader.health().state is DeviceState.FAULT
    assert reader.health().reasons == ("no_answer",)
    sim.mute(False)
    wait_until(lambda: reader.health().state is DeviceState.OK)
    sim.insert(DEMO_RESIDENT)
    events.wait_for(IdentityRead)


def test_unplug_and_replug_mid_session(
    sim: SamSimulator, reader: SamReader, events, wait_until
) -> None:
    events.wait_for(ReaderConnected)
    sim.insert(DEMO_RESIDENT)
    events.wait_for(IdentityRead)
    sim.unplug()
    events.wait_for(ReaderDisconnected)
    assert events.kinds()[-2:] == ["CardRemoved", "ReaderDisconnected"]  # no stale session
    wait_until(lambda: reader.health().state is DeviceState.OFFLINE)
    time.sleep(0.3)  # several reconnection attempts: announced once
    assert events.count(ReaderDisconnected) == 1
    sim.replug()  # a new pty; the by-id style link follows it
    assert sim.port  # maybe another /dev/pts number: only the link is stable
    events.wait_for(ReaderConnected)
    read = events.wait_for(IdentityRead)  # the card still on the reader is read afresh
    assert read.identity.id_number == DEMO_RESIDENT.id_number
    sim.remove()
    events.wait_for(CardRemoved)
    sim.insert(DEMO_FOREIGN)
    assert events.wait_for(IdentityRead).identity.card_type is CardType.FOREIGN_PERMANENT
    assert reader.health().state is DeviceState.OK


def test_a_reader_that_is_not_there_yet_is_offline_then_connects(
    tmp_path: Path, make_reader: Callable[..., SamReader], events
) -> None:
    link = tmp_path / "later"
    reader = make_reader(str(link))
    disconnected = events.wait_for(ReaderDisconnected)
    assert disconnected.reason == "not_connected"
    assert reader.health().state is DeviceState.OFFLINE
    sim = SamSimulator(link_path=link)
    sim.start()
    try:
        events.wait_for(ReaderConnected)
        sim.insert(DEMO_RESIDENT)
        events.wait_for(IdentityRead)
    finally:
        sim.stop()


def test_the_port_is_opened_exclusively(
    sim: SamSimulator, reader: SamReader, make_reader: Callable[..., SamReader], events, wait_until
) -> None:
    events.wait_for(ReaderConnected)
    second = make_reader(sim.port, name="second")
    wait_until(lambda: second.health().reasons == ("port_busy",))
    assert second.health().state is DeviceState.FAULT


def test_stop_is_prompt_even_while_waiting_for_an_answer(
    sim: SamSimulator, make_reader: Callable[..., SamReader], events
) -> None:
    reader = make_reader(sim.port, io_timeout_s=5.0)
    events.wait_for(ReaderConnected)
    sim.mute()
    time.sleep(0.2)  # the reader is now inside a 5-second wait for an answer
    t0 = time.monotonic()
    reader.stop()
    assert time.monotonic() - t0 < 2.0
    assert reader._serial is None  # the port is closed


def test_logs_hold_no_personal_data(
    sim: SamSimulator, reader: SamReader, events, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="kiosk")
    events.wait_for(ReaderConnected)
    sim.inject("garbage")
    sim.insert(DEMO_RESIDENT, appended_address="江苏省南京市玄武区示例路1号")
    events.wait_for(IdentityRead)
    sim.remove()
    events.wait_for(CardRemoved)
    assert "kiosk.wire.sam" in {r.name for r in caplog.records}
    text = (
        "\n".join(f"{r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records)
        + caplog.text
    )
    flat = text.replace(" ", "").lower()
    for secret in (DEMO_RESIDENT.name, DEMO_RESIDENT.id_number, DEMO_RESIDENT.address[:8]):
        assert secret not in text
        for encoded in (secret.encode("utf-16-le"), secret.encode("utf-8")):
            assert encoded.hex() not in flat
            assert repr(encoded)[2:-1] not in text


@pytest.mark.hardware
def test_a_real_reader_reads_a_real_card(make_reader: Callable[..., SamReader], events) -> None:
    """With a GA 467 reader on KIOSK_SAM_PORT: place a card within 30 s, leave it 5 s, lift it.

    Checks on hardware what the simulator assumes: a card that stays is not reported removed.
    """
    import os

    port = os.environ.get("KIOSK_SAM_PORT", "/dev/ttyUSB0")
    make_reader(port, poll_s=0.1, io_timeout_s=1.0)
    events.wait_for(ReaderConnected, timeout=10)
    read = events.wait_for(IdentityRead, timeout=30)
    assert read.identity.id_number  # the parser has checked its check character
    time.sleep(5)
    assert events.count(CardRemoved) == 0
    events.wait_for(CardRemoved, timeout=30)
