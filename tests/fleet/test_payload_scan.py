"""The scanner of station payloads: every payload a station sent through any broker of the test
session (recorded by ``conftest.py``) is scanned at the end of the session
(:func:`tests.fleet.conftest.pytest_sessionfinish`) for the demo dataset's names and ID numbers
and for any 18-digit ID number. This checks the scanner itself would notice a leak."""

from __future__ import annotations

import json

from tests.fleet.conftest import find_personal, personal_needles


def test_the_scan_finds_what_it_looks_for() -> None:
    """The scanner itself: it would notice a leak (a test that can fail)."""
    leak = json.dumps({"who": personal_needles()[0]}).encode()
    assert find_personal([("kiosk/v1/s/st/evt/transaction", leak)])
    number = b'{"id": "32011519560308128X"}'
    assert find_personal([("kiosk/v1/s/st/health", number)])
    assert not find_personal([("kiosk/v1/s/st/health", b'{"ts": 1764000000.123456}')])
