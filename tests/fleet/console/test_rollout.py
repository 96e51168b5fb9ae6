"""The rollout engine (fleet.console.rollout): waves, advance, automatic abort, pause/resume,
deadlines,
and its persistence. Pure logic: no broker, the clock is the ``now`` each call is given."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.console.rollout import (
    APPLIED,
    PENDING,
    TIMED_OUT,
    WAITING,
    Policy,
    Rollout,
    RolloutError,
    RolloutRecord,
    plan_waves,
)
from fleet.console.rollout_stores import JsonFileStore, MemoryStore

REV = 7
DESIRED = {"catalog": {"target": "catalog.toml", "version": 3, "sha256": "ab" * 32, "length": 9}}


def keys(n: int) -> list[str]:
    return [f"site-a/st-{i:03d}" for i in range(n)]


def make(n: int = 20, **policy: object) -> Rollout:
    base: dict[str, object] = {"canary": 2, "percent": 50.0, "min_results": 5, "soak_s": 0.0}
    base.update(policy)
    return Rollout.create("r1", REV, DESIRED, keys(n), Policy(**base), now=0.0)  # type: ignore[arg-type]


def apply_all(rollout: Rollout, stations: list[str], now: float) -> list[str]:
    started: list[str] = []
    for key in stations:
        started += rollout.report(key, REV, "applied", None, now)
    return started


def wave_of(rollout: Rollout, name: str) -> list[str]:
    index = [w.name for w in rollout.record.waves].index(name)
    return [k for k, r in rollout.record.stations.items() if r.wave == index]


def test_waves_are_canary_then_percentage_then_the_rest() -> None:
    plan = plan_waves(keys(20), Policy(canary=2, percent=50))
    assert [(name, len(members)) for name, members in plan] == [
        ("canary", 2),
        ("50%", 8),
        ("all", 10),
    ]
    assert plan[0][1] == keys(2)
    named = plan_waves(keys(20), Policy(canary_stations=("site-a/st-019", "nowhere/x")))
    assert named[0] == ("canary", ["site-a/st-019"])
    assert "site-a/st-019" not in named[1][1] + named[2][1]
    # small fleets: empty waves are left out
    assert [name for name, _ in plan_waves(keys(2), Policy(canary=1, percent=50))] == [
        "canary",
        "all",
    ]


def test_advances_wave_by_wave_and_completes_when_every_station_applied() -> None:
    rollout = make()
    assert rollout.state == "draft"
    assert rollout.start(now=1.0) == keys(2)
    assert rollout.record.desired["rev"] == REV
    assert rollout.report(keys(1)[0], REV, "applied", None, 2.0) == []  # 1 of 2: 50 % < 90 %
    middle = rollout.report(keys(2)[1], REV, "applied", None, 2.0)
    assert middle == wave_of(rollout, "50%") and len(middle) == 8
    progress = rollout.progress()
    assert progress.wave == "50%"
    assert [(w.targeted, w.applied, w.pending) for w in progress.waves] == [
        (2, 2, 0),
        (8, 0, 8),
        (0, 0, 0),
    ]
    # 8 of 8 needed? no: 90 % of 8 is 7.2, so the 8th opens the last wave
    assert apply_all(rollout, middle[:7], 3.0) == []
    last = apply_all(rollout, middle[7:], 3.0)
    assert last == wave_of(rollout, "all") and len(last) == 10
    apply_all(rollout, last[:9], 4.0)
    assert rollout.state == "running"  # the last wave completes only when no one is pending
    apply_all(rollout, last[9:], 5.0)
    assert rollout.state == "completed"
    assert rollout.progress().reason is None
    assert all(w.applied == w.size for w in rollout.progress().waves)


def test_advance_threshold_leaves_stragglers_counting_in_their_own_wave() -> None:
    rollout = make(n=40, canary=10, advance_at=0.8)
    canary = rollout.start(0.0)
    assert apply_all(rollout, canary[:8], 1.0) != []  # 80 % of the canaries: next wave
    rollout.report(canary[8], REV, "applied", None, 2.0)
    waves = rollout.progress().waves
    assert (waves[0].applied, waves[0].pending, waves[1].pending) == (9, 1, 10)


def test_aborts_by_itself_on_failure_rate_after_the_minimum_results() -> None:
    rollout = make(n=40, canary=10, min_results=10, abort_above=0.2)
    canary = rollout.start(0.0)
    for key in canary[:4]:  # 4 failures of 4 results: too few results to judge
        rollout.report(key, REV, "failed", "hash_mismatch", 1.0)
    assert rollout.state == "running"
    apply_all(rollout, canary[4:9], 2.0)  # 9 results
    assert rollout.state == "running"
    rollout.report(canary[9], REV, "applied", None, 3.0)  # 10 results, 4 failed: 40 % > 20 %
    assert rollout.state == "aborted"
    assert rollout.progress().reason == "failure rate 40% > 20% after 10 results in wave canary"
    # later waves were never sent the desired, and stay so
    assert all(r.phase == WAITING for r in rollout.record.stations.values() if r.wave > 0)
    assert rollout.report(canary[0], REV, "applied", None, 4.0) == []
    assert rollout.tick(10_000.0) == []
    with pytest.raises(RolloutError, match="cannot resume a rollout that is aborted"):
        rollout.resume(5.0)


def test_minimum_results_is_capped_at_a_small_wave() -> None:
    rollout = make(canary=2, min_results=10)
    canary = rollout.start(0.0)
    rollout.report(canary[0], REV, "failed", "signature", 1.0)
    assert rollout.state == "running"  # 1 result of a 2-station wave
    rollout.report(canary[1], REV, "applied", None, 1.0)
    assert rollout.state == "aborted"
    assert rollout.record.reason == "failure rate 50% > 20% after 2 results in wave canary"


def test_only_this_rollouts_rev_and_final_phases_count() -> None:
    rollout = make()
    canary = rollout.start(0.0)
    assert rollout.report(canary[0], REV - 1, "applied", None, 1.0) == []  # an older desired
    rollout.report(canary[0], REV, "downloading", None, 1.0)
    rollout.report(canary[0], REV, "verified", None, 1.0)
    rollout.report(canary[0], REV, "failed", "download", 1.0)  # the terminal retries it
    rollout.report("site-a/st-019", REV, "applied", None, 1.0)  # not sent yet: ignored
    rollout.report("elsewhere/x", REV, "applied", None, 1.0)
    waves = rollout.progress().waves
    assert (waves[0].applied, waves[0].failed, waves[0].pending) == (0, 0, 2)
    assert (waves[2].applied, waves[2].targeted) == (0, 0)


def test_pause_holds_the_next_wave_and_resume_starts_it() -> None:
    rollout = make()
    canary = rollout.start(0.0)
    rollout.pause(1.0)
    assert rollout.state == "paused"
    assert apply_all(rollout, canary, 2.0) == []  # results count, no wave starts
    assert rollout.progress().waves[0].applied == 2
    assert rollout.progress().waves[1].targeted == 0
    middle = rollout.resume(3.0)
    assert rollout.state == "running" and len(middle) == 8
    with pytest.raises(RolloutError):
        rollout.start(4.0)


def test_a_paused_rollout_still_aborts_on_failures() -> None:
    rollout = make()
    canary = rollout.start(0.0)
    rollout.pause(1.0)
    for key in canary:
        rollout.report(key, REV, "failed", "rollback", 2.0)
    assert rollout.state == "aborted"
    assert "in wave canary" in (rollout.record.reason or "")


def test_abort_by_hand_keeps_the_reason() -> None:
    rollout = make()
    rollout.start(0.0)
    rollout.abort(1.0, "aborted by ops: wrong opening hours in the catalog")
    progress = rollout.progress()
    assert progress.state == "aborted"
    assert progress.reason == "aborted by ops: wrong opening hours in the catalog"
    with pytest.raises(RolloutError):
        rollout.pause(2.0)


def test_stations_without_a_result_by_the_deadline_count_as_failed() -> None:
    rollout = make(canary=5, wave_timeout_s=60.0, min_results=5)
    canary = rollout.start(100.0)
    apply_all(rollout, canary[:3], 110.0)
    assert rollout.tick(159.0) == [] and rollout.state == "running"
    rollout.tick(160.0)
    assert rollout.state == "aborted"
    assert rollout.record.reason == "failure rate 40% > 20% after 5 results in wave canary"
    timed_out = [k for k in canary if rollout.record.stations[k].phase == TIMED_OUT]
    assert timed_out == canary[3:]
    assert rollout.progress().waves[0].timed_out == 2
    rollout.report(canary[3], REV, "applied", None, 170.0)  # late: still recorded
    assert rollout.record.stations[canary[3]].phase == APPLIED


def test_timeouts_within_the_tolerance_let_the_rollout_go_on() -> None:
    rollout = make(n=10, canary=10, wave_timeout_s=30.0, advance_at=0.9, abort_above=0.2)
    canary = rollout.start(0.0)
    apply_all(rollout, canary[:9], 1.0)
    assert rollout.state == "running"  # 90 %: the last (only) wave waits for the 10th
    rollout.tick(30.0)
    assert rollout.state == "completed"  # 1 timed out of 10: 10 % failures, 90 % success


def test_a_wave_that_ends_below_the_success_threshold_aborts() -> None:
    rollout = make(n=10, canary=10, advance_at=0.95, abort_above=0.5, min_results=10)
    canary = rollout.start(0.0)
    rollout.report(canary[0], REV, "failed", "malformed", 1.0)
    apply_all(rollout, canary[1:], 2.0)
    assert rollout.state == "aborted"
    assert rollout.record.reason == "wave canary ended at success rate 90% < 95%"


def test_policy_is_checked() -> None:
    with pytest.raises(RolloutError):
        Policy(advance_at=0.0)
    with pytest.raises(RolloutError):
        Policy(percent=150.0)
    with pytest.raises(RolloutError):
        Rollout.create("r", 1, DESIRED, [], Policy(), 0.0)
    with pytest.raises(RolloutError):
        Rollout.create("r", 1, DESIRED, ["no-site-key"], Policy(), 0.0)


@pytest.mark.parametrize("store_kind", ["memory", "json"])
def test_a_stored_rollout_goes_on_where_it_stopped(store_kind: str, tmp_path: Path) -> None:
    store = MemoryStore() if store_kind == "memory" else JsonFileStore(tmp_path / "rollouts")
    rev = store.next_rev()
    assert store.next_rev(floor=41) == 42  # above every rev seen on the stations
    assert store.next_rev() == 43 and rev == 1
    rollout = make()
    canary = rollout.start(0.0)
    rollout.report(canary[0], REV, "applied", None, 1.0)
    store.save(rollout.record)
    assert store.active_ids() == ["r1"]
    record = store.load("r1")
    assert record is not None and record == rollout.record
    again = Rollout(record)  # e.g. after a console restart
    assert again.progress() == rollout.progress()
    assert len(again.report(canary[1], REV, "applied", None, 2.0)) == 8
    assert again.record.stations[canary[1]].phase == APPLIED
    assert again.record.stations[wave_of(again, "50%")[0]].phase == PENDING
    again.abort(3.0, "test")
    store.save(again.record)
    assert store.active_ids() == []
    assert Rollout(store.load("r1") or again.record).state == "aborted"
    assert store.load("nope") is None
    if store_kind == "json":  # the counter survives a new store object on the same folder
        assert JsonFileStore(tmp_path / "rollouts").next_rev() == 44


def test_record_round_trips_through_plain_data() -> None:
    rollout = make()
    rollout.start(0.0)
    data = rollout.record.to_dict()
    assert data["policy"]["canary_stations"] == ()
    assert RolloutRecord.from_dict(data) == rollout.record
