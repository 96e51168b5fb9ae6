"""The session state chart, driven without a screen or a device, with a fake clock."""

from __future__ import annotations

from pathlib import Path

import pytest
from statemachine.exceptions import TransitionNotAllowed

from flows.catalog import load_catalog
from flows.models import CardType, Identity, JobState, PrintOutcome
from flows.session import (
    TIMEOUTS_S,
    WARN_BEFORE_S,
    BuildPreview,
    JournalBegin,
    JournalFinish,
    JournalRate,
    JournalUpdate,
    PrintDocuments,
    ReadCard,
    Session,
    Show,
    Speak,
)

CATALOG = load_catalog(Path(__file__).resolve().parents[2] / "assets" / "catalog" / "demo.toml")
PERSON = Identity(CardType.RESIDENT, name="王小明", id_number="11010519491231002X")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def session(clock: FakeClock) -> Session:
    return Session(CATALOG, clock=clock)


def shows(effects: list[object]) -> list[str]:
    return [e.screen for e in effects if isinstance(e, Show)]


def to_preview(session: Session, code: str = "social_insurance_certificate") -> None:
    session.on_start()
    session.on_identity(PERSON)
    session.on_pick(code)
    session.on_preview_ready()


def test_happy_path_emits_effects_in_order(session: Session, clock: FakeClock) -> None:
    effects = session.on_start()
    assert isinstance(effects[0], JournalBegin)
    assert shows(effects) == ["identify"]
    assert Speak("prompt.identify") in effects

    effects = session.on_identity(PERSON)
    assert shows(effects) == ["choose"]
    assert session.view.masked_name == "王**"
    assert session.view.masked_id_number == "1101**********002X"
    update = next(e for e in effects if isinstance(e, JournalUpdate))
    assert update.identity_hash is not None and PERSON.id_number not in update.identity_hash

    effects = session.on_pick("social_insurance_certificate")
    assert shows(effects) == ["preview"]
    build = next(e for e in effects if isinstance(e, BuildPreview))
    assert build.identity is PERSON and build.selection.code == "social_insurance_certificate"
    assert session.on_confirm() == []  # nothing to print until the preview is built
    session.on_preview_ready()

    effects = session.on_confirm()
    assert shows(effects) == ["printing"]
    job = next(e for e in effects if isinstance(e, PrintDocuments))
    assert job.identity is PERSON and job.selection.code == "social_insurance_certificate"

    effects = session.on_printed(PrintOutcome(JobState.COMPLETED), ("a4", "thermal"))
    finish = next(e for e in effects if isinstance(e, JournalFinish))
    assert finish.outcome == "completed" and finish.outputs == ("a4", "thermal")
    assert shows(effects) == ["rate"]

    effects = session.on_rate(5)
    assert JournalRate(finish.txn_id, 5, ()) in effects
    assert session.state == "take_card"  # the card is still on the reader: asked for first
    assert session.identity is None and session.txn_id is None

    effects = session.on_card_removed()
    assert shows(effects) == ["thanks"] and Speak("prompt.thanks") in effects
    clock.now += TIMEOUTS_S["thanks"] + 0.1
    assert shows(session.on_tick()) == ["idle"]


def test_failed_print_is_recorded_and_spoken(session: Session) -> None:
    to_preview(session)
    session.on_confirm()
    outcome = PrintOutcome(JobState.FAILED, translation_key="error.a4.paper_out")
    effects = session.on_printed(outcome, ())
    finish = next(e for e in effects if isinstance(e, JournalFinish))
    assert finish.outcome == "failed" and finish.reason == "error.a4.paper_out"
    assert Speak("error.a4.paper_out") in effects
    assert session.view.print_ok is False
    assert session.view.print_error_key == "error.a4.paper_out"


@pytest.mark.parametrize("state", ["identify", "choose", "preview", "notice"])
def test_cancel_from_anywhere_wipes_identity_and_records_where(
    session: Session, state: str
) -> None:
    session.on_start()
    if state != "identify":
        session.on_identity(PERSON)
    if state == "preview":
        session.on_pick("queue_ticket")
    if state == "notice":
        session.on_pick("disability_certificate_checklist")
    assert session.state == state
    effects = session.on_cancel()
    finish = next(e for e in effects if isinstance(e, JournalFinish))
    assert (finish.outcome, finish.abandoned_state, finish.reason) == ("abandoned", state, "cancel")
    card = state != "identify"  # the card read is still on the reader: it is asked for
    assert session.state == ("take_card" if card else "idle") and session.identity is None
    assert session.view.masked_name == ""


