"""The public verification page's pace: a fixed window per client, kept in the database, so it
holds across console processes (fleet.console.throttle.Throttle.spend)."""

from __future__ import annotations

from pathlib import Path

from fleet.console.store import LoginThrottle, Store
from fleet.console.throttle import VERIFY_PER_MINUTE, Throttle, client_key


def test_a_client_over_the_limit_waits_for_the_next_window_and_others_do_not(
    tmp_path: Path,
) -> None:
    store = Store(f"sqlite:///{tmp_path / 'c.sqlite3'}")
    store.migrate()
    now = [1000.0]
    one, other = Throttle(clock=lambda: now[0]), Throttle(clock=lambda: now[0])  # two consoles
    with store.session() as db:
        waits = [
            (one if i % 2 else other).spend(db, "verify:10.0.0.1", VERIFY_PER_MINUTE)
            for i in range(VERIFY_PER_MINUTE)
        ]
        assert waits == [0.0] * VERIFY_PER_MINUTE
        now[0] += 20
        assert one.spend(db, "verify:10.0.0.1", VERIFY_PER_MINUTE) == 40.0
        assert other.spend(db, "verify:10.0.0.2", VERIFY_PER_MINUTE) == 0.0
        now[0] += 40  # the next window
        assert one.spend(db, "verify:10.0.0.1", VERIFY_PER_MINUTE) == 0.0
        row = db.get(LoginThrottle, "verify:10.0.0.1")
        assert row is not None and row.failures == 1 and row.last_failure_at == now[0]
        # the login's keys are other rows: a busy verifier is no failed login
        now[0] += 1
        for _ in range(VERIFY_PER_MINUTE + 5):
            one.spend(db, "verify:10.0.0.1", VERIFY_PER_MINUTE)
        assert one.wait(db, [client_key("10.0.0.1")]) == 0.0
    store.close()
