"""The scanner of station payloads (tests/payload_scan.py, a pytest plugin): every payload a
station sent through any broker of the test session is scanned at the end of the session for the
demo dataset's names and ID numbers and for any 18-digit ID number. This checks the scanner
itself would notice a leak, on every worker of a parallel run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.payload_scan import find_personal, personal_needles

REPO = Path(__file__).resolve().parents[2]


def test_the_scan_finds_what_it_looks_for() -> None:
    """The scanner itself: it would notice a leak (a test that can fail)."""
    leak = json.dumps({"who": personal_needles()[0]}).encode()
    assert find_personal([("kiosk/v1/s/st/evt/transaction", leak)])
    number = b'{"id": "32011519560308128X"}'
    assert find_personal([("kiosk/v1/s/st/health", number)])
    assert not find_personal([("kiosk/v1/s/st/health", b'{"ts": 1764000000.123456}')])


# Two tests, so that with two workers each worker's broker carries one station's event.
SUITE = """
import json, time
import paho.mqtt.publish as publish
from sandbox.mosquitto import MosquittoBroker
from tests.payload_scan import PAYLOADS

def send(tmp_path, station, what):
    broker = MosquittoBroker(tmp_path / "broker")
    broker.start()
    try:
        topic = f"kiosk/v1/s/{station}/evt/transaction"
        publish.single(topic, json.dumps({"what": what}), qos=1, hostname=broker.host,
                       port=broker.port, client_id=station)
        deadline = time.monotonic() + 10
        while not any(t == topic for t, _ in PAYLOADS.snapshot()):
            assert time.monotonic() < deadline, "the recorder never saw the event"
            time.sleep(0.05)
    finally:
        broker.stop()

def test_one(tmp_path):
    send(tmp_path, "st1", "a receipt")

def test_two(tmp_path):
    send(tmp_path, "st2", WHAT)
"""


def run_suite(tmp_path: Path, what: str) -> subprocess.CompletedProcess[str]:
    tmp_path.mkdir()
    (tmp_path / "test_stations.py").write_text(SUITE.replace("WHAT", repr(what)))
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = -p tests.payload_scan\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "2", "-p", "no:cacheprovider", "-q"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_the_scan_covers_every_worker_and_a_leak_fails_the_run(tmp_path: Path) -> None:
    """The suite runs on xdist workers: each worker's brokers are scanned, the controller adds
    them up, and a name sent by one station fails the whole run although every test passed."""
    clean = run_suite(tmp_path / "clean", "a queue ticket")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "payload scan: 2 station payloads on ['evt'], clean" in clean.stdout
    leak = run_suite(tmp_path / "leak", f"a receipt for {personal_needles()[0]}")
    assert "2 passed" in leak.stdout
    assert leak.returncode == 1, leak.stdout + leak.stderr
    assert "PERSONAL DATA IN STATION PAYLOADS" in leak.stdout
    assert "kiosk/v1/s/st2/evt/transaction" in leak.stdout