def test_card_removed_ends_session_before_printing(session: Session) -> None:
    to_preview(session)
    effects = session.on_card_removed()
    finish = next(e for e in effects if isinstance(e, JournalFinish))
    assert finish.reason == "card_removed" and finish.abandoned_state == "preview"
    assert session.identity is None and session.state == "idle"


def test_card_removed_while_printing_does_not_stop_the_paper(session: Session) -> None:
    to_preview(session)
    session.on_confirm()
    assert session.on_card_removed() == []
    assert session.state == "printing"


def test_card_left_on_the_reader_is_asked_for_until_taken(
    session: Session, clock: FakeClock
) -> None:
    to_preview(session)
    session.on_confirm()
    session.on_printed(PrintOutcome(JobState.COMPLETED), ("a4", "thermal"))
    session.set_lang("en")
    effects = session.on_rate(4, ("slow",))
    assert shows(effects) == ["take_card"] and Speak("prompt.take_card") in effects
    view = session.view
    assert (view.screen, view.lang, view.card_on_reader) == ("take_card", "en", True)
    assert view.masked_name == "" and session.identity is None  # the session's data is gone
    assert view.prompt_key == "prompt.take_card"
    # it never times out; it is asked for again, spoken, while the card stays
    clock.now += 3600
    assert session.on_tick() == [Speak("prompt.take_card")]
    assert session.on_tick() == []
    clock.now += 20
    assert session.on_tick() == [Speak("prompt.take_card")]
    assert session.state == "take_card"
    effects = session.on_card_removed()
    assert shows(effects) == ["thanks"] and session.view.lang == "en"
    session.on_cancel()  # the thank-you's button: home at once
    assert session.state == "idle" and session.lang == "zh"


@pytest.mark.parametrize("how", ["cancel", "timeout"])
def test_a_session_abandoned_with_its_card_asks_for_the_card(
    session: Session, clock: FakeClock, how: str
) -> None:
    session.on_start()
    session.on_identity(PERSON)
    if how == "cancel":
        effects = session.on_cancel()
    else:
        clock.now += TIMEOUTS_S["choose"] + 1
        effects = session.on_tick()
    finish = next(e for e in effects if isinstance(e, JournalFinish))
    assert finish.reason == how
    assert shows(effects) == ["take_card"]
    assert shows(session.on_card_removed()) == ["idle"]  # no thank-you for an abandoned session


def test_without_a_card_the_session_ends_with_a_thank_you(
    session: Session, clock: FakeClock
) -> None:
    session.on_start()
    session.on_skip_identity()
    session.on_pick("disability_certificate_checklist")
    session.on_confirm()
    session.on_printed(PrintOutcome(JobState.COMPLETED), ("thermal",))
    effects = session.on_skip_rating()
    assert shows(effects) == ["thanks"] and Speak("prompt.goodbye") in effects
    assert session.view.prompt_key == "prompt.goodbye"
    # short and not extendable: a touch does not keep it; it never asks "still there?"
    clock.now += TIMEOUTS_S["thanks"] - 1
    session.on_touch()
    assert session.on_tick() == []
    clock.now += 1.1
    assert shows(session.on_tick()) == ["idle"]


def test_a_new_session_reads_the_card_lying_on_the_reader(session: Session) -> None:
    session.on_card_inserted()  # placed on the home screen, before the session began
    assert session.on_identity(PERSON) == [] and session.state == "idle"
    effects = session.on_start()
    assert ReadCard() in effects  # the readers read it again for this session
    assert session.view.card_on_reader


