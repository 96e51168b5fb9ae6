"""Runs last among the fleet tests: every payload a station sent through any broker of this test
session (recorded by ``conftest.py``) is scanned for the demo dataset's names and ID numbers and
for any 18-digit ID number. Payloads sent after this test are scanned at the end of the session."""

from __future__ import annotations

import json

import pytest

from tests.fleet.conftest import PayloadLog, find_personal, personal_needles


def test_the_scan_finds_what_it_looks_for() -> None:
    """The scanner itself: it would notice a leak (a test that can fail)."""
    leak = json.dumps({"who": personal_needles()[0]}).encode()
    assert find_personal([("kiosk/v1/s/st/evt/transaction", leak)])
    number = b'{"id": "32011519560308128X"}'
    assert find_personal([("kiosk/v1/s/st/health", number)])
    assert not find_personal([("kiosk/v1/s/st/health", b'{"ts": 1764000000.123456}')])


def test_no_payload_a_station_sent_carries_a_name_or_an_id_number(
    record_station_payloads: PayloadLog,
) -> None:
    payloads = record_station_payloads.snapshot()
    if not payloads:
        pytest.skip("no fleet test sent anything in this session (run with the fleet tests)")
    record_station_payloads.scanned_upto = len(payloads)
    assert record_station_payloads.attach_failures == []
    topics = {t.split("/", 4)[4].split("/")[0] for t, _ in payloads}
    assert {"state", "birth", "health", "evt"} <= topics, topics
    assert find_personal(payloads) == []
    print(f"scanned {len(payloads)} station payloads on {sorted(topics)}")
