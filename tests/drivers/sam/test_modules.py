"""Modules as they are in the field: every module profile of the simulator runs the identity matrix.

The driver knows no profile by name; it must learn what the module on its port can do. Each
profile reads every synthetic card (a resident with an appended address, residents without,
a residence permit, foreign permanent residents of both editions) through a real pty.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from drivers.sam import protocol as p
from drivers.sam.cards import PLACEHOLDER_PHOTO
from drivers.sam.modules import PROFILES, ModuleProfile
from drivers.sam.reader import SamReader
from drivers.sam.simulator import SamSimulator
from flows.models import (
    CardRemoved,
    CardType,
    DeviceFault,
    DeviceState,
    Identity,
    IdentityRead,
    ReaderConnected,
)
from flows.synthetic import DEMO_RESIDENT, SYNTHETIC_CARDS

APPENDED = "江苏省南京市玄武区示例路1号"


@pytest.fixture
def module(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SamSimulator]:
    sim = SamSimulator(link_path=tmp_path / "sam", profile=PROFILES[request.param])
    sim.start()
    yield sim
    sim.stop()


def expected(card: Identity, profile: ModuleProfile, appended: str) -> Identity:
    address = card.address
    if appended and "appended_address" not in profile.lacks:
        address = appended
    return dataclasses.replace(card, photo=PLACEHOLDER_PHOTO, address=address)


def read_card(module: SamSimulator, events, card: Identity, appended: str = "") -> Identity:
    module.insert(card, appended_address=appended)
    read = events.wait_for(IdentityRead, timeout=10)
    module.remove()
    events.wait_for(CardRemoved, timeout=10)
    return read.identity


@pytest.mark.parametrize("module", sorted(PROFILES), indirect=True)
def test_every_module_profile_reads_every_card(
    module: SamSimulator, make_reader: Callable[..., SamReader], events
) -> None:
    profile = module.profile
    reader = make_reader(str(module.link_path), baud=115200)
    events.wait_for(ReaderConnected, timeout=10)
    for key, card in SYNTHETIC_CARDS.items():
        appended = APPENDED if key == "demo" else ""
        got = read_card(module, events, card, appended)
        want = expected(card, profile, appended)
        for field in dataclasses.fields(want):
            assert getattr(got, field.name) == getattr(want, field.name), (key, field.name)
    assert events.count(DeviceFault) == 0 and reader.reads == len(SYNTHETIC_CARDS)

    health = reader.health()
    lacking = {name for name, answer in profile.lacks.items() if answer != "91"}
    if profile.baud == 115200:
        lacking.discard("set_baud")  # never needed, never asked
    assert health.state is DeviceState.OK
    assert health.reasons == tuple(f"lacks_{name}" for name in sorted(lacking))
    assert set(health.detail["lacks"]) == lacking
    switched = profile.baud == 115200 or "set_baud" not in profile.lacks
    assert health.detail["baud"] == (115200 if switched else profile.baud)
    assert health.detail["no_card_answer"] == ("silence" if profile.silent_when_empty else "80")
    assert bool(health.detail["module_id"]) == ("sam_id" not in profile.lacks)
    # learnt once for the session of the port: a missing command is not asked card after card
    commands = module.commands()
    residents = sum(c.card_type is CardType.RESIDENT for c in SYNTHETIC_CARDS.values())
    asked = commands.count(p.READ_ADDRESS)
    assert asked == (1 if "appended_address" in lacking else residents)
    assert commands.count(p.SAM_ID) == 1


@pytest.mark.parametrize("module", ["no_address_21", "no_address_silent"], indirect=True)
def test_a_module_without_the_appended_address_yields_the_base_read(
    module: SamSimulator, make_reader: Callable[..., SamReader], events
) -> None:
    """Issue 19, done-when 1: 21 (or silence) to 30 03 costs nothing but the appended address."""
    reader = make_reader(str(module.link_path))
    events.wait_for(ReaderConnected)
    first = read_card(module, events, DEMO_RESIDENT, APPENDED)
    again = read_card(module, events, DEMO_RESIDENT, APPENDED)
    assert first.address == again.address == DEMO_RESIDENT.address  # printed on the card
    assert (first.name, first.id_number) == (DEMO_RESIDENT.name, DEMO_RESIDENT.id_number)
    assert events.count(DeviceFault) == 0 and reader.reads == 2
    assert module.commands().count(p.READ_ADDRESS) == 1  # the second card is not asked
    health = reader.health()
    assert health.state is DeviceState.OK and health.reasons == ("lacks_appended_address",)
    how = module.profile.lacks["appended_address"]
    assert health.detail["lacks"] == {"appended_address": how}
    assert health.as_dict()["reasons"] == ["lacks_appended_address"]  # what the agent sends


@pytest.mark.parametrize("module", ["no_address_21"], indirect=True)
def test_capabilities_are_learnt_again_after_a_replug(
    module: SamSimulator, make_reader: Callable[..., SamReader], events, wait_until
) -> None:
    reader = make_reader(str(module.link_path))
    events.wait_for(ReaderConnected)
    read_card(module, events, DEMO_RESIDENT)
    module.unplug()
    wait_until(lambda: reader.health().state is DeviceState.OFFLINE)
    assert not any(r.startswith("lacks_") for r in reader.health().reasons)  # offline says so
    module.replug()  # maybe another module: ask again
    events.wait_for(ReaderConnected)
    read_card(module, events, DEMO_RESIDENT)
    assert module.commands().count(p.READ_ADDRESS) == 2
    assert reader.health().reasons == ("lacks_appended_address",)


def test_a_card_pulled_during_the_appended_address_is_not_a_missing_command(
    sim: SamSimulator, reader: SamReader, events
) -> None:
    events.wait_for(ReaderConnected)
    sim.answer_next(p.CardReadFailed.code, p.READ_ADDRESS)  # the card moved: read again
    sim.insert(DEMO_RESIDENT, appended_address=APPENDED)
    read = events.wait_for(IdentityRead)
    assert read.identity.address == APPENDED
    assert sim.commands().count(p.READ_BASE) == 2
    assert reader.health().reasons == ()


@pytest.mark.parametrize("module", ["silent_when_empty"], indirect=True)
def test_a_module_silent_when_empty_is_alive_but_a_muted_one_is_a_fault(
    module: SamSimulator, make_reader: Callable[..., SamReader], events, wait_until
) -> None:
    reader = make_reader(str(module.link_path))
    events.wait_for(ReaderConnected)
    n = len(module.commands())
    wait_until(lambda: len(module.commands()) > n + 6)
    assert reader.health().state is DeviceState.OK  # find unanswered, status answered
    module.mute()
    fault = events.wait_for(DeviceFault, timeout=10)
    assert fault.detail == "no_answer"


@pytest.mark.parametrize("module", ["baud_9600"], indirect=True)
def test_a_module_at_9600_is_found_and_switched_to_the_configured_rate(
    module: SamSimulator, make_reader: Callable[..., SamReader], events
) -> None:
    reader = make_reader(str(module.link_path), baud=115200)
    events.wait_for(ReaderConnected, timeout=10)
    assert module.baud == 115200 and reader.line_baud == 115200
    assert p.baud_command(115200) in module.commands()
    read_card(module, events, DEMO_RESIDENT)


@pytest.mark.parametrize("module", ["baud_9600_fixed"], indirect=True)
def test_without_probing_a_module_at_another_rate_is_not_found(
    module: SamSimulator, make_reader: Callable[..., SamReader], events, wait_until
) -> None:
    reader = make_reader(str(module.link_path), baud=115200, probe_baud=False)
    wait_until(lambda: reader.health().reasons == ("no_answer",))
    assert module.commands() == []  # nothing was understood at the wrong rate
