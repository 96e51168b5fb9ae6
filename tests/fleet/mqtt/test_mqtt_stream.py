"""The console's inbound stream (fleet.mqtt.stream): frames, and acknowledgement after the commit.

The crash test runs the real ``fleet console`` as a child process against a real mosquitto: killed
with SIGKILL in the middle of a 50,000-event stream, restarted with the same client id, it must
end with every event in its database once. Only what a commit covered was acknowledged, so the
broker sends the rest again.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from fleet.console.ingest import Ingest, Settings
from fleet.console.store import Store
from fleet.mqtt.client import CONSOLE_USER
from fleet.mqtt.stream import (
    PUBACK,
    PUBLISH,
    Message,
    Parser,
    StreamError,
    StreamSubscriber,
    decode_publish,
    puback_packets,
)
from sandbox.mosquitto import MosquittoBroker
from sandbox.process import free_port
from tests.fleet import messages


def publish_frame(topic: str, payload: bytes, packet_id: int) -> bytes:
    """A QoS 1 PUBLISH as a broker sends it (with an empty property block)."""
    body = len(topic).to_bytes(2, "big") + topic.encode() + packet_id.to_bytes(2, "big")
    body += b"\x00" + payload
    length = bytearray()
    n = len(body)
    while True:
        byte, n = n & 0x7F, n >> 7
        length.append(byte | (0x80 if n else 0))
        if not n:
            break
    return bytes([PUBLISH << 4 | 0x02]) + bytes(length) + body


def test_frames_split_anywhere_are_reassembled() -> None:
    big = b"x" * 300  # a remaining length of two bytes
    stream = publish_frame("kiosk/v1/a/b/evt/help", b'{"n":1}', 7) + publish_frame(
        "kiosk/v1/a/b/health", big, 65535
    )
    for cut in range(1, len(stream)):
        parser = Parser()
        packets = parser.feed(stream[:cut]) + parser.feed(stream[cut:])
        decoded = [decode_publish(flags, body) for kind, flags, body in packets]
        assert [kind for kind, _, _ in packets] == [PUBLISH, PUBLISH]
        assert decoded == [
            (Message("kiosk/v1/a/b/evt/help", b'{"n":1}', 1, False, False), 7),
            (Message("kiosk/v1/a/b/health", big, 1, False, False), 65535),
        ]


def test_publish_properties_are_skipped() -> None:
    """A publisher may set v5 properties (here a payload format indicator and a user property):
    the payload starts after them."""
    props = b"\x01\x01" + b"\x26" + b"\x00\x01k" + b"\x00\x01v"
    topic = b"kiosk/v1/a/b/evt/help"
    body = len(topic).to_bytes(2, "big") + topic + (9).to_bytes(2, "big")
    body += bytes([len(props)]) + props + b'{"n":2}'
    frame = bytes([PUBLISH << 4 | 0x02 | 0x01, len(body)]) + body
    [(kind, flags, packet)] = Parser().feed(frame)
    assert kind == PUBLISH
    assert decode_publish(flags, packet) == (
        Message("kiosk/v1/a/b/evt/help", b'{"n":2}', 1, True, False),
        9,
    )


def test_a_malformed_length_is_refused() -> None:
    with pytest.raises(StreamError):
        Parser().feed(bytes([PUBLISH << 4]) + b"\xff\xff\xff\xff\x01")


def test_acknowledgements_are_one_write_of_pubacks() -> None:
    assert puback_packets([1, 258]) == bytes([PUBACK << 4, 2, 0, 1, PUBACK << 4, 2, 1, 2])


def test_a_failing_batch_is_offered_again_and_acknowledged_only_after_it_succeeds(
    broker: MosquittoBroker,
) -> None:
    """The database is down for the first attempts: nothing is acknowledged, nothing is lost."""
    failures = [3]
    stored: list[bytes] = []
    lock = threading.Lock()

    def on_batch(messages: list[Message]) -> None:
        with lock:
            if failures[0] > 0:
                failures[0] -= 1
                raise RuntimeError("database unavailable")
            stored.extend(m.payload for m in messages)

    def stream() -> StreamSubscriber:
        return StreamSubscriber(
            broker.host,
            broker.port,
            "stream-retry",
            [("kiosk/v1/+/+/evt/#", 1)],
            on_batch,
            username=CONSOLE_USER,
            password=broker.console_password,
            session_expiry_s=600,
            retry_s=0.2,
        )

    first = stream()
    first.start()
    assert first.connected.wait(10)
    payloads = [json.dumps({"event_id": str(i)}) for i in range(200)]
    publish(broker, payloads)
    deadline = time.monotonic() + 30
    while len(stored) < 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    first.stop()
    assert sorted(stored, key=lambda p: int(json.loads(p)["event_id"])) == [
        p.encode() for p in payloads
    ]
    # everything was acknowledged: a new connection of the same session gets nothing again
    stored.clear()
    again = stream()
    again.start()
    assert again.connected.wait(10)
    time.sleep(1.0)
    again.stop()
    assert stored == []


def publish(broker: MosquittoBroker, payloads: list[str], station: str = "st-1") -> None:
    subprocess.run(
        [
            "mosquitto_pub",
            *("-h", broker.host, "-p", str(broker.port), "-q", "1", "-l"),
            *("-u", CONSOLE_USER, "-P", broker.console_password),
            *("-t", f"kiosk/v1/site-1/{station}/evt/transaction"),
        ],
        input=("\n".join(payloads) + "\n").encode(),
        check=True,
        timeout=120,
    )


def stored_events(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return int(conn.execute("SELECT count(DISTINCT event_id) FROM events").fetchone()[0])
    except sqlite3.OperationalError:  # the console has not made its tables yet
        return 0


def start_console(broker: MosquittoBroker, tmp: Path, db: Path) -> subprocess.Popen[bytes]:
    secret = tmp / "broker.secret"
    secret.write_text(broker.console_password)
    with (tmp / "console.log").open("ab") as log:
        return subprocess.Popen(
            [
                sys.executable,
                *("-m", "fleet.cli", "console", "--broker", f"{broker.host}:{broker.port}"),
                *("--password-file", str(secret), "--db", f"sqlite:///{db}"),
                *("--http", f"127.0.0.1:{free_port()}", "--insecure-cookies"),
                *("--client-id", "console-crash-test", "--session-expiry", "600"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_a_console_killed_mid_stream_loses_nothing(broker: MosquittoBroker, tmp_path: Path) -> None:
    db = tmp_path / "console.sqlite3"
    console = start_console(broker, tmp_path, db)
    try:
        deadline = time.monotonic() + 60
        while stored_events(db) < 1:  # until the console has subscribed: the same event again
            assert time.monotonic() < deadline, "the console never stored an event"
            publish(broker, [messages.event("transaction", "st-1", "first").decode()])
            time.sleep(0.5)
        total = 50_000
        payloads = [
            messages.event("transaction", "st-2", uuid.uuid4().hex).decode() for _ in range(total)
        ]
        threading.Thread(target=publish, args=(broker, payloads, "st-2"), daemon=True).start()
        wait_for(lambda: stored_events(db) > 2_000, 120, "the stream under way")
        os.killpg(console.pid, signal.SIGKILL)
        console.wait(10)
        at_kill = stored_events(db)
        assert at_kill < total + 1, "the kill came after the whole stream: it proves nothing"
        console = start_console(broker, tmp_path, db)
        wait_for(lambda: stored_events(db) == total + 1, 180, "every event after the restart")
        time.sleep(1.0)
        with sqlite3.connect(db) as conn:
            rows = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        assert rows == total + 1  # each once
    finally:
        if console.poll() is None:
            os.killpg(console.pid, signal.SIGTERM)
            console.wait(20)


def known_stations(db: Path) -> int:
    with sqlite3.connect(db, timeout=5) as conn:
        return int(conn.execute("SELECT count(*) FROM stations").fetchone()[0])


def retain(broker: MosquittoBroker, station: str, kind: str, payload: bytes) -> None:
    subprocess.run(
        [
            "mosquitto_pub",
            *("-h", broker.host, "-p", str(broker.port), "-q", "1", "-r"),
            *("-u", CONSOLE_USER, "-P", broker.console_password),
            *("-t", f"kiosk/v1/site-1/{station}/{kind}", "-m", payload.decode()),
        ],
        check=True,
        timeout=30,
    )


def test_a_console_back_on_its_session_is_not_sent_every_retained_state_again(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    """Retained ``state`` and ``birth`` come at the first subscription of the console's session;
    on a reconnect only what changed meanwhile comes (it was queued), unless the database is new
    (then it needs the whole fleet again)."""

    def ingest(db: Path) -> Ingest:
        store = Store(f"sqlite:///{db}")
        store.migrate()
        settings = Settings(client_id="console-retained", session_expiry_s=600)
        return Ingest(store, broker.console_access(), settings=settings)

    def run_until(db: Path, stations: int) -> int:
        """Run a console on ``db`` until it knows ``stations`` and 1 s more: messages taken."""
        console = ingest(db)
        console.start()
        try:
            assert console.connected.wait(10)
            wait_for(lambda: known_stations(db) >= stations, 20, "the stations")
            time.sleep(1.0)
            return console.ingested
        finally:
            console.stop()
            console.store.close()

    for station in ("st-1", "st-2", "st-3"):
        retain(broker, station, "birth", messages.birth("site-1", station))
        retain(broker, station, "state", messages.state(True, 1, ts=1.0))
    db = tmp_path / "console.sqlite3"
    assert run_until(db, 3) == 6  # every station's state and birth, retained
    retain(broker, "st-2", "state", messages.state(False, 1, ts=2.0))  # while away
    assert run_until(db, 3) == 1  # only the change, queued in the session
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT online FROM stations WHERE station = 'st-2'").fetchone() == (0,)
    assert run_until(tmp_path / "new.sqlite3", 3) == 6  # a new database gets the fleet again
