"""When the kiosk may take a staff member's call (flows.call): only when its resident asked for
help in this session, never with a technician at the station."""

from __future__ import annotations

from flows.call import HOME_GRACE_S, CallGate, volume_step


def gate_at(*steps: tuple[float, str]) -> CallGate:
    """A gate fed ``(time, state)`` observations; a state of ``help`` is the button."""
    gate = CallGate()
    for t, state in steps:
        if state == "help":
            gate.help_pressed(t)
        else:
            gate.observe(state, t)
    return gate


def test_a_resident_who_asked_in_this_session_may_be_called() -> None:
    gate = gate_at((0, "idle"), (10, "identify"), (20, "help"), (21, "choose"))
    assert gate.refusal("choose", 30) is None


def test_no_help_pressed_means_no_call() -> None:
    gate = gate_at((0, "idle"), (10, "identify"), (21, "choose"))
    assert gate.refusal("choose", 30) == "no_help_request"
    assert gate.refusal("idle", 30) == "no_help_request"


def test_the_previous_residents_request_does_not_open_the_next_session() -> None:
    gate = gate_at((0, "identify"), (5, "help"), (50, "idle"), (60, "identify"))
    assert gate.refusal("identify", 61) == "no_help_request"


def test_help_on_the_home_screen_counts_for_a_while_and_into_the_session() -> None:
    gate = gate_at((0, "idle"), (100, "help"))
    assert gate.refusal("idle", 100 + HOME_GRACE_S - 1) is None
    assert gate.refusal("idle", 100 + HOME_GRACE_S + 1) == "no_help_request"
    gate.observe("identify", 130)
    assert gate.refusal("identify", 131) is None


def test_a_session_that_timed_out_while_waiting_may_still_be_called_a_moment() -> None:
    gate = gate_at((0, "identify"), (5, "help"), (100, "idle"))
    assert gate.refusal("idle", 100 + HOME_GRACE_S - 1) is None
    assert gate.refusal("idle", 100 + HOME_GRACE_S + 1) == "no_help_request"


def test_a_technician_at_the_station_is_never_called() -> None:
    gate = gate_at((0, "idle"), (1, "help"))
    assert gate.refusal("unlock", 2) == "maintenance"
    assert gate.refusal("maintenance", 2) == "maintenance"


def test_volume_steps_stay_within_bounds() -> None:
    assert volume_step(1.0, up=True) == 1.25
    assert volume_step(2.0, up=True) == 2.0
    assert volume_step(0.25, up=False) == 0.25
