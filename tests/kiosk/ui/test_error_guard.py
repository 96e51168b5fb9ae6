"""Errors that reach Kivy's loop are counted; too many in a minute restart a broken app."""

from __future__ import annotations

from kiosk.ui.app import ErrorGuard


def test_a_few_errors_are_survived_and_a_burst_is_not() -> None:
    now = [0.0]
    guard = ErrorGuard(limit=3, window_s=60, clock=lambda: now[0])
    assert not guard.record()
    now[0] += 30
    assert not guard.record()
    now[0] += 31  # the first one is out of the window
    assert not guard.record()
    now[0] += 1
    assert guard.record()  # three within a minute
