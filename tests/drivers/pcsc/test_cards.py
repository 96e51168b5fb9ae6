"""Cards as they are in the field: every card behaviour is read through the real pcscd.

Each behaviour of the virtual card (:data:`drivers.pcsc.vicc.BEHAVIOURS`) runs the identity
matrix (the synthetic residents: both sexes, two nations, a long-term and a dated card) against
the stock social security profile; the driver knows no behaviour by name.
"""

from __future__ import annotations

import dataclasses
import queue
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.pcsc import apdu as iso
from drivers.pcsc.profiles import SOCIAL_SECURITY, load_profile
from drivers.pcsc.reader import PcscReader
from drivers.pcsc.reading import ProfileReading
from drivers.pcsc.vicc import BEHAVIOURS, VirtualCard
from flows.errors import ConfigError
from flows.models import (
    CardRemoved,
    CardType,
    DeviceEvent,
    DeviceFault,
    Identity,
    IdentityRead,
    ReaderConnected,
)
from flows.synthetic import DEMO_RESIDENT, SYNTHETIC_RESIDENTS
from sandbox.pcscd import Pcscd, usable

from .test_pcsc import wait_for

AID = "00A404000F7378312E73682EC9E7BBE1B1A3D5CF"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pcscd]:
    why = usable()
    if why:
        pytest.skip(why)
    d = Pcscd(tmp_path_factory.mktemp("pcscd"))
    d.start()
    yield d
    d.stop()


@pytest.fixture
def events() -> queue.Queue[DeviceEvent]:
    return queue.Queue()


@pytest.fixture
def reader(daemon: Pcscd, events: queue.Queue[DeviceEvent]) -> Iterator[PcscReader]:
    r = PcscReader(reader_prefix="Virtual PCD", wait_ms=200, max_backoff_s=0.5)
    r.start(events.put)
    wait_for(events, ReaderConnected)
    yield r
    r.stop()


def read(
    daemon: Pcscd, events: queue.Queue[DeviceEvent], identity: Identity, behaviour: str
) -> tuple[Identity, list[bytes]]:
    card = VirtualCard(daemon.port, identity, behaviour=BEHAVIOURS[behaviour])
    card.insert()
    try:
        event = wait_for(events, IdentityRead)
    finally:
        card.remove()
    wait_for(events, CardRemoved)
    assert isinstance(event, IdentityRead)
    return event.identity, card.apdus


def same_person(got: Identity, want: Identity) -> None:
    assert got.card_type is CardType.SOCIAL_SECURITY
    assert (got.name, got.id_number, got.sex, got.nation) == (
        want.name,
        want.id_number,
        want.sex,
        want.nation,
    )
    assert (got.birth_date, got.valid_to) == (want.birth_date, want.valid_to)


@pytest.mark.parametrize("behaviour", sorted(BEHAVIOURS))
def test_every_card_behaviour_reads_every_resident(
    daemon: Pcscd, reader: PcscReader, events: queue.Queue[DeviceEvent], behaviour: str
) -> None:
    for person in SYNTHETIC_RESIDENTS:
        got, _ = read(daemon, events, person, behaviour)
        same_person(got, person)
    assert reader.reads == len(SYNTHETIC_RESIDENTS)
    expected = "T=1" if BEHAVIOURS[behaviour].atr[1] == 0x81 else "T=0"
    assert reader.health().detail["protocol"] == expected


def selects(apdus: list[bytes]) -> list[str]:
    return [a.hex().upper() for a in apdus if a[1] == 0xA4 and a[2] != 0x04]


def test_a_card_accepting_only_p1_02_is_read_as_the_field_reads_it(
    daemon: Pcscd, reader: PcscReader, events: queue.Queue[DeviceEvent]
) -> None:
    got, apdus = read(daemon, events, DEMO_RESIDENT, "p1_02_only")
    same_person(got, DEMO_RESIDENT)
    assert selects(apdus) == ["00A4020002EF06", "00A4020002EF05"]  # no refused attempt