def test_notice_flow_needs_no_card_and_prints_the_notice(session: Session) -> None:
    session.on_start()
    session.on_skip_identity()
    view = session.view
    offers = {o.selection.code: o for o in view.offers}
    assert offers["disability_certificate_checklist"].available
    assert not offers["social_insurance_certificate"].available
    assert offers["social_insurance_certificate"].reason == "unavailable.needs_id"
    # what can be done without a card comes first; what needs one follows, marked
    order = [(o.reason == "unavailable.needs_id", not o.available) for o in view.offers]
    assert order == sorted(order) and order[0] == (False, False) and order[-1][0]
    with pytest.raises(KeyError):
        session.on_pick("social_insurance_certificate")
    effects = session.on_pick("disability_certificate_checklist")
    assert shows(effects) == ["notice"] and not any(isinstance(e, BuildPreview) for e in effects)
    effects = session.on_confirm()
    job = next(e for e in effects if isinstance(e, PrintDocuments))
    assert job.identity is None and job.selection.notice is not None


def test_a_bundle_is_one_selection_with_one_confirmation(session: Session) -> None:
    to_preview(session, "retirement_bundle")
    selection = session.view.selection
    assert selection is not None and selection.is_bundle and len(selection.services) == 3
    job = next(e for e in session.on_confirm() if isinstance(e, PrintDocuments))
    assert [s.code for s in job.selection.services] == [
        "social_insurance_certificate",
        "medical_insurance_record",
        "retirement_status",
    ]


def test_a_bundle_is_unavailable_when_one_of_its_services_is(session: Session) -> None:
    session.set_unavailable({"retirement_status": "unavailable.provider"})
    offers = {o.selection.code: o for o in session.view.offers}
    assert not offers["retirement_bundle"].available
    assert offers["retirement_bundle"].reason == "unavailable.provider"


def test_failed_fetch_goes_back_to_choose_and_says_why(session: Session) -> None:
    session.on_start()
    session.on_identity(PERSON)
    session.on_pick("personal_tax_record")
    effects = session.on_fetch_failed("error.provider.unavailable")
    assert session.state == "choose" and Speak("error.provider.unavailable") in effects
    assert session.on_preview_ready() == []  # a late preview is ignored


def test_out_of_order_when_nothing_can_be_served(session: Session) -> None:
    everything = {s.code: "unavailable.thermal_printer" for s in CATALOG.enabled_services()}
    effects = session.set_unavailable(everything)
    assert shows(effects) == ["out_of_order"] and session.state == "out_of_order"
    with pytest.raises(TransitionNotAllowed):
        session.on_start()
    partly = dict(everything)
    del partly["queue_ticket"]
    assert shows(session.set_unavailable(partly)) == ["idle"]


def test_a_device_that_broke_during_a_session_puts_the_station_out_of_order_after_it(
    session: Session, clock: FakeClock
) -> None:
    """The thank-you ends on the idle screen only if something can be served there."""
    everything = {s.code: "unavailable.thermal_printer" for s in CATALOG.enabled_services()}
    session.on_start()
    session.on_skip_identity()
    session.on_pick("queue_ticket")
    session.on_preview_ready()
    session.on_confirm()
    session.on_printed(PrintOutcome(JobState.FAILED, "error.print_failed"), ())
    assert session.set_unavailable(everything) == []  # mid-session: the resident goes on
    session.on_rate(2)
    assert session.state == "thanks"
    clock.now += TIMEOUTS_S["thanks"] + 0.1
    assert shows(session.on_tick()) == ["out_of_order"] and session.state == "out_of_order"
    session.set_unavailable({})
    session.on_start()
    assert session.set_unavailable(everything) == []
    assert shows(session.on_cancel()) == ["out_of_order"]  # straight there


def test_identity_outside_identify_is_dropped(session: Session) -> None:
    assert session.on_identity(PERSON) == []
    assert session.identity is None


def test_timeout_warns_then_ends_and_elder_mode_doubles_it(clock: FakeClock) -> None:
    for elder, factor in ((False, 1), (True, 2)):
        session = Session(CATALOG, clock=clock, elder=elder)
        session.on_start()
        limit = TIMEOUTS_S["identify"] * factor
        warn = WARN_BEFORE_S * factor
        clock.now += limit - warn - 1
        assert session.on_tick() == []
        clock.now += 1
        assert session.on_tick() == [Speak("prompt.still_there")]
        assert session.view.warning
        clock.now += warn
        effects = session.on_tick()
        finish = next(e for e in effects if isinstance(e, JournalFinish))
        assert finish.reason == "timeout" and finish.abandoned_state == "identify"
        assert session.state == "idle"


