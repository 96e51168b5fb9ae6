"""Random event sequences against the session chart: no undefined state, no identity survives."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from statemachine.exceptions import TransitionNotAllowed

from flows.catalog import load_catalog
from flows.models import CardType, Identity, JobState, PrintOutcome
from flows.session import JournalBegin, JournalFinish, Session

CATALOG = load_catalog(Path(__file__).resolve().parents[2] / "assets" / "catalog" / "demo.toml")
PERSON = Identity(CardType.RESIDENT, name="王小明", id_number="11010519491231002X")
STATES = {
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
CODES = [s.code for s in CATALOG.services] + [b.code for b in CATALOG.bundles] + ["nothing"]
ALL_DOWN = {s.code: "unavailable.a4_printer" for s in CATALOG.services}

EVENTS = st.one_of(
    st.just(("start",)),
    st.just(("skip_identity",)),
    st.just(("preview_ready",)),
    st.just(("fetch_failed",)),
    st.just(("card_inserted",)),
    st.tuples(st.just("devices"), st.booleans()),
    st.just(("identity",)),
    st.just(("card_removed",)),
    st.tuples(st.just("pick"), st.sampled_from(CODES)),
    st.just(("back",)),
    st.just(("confirm",)),
    st.tuples(st.just("printed"), st.booleans()),
    st.tuples(st.just("rate"), st.integers(0, 6)),
    st.just(("skip_rating",)),
    st.just(("cancel",)),
    st.just(("help",)),
    st.just(("touch",)),
    st.just(("extend",)),
    st.tuples(st.just("lang"), st.sampled_from(["zh", "en", "fr"])),
    st.tuples(st.just("elder"), st.booleans()),
    st.tuples(st.just("wait"), st.floats(0, 400)),
    st.just(("open_maintenance",)),
    st.just(("unlocked",)),
    st.just(("close_maintenance",)),
)


def apply(session: Session, clock: list[float], event: tuple[object, ...]) -> list[object]:
    name = event[0]
    if name == "wait":
        clock[0] += float(event[1])  # type: ignore[arg-type]
        return list(session.on_tick())
    calls = {
        "start": session.on_start,
        "skip_identity": session.on_skip_identity,
        "preview_ready": session.on_preview_ready,
        "fetch_failed": lambda: session.on_fetch_failed("error.provider.unavailable"),
        "card_inserted": session.on_card_inserted,
        "devices": lambda: session.set_unavailable({} if event[1] else ALL_DOWN),
        "identity": lambda: session.on_identity(PERSON),
        "card_removed": session.on_card_removed,
        "pick": lambda: session.on_pick(str(event[1])),
        "back": session.on_back,
        "confirm": session.on_confirm,
        "printed": lambda: session.on_printed(
            PrintOutcome(
                JobState.COMPLETED if event[1] else JobState.FAILED,
                translation_key="" if event[1] else "error.print_failed",
            ),
            ("a4",) if event[1] else (),
        ),
        "rate": lambda: session.on_rate(int(event[1])),  # type: ignore[call-overload]
        "skip_rating": session.on_skip_rating,
        "cancel": session.on_cancel,
        "help": session.on_help,
        "touch": session.on_touch,
        "extend": session.on_extend,
        "lang": lambda: session.set_lang(str(event[1])),
        "elder": lambda: session.set_elder(bool(event[1])),
        "open_maintenance": session.on_open_maintenance,
        "unlocked": session.on_unlocked,
        "close_maintenance": session.on_close_maintenance,
    }
    try:
        return list(calls[str(name)]())
    except (TransitionNotAllowed, KeyError, ValueError):
        return []  # refused events are errors the caller sees, never a broken state


@settings(max_examples=400, deadline=None)
@given(st.lists(EVENTS, max_size=60))
def test_random_sequences_keep_the_chart_sound(events: list[tuple[object, ...]]) -> None:
    clock = [0.0]
    session = Session(CATALOG, clock=lambda: clock[0])
    open_txns: set[str] = set()
    for event in events:
        before = session.txn_id
        effects = apply(session, clock, event)
        assert session.state in STATES
        for effect in effects:
            if isinstance(effect, JournalBegin):
                assert effect.txn_id not in open_txns
                open_txns.add(effect.txn_id)
            if isinstance(effect, JournalFinish):
                open_txns.discard(effect.txn_id)
        if session.state in (
            "idle",
            "out_of_order",
            "take_card",
            "thanks",
            "unlock",
            "maintenance",
        ):
            # the session is over: no identity, no transaction, nothing personal in the view
            assert session.identity is None and session.txn_id is None
            view = session.view
            assert view.masked_name == "" and view.masked_id_number == ""
            # and every transaction it began is finished in the journal: nothing is lost
            assert open_txns == set(), (before, open_txns)
        if session.identity is not None:
            assert session.state in {"choose", "notice", "preview", "printing", "rate"}
            assert "王小明" not in repr(session.debug_state())
