"""Reconnect pacing: exponential backoff with jitter.

paho's own ``reconnect_delay_set`` doubles a fixed delay, so a fleet that lost its broker at the
same moment comes back at the same moments, all together, every time. Each wait here is drawn at
random from the upper half of the exponential step ("equal jitter"): never shorter than half the
step, so a broken broker is not hammered, and spread over the other half, so the herd thins out.
"""

from __future__ import annotations

import random


class Backoff:
    """Waits of ``U(step/2, step)`` with ``step = min(cap_s, base_s * 2**attempt)``."""

    def __init__(self, base_s: float = 1.0, cap_s: float = 60.0, rng: random.Random | None = None):
        if not 0 < base_s <= cap_s:
            raise ValueError("need 0 < base_s <= cap_s")
        self.base_s = base_s
        self.cap_s = cap_s
        self.attempt = 0
        # not for cryptography: only to spread reconnects; each agent has its own stream
        self._rng = rng or random.Random()  # noqa: S311

    def step(self) -> float:
        """The current ceiling, before jitter."""
        return min(self.cap_s, self.base_s * (1 << min(self.attempt, 32)))

    def next_delay(self) -> float:
        """The wait before the next attempt; each call counts one more failed attempt."""
        step = self.step()
        self.attempt += 1
        return self._rng.uniform(step / 2, step)

    def reset(self) -> None:
        """A connection succeeded: the next failure starts from ``base_s`` again."""
        self.attempt = 0
