"""Every transition the chart declares, driven through the Session's API with a fake clock."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from flows.catalog import load_catalog
from flows.models import CardType, Identity, JobState, PrintOutcome
from flows.session import TIMEOUTS_S, JournalFinish, Session, SessionChart

CATALOG = load_catalog(Path(__file__).resolve().parents[2] / "assets" / "catalog" / "demo.toml")
PERSON = Identity(CardType.RESIDENT, name="王小明", id_number="11010519491231002X")
ALL_DOWN = {s.code: "unavailable.thermal_printer" for s in CATALOG.services}


class Rig:
    def __init__(self) -> None:
        self.now = 0.0
        self.session = Session(CATALOG, clock=lambda: self.now)

    def to(self, state: str) -> None:
        """Drive the session to ``state`` the way a resident and the devices would."""
        s = self.session
        if state == "out_of_order":
            s.set_unavailable(ALL_DOWN)
            return
        if state == "idle":
            return
        if state in ("unlock", "maintenance"):
            s.on_open_maintenance()
            if state == "maintenance":
                s.on_unlocked()
            return
        s.on_start()
        if state == "identify":
            return
        s.on_identity(PERSON)
        if state == "choose":
            return
        if state == "notice":
            s.on_pick("food_licence_renewal_checklist")
            return
        s.on_pick("social_insurance_certificate")
        s.on_preview_ready()
        if state == "preview":
            return
        s.on_confirm()
        if state == "printing":
            return
        s.on_printed(PrintOutcome(JobState.COMPLETED), ("a4", "thermal"))
        if state == "rate":
            return
        s.on_rate(4)
        if state == "take_card":
            return
        s.on_card_removed()
        assert state == "thanks"

    def expire(self) -> list[object]:
        self.now += TIMEOUTS_S[self.session.state] + 1
        return list(self.session.on_tick())


def fire(rig: Rig, event: str, source: str) -> list[object]:
    s = rig.session
    actions: dict[str, Callable[[], list[object]]] = {
        "break_down": lambda: list(s.set_unavailable(ALL_DOWN)),
        "back_in_service": lambda: list(s.set_unavailable({})),
        "start": lambda: list(s.on_start()),
        "identified": lambda: list(s.on_identity(PERSON)),
        "skip_identity": lambda: list(s.on_skip_identity()),
        "pick": lambda: list(s.on_pick("social_insurance_certificate")),
        "pick_notice": lambda: list(s.on_pick("disability_certificate_checklist")),
        "back": lambda: list(s.on_back()),
        "fetch_failed": lambda: list(s.on_fetch_failed("error.provider.unavailable")),
        "confirm": lambda: list(s.on_confirm()),
        "printed": lambda: list(s.on_printed(PrintOutcome(JobState.COMPLETED), ("a4",))),
        "rated": lambda: list(s.on_rate(3, ("complicated",))),
        "skip_rating": lambda: list(s.on_skip_rating()),
        "cancel": lambda: list(s.on_cancel()),
        "timeout": rig.expire,
        "card_removed": lambda: list(s.on_card_removed()),
        "open_maintenance": lambda: list(s.on_open_maintenance()),
        "unlocked": lambda: list(s.on_unlocked()),
        "close_maintenance": lambda: list(s.on_close_maintenance()),
    }
    return actions[event]()


TRANSITIONS = [
    (t.source.id, t.target.id, e.id)
    for state in SessionChart().states
    for t in state.transitions
    for e in t.events
]


def test_the_chart_is_what_the_tests_cover() -> None:
    assert len(TRANSITIONS) == 51
    assert {state.id for state in SessionChart().states} == {
        "idle",
        "out_of_order",
        "identify",
        "choose",
        "notice",
        "preview",
        "printing",
        "rate",
        "take_card",
        "thanks",
        "unlock",
        "maintenance",
    }


@pytest.mark.parametrize(("source", "target", "event"), TRANSITIONS)
def test_every_transition(source: str, target: str, event: str) -> None:
    rig = Rig()
    rig.to(source)
    assert rig.session.state == source
    # the guards: the card is on the reader when the transition goes to take_card
    if target == "take_card" and source == "identify":
        rig.session.on_card_inserted()
    elif source in ("choose", "notice", "preview", "rate") and target != "take_card":
        rig.session.chart.card_on_reader = False  # a session whose card was taken meanwhile
    if source == "take_card" and target == "idle":
        rig.session.chart.thank_after = False  # a session that ended by cancel or timeout
    effects = fire(rig, event, source)
    assert rig.session.state == target
    if target in ("idle", "out_of_order", "take_card", "thanks"):
        assert rig.session.identity is None and rig.session.txn_id is None
    if source in ("identify", "choose", "notice", "preview") and target in ("idle", "take_card"):
        [finish] = [e for e in effects if isinstance(e, JournalFinish)]
        assert finish.outcome == "abandoned" and finish.abandoned_state == source
        assert finish.reason == event


def test_elder_mode_doubles_every_timeout() -> None:
    for state, seconds in TIMEOUTS_S.items():
        rig = Rig()
        rig.session.set_elder(True)  # chosen on the home screen, kept for the session
        rig.to(state)
        rig.now += seconds + 1
        rig.session.on_tick()
        assert rig.session.state == state, f"{state} timed out before twice its limit"
        rig.now += seconds
        rig.session.on_tick()
        assert rig.session.state in ("idle", "take_card")