def test_a_card_accepting_only_p1_00_costs_one_refusal_once(
    daemon: Pcscd, reader: PcscReader, events: queue.Queue[DeviceEvent]
) -> None:
    got, apdus = read(daemon, events, DEMO_RESIDENT, "p1_00_only")
    same_person(got, DEMO_RESIDENT)
    assert selects(apdus) == ["00A4020002EF06", "00A4000002EF06", "00A4000002EF05"]
    assert reader.health().detail["select"][0] == "by_id"  # learnt for the next card
    got, apdus = read(daemon, events, DEMO_RESIDENT, "p1_00_only")
    assert selects(apdus) == ["00A4000002EF06", "00A4000002EF05"]


def test_a_card_answering_select_aid_with_fci_and_9000(
    daemon: Pcscd, reader: PcscReader, events: queue.Queue[DeviceEvent]
) -> None:
    got, apdus = read(daemon, events, DEMO_RESIDENT, "fci_9000")
    same_person(got, DEMO_RESIDENT)
    assert apdus[0].hex().upper() == AID + "00"
    assert apdus[1].hex().upper() == "00A4020002EF06"  # no GET RESPONSE: the FCI came at once


def test_a_card_needing_le_equal_to_the_record_length(
    daemon: Pcscd, reader: PcscReader, events: queue.Queue[DeviceEvent]
) -> None:
    got, apdus = read(daemon, events, DEMO_RESIDENT, "exact_le")
    same_person(got, DEMO_RESIDENT)
    reads = [a.hex().upper() for a in apdus if a[1] == 0xB2]
    # Le = 00 answered 6700 without a length: re-sent with the profile's record length
    assert reads[:4] == ["00B2080400", "00B2080414", "00B2090400", "00B2090420"]


def test_a_card_refusing_every_select_form_is_unsupported(
    daemon: Pcscd, reader: PcscReader, events: queue.Queue[DeviceEvent]
) -> None:
    card = VirtualCard(daemon.port, DEMO_RESIDENT, behaviour=BEHAVIOURS["path_only"])
    reader.reading = ProfileReading(dataclasses.replace(SOCIAL_SECURITY, select_forms=("in_df",)))
    card.insert()
    fault = wait_for(events, DeviceFault)
    card.remove()
    assert isinstance(fault, DeviceFault) and fault.translation_key == "error.card.unsupported"


def test_a_profile_file_sets_the_select_order_and_record_lengths(tmp_path: Path) -> None:
    path = tmp_path / "province.toml"
    path.write_text(
        'aid = "7378312E73682EC9E7BBE1B1A3D5CF"\nselect = ["by_id", "in_df"]\n'
        '[[fields]]\nfield = "id_number"\nfid = "EF06"\nrecord = 8\nlength = 18\n'
        '[[fields]]\nfield = "name"\nfid = "EF06"\nrecord = 9\nencoding = "gbk"\n'
    )
    profile = load_profile(path)
    assert profile.select_forms == ("by_id", "in_df")
    assert profile.record_length(8) == 20 and profile.record_length(9) == 0
    path.write_text(path.read_text().replace('"by_id", "in_df"', '"by_name"'))
    with pytest.raises(ConfigError, match="select: a list of distinct SELECT forms"):
        load_profile(path)


def test_padding_of_every_kind_is_stripped_without_cutting_a_character() -> None:
    from drivers.pcsc.profiles import decode

    name = DEMO_RESIDENT.name.encode("gbk")
    for pad in (b" ", b"\x00", b"\xff"):
        assert decode(name + pad * 24, "gbk") == DEMO_RESIDENT.name
        assert decode(b"A12345678" + pad * 3, "ascii") == "A12345678"


def test_chained_answers_are_gathered_within_the_round_limit() -> None:
    record = bytes([0x09, 30]) + "张秀英".encode("gbk").ljust(30, b" ")
    pieces = [record[i : i + 8] for i in range(0, len(record), 8)]
    answers = iter(
        [(b"", 0x6C, len(record)), (b"", 0x61, 8)]
        + [
            (piece, 0x61 if i < len(pieces) - 1 else 0x90, 8 if i < len(pieces) - 1 else 0)
            for i, piece in enumerate(pieces)
        ]
    )
    sent: list[bytes] = []

    def transmit(command: bytes) -> tuple[bytes, int, int]:
        sent.append(command)
        return next(answers)

    assert iso.exchange(transmit, iso.read_record(9)) == record
    assert sent[1] == bytes.fromhex("00B2090420") and sent[2] == bytes.fromhex("00C0000008")
