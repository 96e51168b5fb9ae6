"""One station cannot stop the fleet (issue 17): 10^4 broken messages from one enrolled station,
over the shipped TLS broker configuration, while a healthy station asks for help; then a console
restart with a broken retained ``state``. The scenario is ``faults/hostile.py`` (``make faults``
runs it as the "hostile station" row)."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest

from faults import hostile
from fleet.console.edge import ALERT_KIND, REASONS, EventIn, Item, check


def test_the_flood_breaks_every_kind_of_message_in_every_way() -> None:
    reasons: collections.Counter[str] = collections.Counter()
    topics: collections.Counter[str] = collections.Counter()
    for rest, data in hostile.mutations(10_000):
        checked = check(hostile.SITE, hostile.BAD, rest, data, frozenset())
        assert not isinstance(checked, EventIn | Item), (rest, data[:200])
        reasons[checked[0]] += 1
        topics[rest if rest.count("/") < 2 or rest.startswith("cmd/c1") else "other"] += 1
    assert set(reasons) == {"unknown_topic", "too_large", "not_json", "invalid"} <= set(REASONS)
    for kind in ("state", "birth", "health", "reported", "cmd/c1/result"):
        assert topics[kind] > 300, topics
    for kind in ("transaction", "rating", "help", "alert"):
        assert topics[f"evt/{kind}"] > 300, topics


@pytest.mark.slow
def test_a_hostile_station_costs_the_fleet_nothing_and_raises_one_alert(tmp_path: Path) -> None:
    out = hostile.run(tmp_path, 10_000)
    assert out.sent > 10_000
    assert out.accepted > 9_000  # the rest the broker refused (its ACL, its packet size)
    # every broken message the broker took was acknowledged by the console and set aside
    assert out.acknowledged >= out.accepted
    assert out.dead_letters >= out.accepted
    assert out.bad_alerts == [(ALERT_KIND, out.dead_letters)]
    # the healthy station's help requests went through, before and after the restart
    assert out.helps >= 8
    assert out.help_worst_s <= hostile.ALERT_WITHIN_S
    assert out.after_restart_worst_s <= hostile.ALERT_WITHIN_S
    assert out.retained_set_aside_after_restart