def test_extend_postpones_the_timeout_many_times(session: Session, clock: FakeClock) -> None:
    session.on_start()
    for _ in range(12):
        clock.now += TIMEOUTS_S["identify"] - 1
        session.on_tick()
        session.on_extend()
        assert not session.view.warning
    assert session.state == "identify"


def test_stray_events_are_errors(session: Session) -> None:
    with pytest.raises(TransitionNotAllowed):
        session.on_confirm()
    with pytest.raises(TransitionNotAllowed):
        session.on_rate(3)


def test_unavailable_services_cannot_be_picked(session: Session) -> None:
    session.set_unavailable({"social_insurance_certificate": "unavailable.a4_printer"})
    session.on_start()
    session.on_identity(PERSON)
    codes = [s.code for s in session.view.services]
    assert "social_insurance_certificate" not in codes and "queue_ticket" in codes
    assert not {o.selection.code: o for o in session.view.offers}["retirement_bundle"].available
    with pytest.raises(KeyError):
        session.on_pick("social_insurance_certificate")


def test_language_and_elder_reset_after_the_session(session: Session) -> None:
    session.on_start()
    session.set_lang("en")
    session.set_elder(True)
    assert session.view.lang == "en" and session.view.elder
    session.on_cancel()
    assert session.view.lang == "zh" and not session.view.elder


def test_a_new_catalog_waits_for_the_end_of_the_session(session: Session) -> None:
    smaller = CATALOG.model_copy(
        update={"services": [CATALOG.service("queue_ticket")], "bundles": []}
    )
    session.on_start()
    session.on_identity(PERSON)
    assert session.offer_catalog(smaller) is False
    assert len(session.view.offers) == 14  # the resident keeps what they saw
    session.on_cancel()  # the session is over (its card is asked for): the new catalog applies
    assert session.state == "take_card"
    assert [o.selection.code for o in session.view.offers] == ["queue_ticket"]
    assert session.offer_catalog(CATALOG) is True  # between sessions: at once
    assert len(session.view.offers) == 14  # 12 services, a 掌上办 guide, a bundle


def test_activity_postpones_the_timeout(session: Session, clock: FakeClock) -> None:
    session.on_start()
    for _ in range(5):  # a long prompt being listened to, a card being read
        clock.now += TIMEOUTS_S["identify"] - 5
        session.on_activity()
        session.on_tick()
    assert session.state == "identify"


def test_a_failed_card_read_asks_to_place_the_card_again(session: Session) -> None:
    session.on_start()
    effects = session.on_card_fault("error.sam.read_failed")
    assert effects == [Speak("error.sam.read_failed")] and session.state == "identify"
    assert session.identity is None
    session.on_identity(PERSON)
    assert session.on_card_fault("error.sam.read_failed") == []  # not wanted outside identify


def test_only_the_keyed_hash_of_an_identity_reaches_a_journal_effect(clock: FakeClock) -> None:
    """The session is given the station's pseudonymiser: every journal effect of a whole
    journey carries no Identity and no name or number, by its type, not by care."""
    import dataclasses

    from flows.identity import identity_hash
    from flows.session import JournalBegin, JournalFinish, JournalHelp, JournalRate

    key = b"station key" * 3
    session = Session(CATALOG, clock=clock, pseudonymise=lambda n: identity_hash(key, n))
    journal_types = (JournalBegin, JournalUpdate, JournalFinish, JournalRate, JournalHelp)
    for effect_type in journal_types:
        for f in dataclasses.fields(effect_type):
            assert "Identity" not in str(f.type), (effect_type.__name__, f.name)
    effects = session.on_start()
    effects += session.on_identity(PERSON)
    effects += session.on_pick("social_insurance_certificate")
    effects += session.on_help()
    journal = [e for e in effects if isinstance(e, journal_types)]
    [update] = [e for e in journal if isinstance(e, JournalUpdate) and e.identity_hash]
    assert update.identity_hash == identity_hash(key, PERSON.id_number)
    for effect in journal:
        text = repr(dataclasses.astuple(effect))
        assert PERSON.name not in text and PERSON.id_number not in text
