"""The rollout engine's soak time, staged/applied, failure texts and what a retry takes (pure
logic, the clock is the ``now`` each call is given)."""

from __future__ import annotations

from fleet.console.rollout import (
    APPLIED,
    DETAIL_MAX,
    FAILED,
    STAGED,
    Policy,
    Rollout,
    RolloutRecord,
)
from fleet.console.rollout_service import RequestError, policy_from
from tests.fleet.console.test_rollout import DESIRED, REV, keys, wave_of


def make(n: int = 20, **policy: object) -> Rollout:
    base: dict[str, object] = {"canary": 2, "percent": 50.0, "min_results": 5, "soak_s": 30.0}
    base.update(policy)
    return Rollout.create("r1", REV, DESIRED, keys(n), Policy(**base), now=0.0)  # type: ignore[arg-type]


def test_the_next_wave_starts_only_after_the_soak_and_a_pause_during_it_holds() -> None:
    rollout = make()
    assert rollout.start(now=0.0) == keys(2)
    for key in keys(2):
        assert rollout.report(key, REV, "applied", None, 5.0) == []  # reached: soaking
    assert rollout.progress().waves[0].soak_until == 35.0
    assert rollout.tick(34.9) == []
    rollout.pause(20.0)
    assert rollout.tick(40.0) == []  # paused: the soak ran out, but no new wave
    middle = rollout.resume(41.0)  # the soak is over: the next wave at once
    assert middle == wave_of(rollout, "50%")
    assert rollout.progress().waves[0].soak_until is None


def test_resume_during_the_soak_waits_for_its_end() -> None:
    rollout = make()
    rollout.start(now=0.0)
    for key in keys(2):
        rollout.report(key, REV, "applied", None, 5.0)
    rollout.pause(6.0)
    assert rollout.resume(10.0) == []
    assert rollout.tick(35.0) == wave_of(rollout, "50%")


def test_staged_is_not_applied_until_the_wave_deadline() -> None:
    rollout = make(soak_s=0.0, wave_timeout_s=100.0, advance_at=1.0)
    rollout.start(now=0.0)
    first, second = keys(2)
    assert rollout.report(first, REV, "applied", None, 1.0) == []
    assert rollout.report(second, REV, "staged", None, 1.0) == []  # a resident is being served
    assert rollout.record.stations[second].phase == STAGED
    assert rollout.progress().waves[0].staged == 1
    assert rollout.tick(50.0) == []
    # at the deadline the staged station is pending-not-failed: it counts toward the advance
    middle = rollout.tick(100.0)
    assert middle == wave_of(rollout, "50%")
    assert rollout.record.stations[second].phase == STAGED
    assert rollout.report(second, REV, "applied", None, 120.0) == []
    assert rollout.record.stations[second].phase == APPLIED
    assert rollout.report(second, REV, "staged", None, 121.0) == []  # never back
    assert rollout.record.stations[second].phase == APPLIED


def test_a_failure_keeps_the_terminals_text_truncated_and_a_retry_takes_only_failures() -> None:
    rollout = make(n=4, canary=4, soak_s=0.0, advance_at=0.5, abort_above=0.6, min_results=4)
    rollout.start(now=0.0)
    a, b, c, d = keys(4)
    text = "no trust anchor at /var/lib/kiosk/catalogs/root.json:\n No such file " + "x" * 400
    rollout.report(a, REV, "failed", "untrusted", 1.0, text)
    rollout.report(b, REV, "applied", None, 1.0)
    rollout.report(c, REV, "applied", None, 1.0)
    assert rollout.tick(700.0) == []  # d times out
    assert rollout.state == "completed"
    result = rollout.record.stations[a]
    assert (result.phase, result.error) == (FAILED, "untrusted")
    assert result.detail is not None and len(result.detail) == DETAIL_MAX
    assert result.detail.startswith("no trust anchor at /var/lib/kiosk/catalogs/root.json: No")
    assert rollout.progress().failed == 2
    assert sorted(rollout.retriable()) == [a, d]
    again = RolloutRecord.from_dict(rollout.record.to_dict())
    assert again.stations[a].detail == result.detail


def test_records_stored_before_soaking_keep_running_without_a_soak() -> None:
    data = make().record.to_dict()
    del data["policy"]["soak_s"]
    assert RolloutRecord.from_dict(data).policy.soak_s == 0.0


def test_thresholds_are_typed_in_percent_and_kept_as_fractions() -> None:
    policy = policy_from({"advance_at_pct": "90%", "abort_above_pct": 20, "soak_s": "5"})
    assert (policy.advance_at, policy.abort_above, policy.soak_s) == (0.9, 0.2, 5.0)
    assert policy_from({"advance_at": 0.8}).advance_at == 0.8  # the API's older fractions
    try:
        policy_from({"soak_s": "-1"})
    except RequestError as err:
        assert "soak_s" in str(err)
    else:
        raise AssertionError("a negative soak was taken")
