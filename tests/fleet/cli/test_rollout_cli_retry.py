"""``fleet rollout``: thresholds in percent, failure reasons shown, ``retry`` of only the failed
stations, against a running ``fleet console`` process and simulated terminals (real MQTT)."""

from __future__ import annotations

from pathlib import Path

from fleet.cli.rollout import failure_line, state_words
from sandbox.mosquitto import MosquittoBroker
from tests.fleet.cli.test_rollout_cli import (
    CATALOG_ARGS,
    ConsoleProcess,
    cli_audit,
    fleet,
    fleet_json,
    holder_pid,
    known_stations,
    prepared_db,
    status,
)
from tests.fleet.console.test_console import until
from tests.fleet.console.test_console_rollouts import simulated_fleet


def test_words_for_a_rollout_with_failures_and_a_failed_station() -> None:
    assert state_words({"state": "completed", "failed": 43}) == "completed with 43 failures"
    assert state_words({"state": "completed", "failed": 1}) == "completed with 1 failure"
    assert state_words({"state": "completed", "failed": 0}) == "completed"
    failure = {
        "station": "s/a",
        "phase": "failed",
        "error": "untrusted",
        "detail": "no trust anchor at /var/lib/kiosk/catalogs/root.json",
    }
    assert failure_line(failure) == (
        "s/a: failed (untrusted): no trust anchor at /var/lib/kiosk/catalogs/root.json"
    )
    assert failure_line({"station": "s/b", "phase": "timed_out", "error": "timeout"}) == (
        "s/b: timed out"
    )


def test_failures_are_shown_with_their_reason_and_retry_sends_only_to_them(
    broker: MosquittoBroker, tmp_path: Path, db_url: str
) -> None:
    """On SQLite and PostgreSQL: the one place a retry's database work (the failed stations
    found, the new rollout linked to the old) runs on PostgreSQL."""
    store = prepared_db(db_url)
    sim = simulated_fleet(broker, failure_fraction=1.0)
    console = ConsoleProcess(broker, db_url, tmp_path / "console")
    try:
        console.wait_serving()
        until(lambda: known_stations(store) == 20, 30, "20 stations in the console")
        until(lambda: holder_pid(store) == console.pid, 30, "the console drives rollouts")
        three = ["sim-site-00/sim-00000", "sim-site-00/sim-00002", "sim-site-00/sim-00004"]
        start = ["rollout", "start", "--as", "oper", "--db", db_url, "--stations", *three]
        policy = ["--canary", "1", "--percent", "50", "--soak", "0", "--min-results", "1"]
        # a fraction from before is refused: it would mean less than one percent
        old = fleet(*start, *CATALOG_ARGS, *policy, "--advance-at", "0.9")
        assert old.returncode == 1 and "--advance-at is a percentage" in old.stderr
        assert "write 90 for 90 %" in old.stderr
        done = fleet(
            *start, *CATALOG_ARGS, *policy, "--advance-at", "100", "--abort-above", "50", "--wait"
        )
        assert done.returncode == 1, done.stdout + done.stderr  # aborted by its canary
        rollout_id = done.stdout.split("rollout ", 2)[-1].split(":")[0].strip()
        first = status(db_url, rollout_id)
        assert first["state"] == "aborted" and first["policy"]["advance_at"] == 1.0
        assert first["policy"]["abort_above"] == 0.5
        text = fleet("rollout", "status", rollout_id, "--db", db_url).stdout
        assert "failed stations (1):" in text
        assert "  sim-site-00/sim-00000: failed (hash_mismatch): simulated failure" in text

        retried = fleet_json("rollout", "retry", "--as", "oper", "--db", db_url, rollout_id)
        assert retried["retry_of"] == rollout_id and retried["stations"] == 1
        assert retried["rev"] > first["rev"]
        again = fleet("rollout", "status", retried["id"], "--db", db_url, "--wait")
        assert again.returncode == 1  # the terminal fails again: aborted once more
        assert status(db_url, rollout_id)["retried_as"] == retried["id"]
        counters, _ = sim.stats()
        assert counters["desired"] == 2  # the canary twice; the other two never
        twice = fleet("rollout", "retry", "--as", "oper", "--db", db_url, rollout_id)
        assert twice.returncode == 1 and "retried already" in twice.stderr
        assert ("oper", "retry", True, "cli") in cli_audit(store)
        assert ("oper", "retry", False, "cli") in cli_audit(store)
    finally:
        console.stop()
        sim.stop()
        store.close()
