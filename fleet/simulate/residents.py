"""What residents do at a simulated station, shaped like the real kiosk's events.

Services of the demo catalog (``assets/catalog/demo.toml``), so the console names them once that
catalog is signed; an abandoned session says on which screen (``flows/session.py``'s session
screens) and why (timeout, cancel, card removed), and has no service when it ended before one was
chosen; a failed one carries a failure key as the kiosk's do; ratings lean good, and a rating of
three stars or fewer ticks one or two of the rating screen's tags; help is asked on a session
screen. (Before, abandoned sessions came with neither screen nor reason, which the console's
Statistics could only show as "unknown / unknown".)
"""

from __future__ import annotations

import random
from typing import Any

SERVICES = (
    "social_insurance_certificate",
    "medical_insurance_record",
    "residence_certificate",
    "personal_tax_record",
    "elderly_allowance_checklist",
    "queue_ticket",
)
ABANDONED_ON = (("identify", 35), ("choose", 30), ("notice", 10), ("preview", 25))
ABANDON_REASONS = (("timeout", 50), ("cancel", 30), ("card_removed", 20))
FAILURES = ("error.print_failed", "error.device_offline", "error.document")
STARS = ((5, 45), (4, 30), (3, 15), (2, 5), (1, 5))
RATING_TAGS = ("slow", "complicated", "print", "voice")
HELP_SCREENS = ("identify", "choose", "notice", "preview")


def _pick(rng: random.Random, weighted: tuple[tuple[Any, int], ...]) -> Any:
    values, weights = zip(*weighted, strict=True)
    return rng.choices(values, weights)[0]


def transaction(rng: random.Random, txn_id: str) -> dict[str, Any]:
    """A session's end as the kiosk reports it (most complete)."""
    roll = rng.random()
    outcome = "completed" if roll < 0.85 else "abandoned" if roll < 0.95 else "failed"
    screen = _pick(rng, ABANDONED_ON) if outcome == "abandoned" else None
    chosen = screen not in ("identify", "choose")
    why = (
        _pick(rng, ABANDON_REASONS)
        if screen
        else rng.choice(FAILURES)
        if outcome == "failed"
        else None
    )
    return {
        "txn_id": txn_id,
        "service": rng.choice(SERVICES) if chosen else "",
        "outcome": outcome,
        "outputs": ["thermal"] if outcome == "completed" else [],
        "abandoned_state": screen,
        "reason": why,
        "lang": "zh" if rng.random() < 0.9 else "en",
        "elder": rng.random() < 0.3,
        "duration_s": round(rng.uniform(20, 240), 3),
    }


def resident_event(rng: random.Random, roll: float, txn_id: str) -> tuple[str, dict[str, Any]]:
    """One event by ``roll`` (0..1): 70 % transactions, 25 % ratings, 5 % help requests."""
    if roll < 0.7:
        return "transaction", transaction(rng, txn_id)
    if roll < 0.95:
        stars = _pick(rng, STARS)
        tags = rng.sample(RATING_TAGS, rng.randint(1, 2)) if stars <= 3 else []
        service = rng.choice(SERVICES)
        return "rating", {"txn_id": txn_id, "service": service, "tags": tags, "rating": stars}
    return "help", {"screen": rng.choice(HELP_SCREENS), "txn_id": None}
