"""Simulated residents send events the console can name: screens, reasons, catalog services."""

from __future__ import annotations

import random
import time
import tomllib
from collections import Counter
from pathlib import Path

from fleet.console.stat_words import REASONS, STEP
from fleet.protocol import models
from fleet.protocol.topics import dumps
from fleet.simulate.residents import SERVICES, resident_event

REPO = Path(__file__).resolve().parents[2]


def test_events_are_valid_and_abandoned_sessions_say_where_and_why() -> None:
    rng = random.Random(7)
    catalog = tomllib.loads((REPO / "assets/catalog/demo.toml").read_text(encoding="utf-8"))
    assert set(SERVICES) <= {s["code"] for s in catalog["services"]}
    seen: Counter[str] = Counter()
    for i in range(2000):
        kind, body = resident_event(rng, rng.random(), f"t-{i}")
        body |= {"ts": time.time(), "event_id": f"e-{i}", "backfill": False, "station": "st-1"}
        models.EVENTS[kind].model_validate_json(dumps(body), strict=True)
        seen[kind] += 1
        if kind == "transaction" and body["outcome"] == "abandoned":
            assert body["abandoned_state"] in STEP and body["reason"] in REASONS
            seen["abandoned"] += 1
        if kind == "rating" and body["rating"] <= 3:
            assert body["tags"]
        if kind == "help":
            assert body["screen"] in STEP
    assert seen["abandoned"] > 50 and seen["help"] > 20 and seen["rating"] > 300
