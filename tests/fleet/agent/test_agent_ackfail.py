"""The agent keeps acknowledged events when removing them from the journal fails.

The fault is real: another connection holds the journal's write lock (``BEGIN EXCLUSIVE``) for
longer than the agent's SQLite busy timeout, as a stuck UI transaction or a backup would. The
agent's busy timeout is set to 2 s here (``AgentConfig.journal_busy_timeout_s``; 10 s in
production): every failed write waits it out, and the fault must outlast several of them.
Reads go on (WAL), so the agent keeps publishing, the broker keeps acknowledging, and every
``DELETE`` of acknowledged events fails with "database is locked". The agent must keep those
events, neither send them again nor stall on them, and remove them once the lock is gone: every
event reaches a subscriber that de-duplicates by ``event_id``, and the outbox empties.

With a broker restart in the middle of the fault, the events the broker had acknowledged but
the journal still holds are sent again after the reconnect (at-least-once); the subscriber
de-duplicates them by ``event_id``, and they carry ``backfill: true``. Under this fault the
journal cannot record the attempt either (``mark_attempt`` fails too), so the flag comes from the
agent's memory of what it sent; the events start the run fresh (made just before the agent
starts), so a re-send without that memory would go out unmarked (it did, before the fix).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from fleet.agent import MAX_IN_FLIGHT, Agent, AgentConfig
from fleet.mqtt.client import CONSOLE_USER
from flows.synthetic import SYNTHETIC_RESIDENTS
from sandbox.mosquitto import MosquittoBroker
from statedir.journal import Journal, identity_hash

SITE = "zibo-gx"
STATION = "st-0321"
BUSY_S = 2.0  # the agent's journal busy timeout: each failed write waits this long
SESSIONS = 100  # three events each: more than the agent keeps in flight (MAX_IN_FLIGHT)


def until(cond: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


class EventSubscriber:
    """Every delivery of every station event, with the console's rights and a persistent
    session (a broker restart loses nothing for it). Deliveries the broker itself repeats
    (the MQTT DUP flag) are kept apart: only the agent's own sends count as re-sends."""

    def __init__(self, broker: MosquittoBroker) -> None:
        self.deliveries: list[tuple[str, bool]] = []  # (event_id, backfill)
        self.broker_repeats = 0
        self._lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id="ackfail-subscriber", protocol=mqtt.MQTTv5
        )
        self.client.username_pw_set(CONSOLE_USER, broker.console_password)
        self.client.reconnect_delay_set(min_delay=1, max_delay=1)
        self.client.on_connect = lambda c, *_: c.subscribe(
            f"kiosk/v1/{SITE}/{STATION}/evt/#", qos=1
        )
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = self._on_message
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 600
        self.client.connect(broker.host, broker.port, clean_start=False, properties=props)
        self.client.loop_start()
        assert self.subscribed.wait(5), "the subscriber did not subscribe"

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        body = json.loads(msg.payload)
        with self._lock:
            if msg.dup:
                self.broker_repeats += 1
                return
            self.deliveries.append((body["event_id"], bool(body["backfill"])))

    def counts(self) -> Counter[str]:
        with self._lock:
            return Counter(event_id for event_id, _ in self.deliveries)

    def backfilled(self) -> set[str]:
        with self._lock:
            return {event_id for event_id, backfill in self.deliveries if backfill}

    def resends_unflagged(self) -> set[str]:
        """Events that came again without ``backfill: true``."""
        seen: set[str] = set()
        unflagged = set()
        with self._lock:
            for event_id, backfill in self.deliveries:
                if event_id in seen and not backfill:
                    unflagged.add(event_id)
                seen.add(event_id)
        return unflagged

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def fill_outbox(journal: Journal, sessions: int) -> set[str]:
    """Sessions of identified residents: a help request, a transaction and a rating each."""
    before = {e.id for e in journal.pending_events(limit=100_000)}
    key = b"a" * 32
    for i in range(sessions):
        person = SYNTHETIC_RESIDENTS[i % len(SYNTHETIC_RESIDENTS)]
        txn = journal.begin_transaction(
            "social_insurance_certificate",
            lang="zh",
            elder=i % 2 == 0,
            identity_hash=identity_hash(key, person.id_number),
        )
        journal.help_request(screen="choose", txn_id=txn)
        journal.finish_transaction(txn, outcome="completed", outputs=["a4", "thermal"])
        journal.rate(txn, 1 + i % 5)
    return {e.id for e in journal.pending_events(limit=100_000)} - before


def ack_failures(caplog: pytest.LogCaptureFixture) -> int:
    """Errors the agent logged that ``Journal.ack_events`` raised (whatever the agent said)."""
    return sum(
        r.name == "kiosk.agent"
        and r.exc_info is not None
        and any(f.name == "ack_events" for f in traceback.extract_tb(r.exc_info[2]))
        for r in caplog.records
    )


@pytest.mark.slow
@pytest.mark.parametrize("restart_broker", [False, True], ids=["steady", "broker-restart"])
def test_events_acknowledged_while_the_journal_is_locked_arrive_once_and_leave_the_outbox(
    tmp_path: Path,
    broker: MosquittoBroker,
    caplog: pytest.LogCaptureFixture,
    restart_broker: bool,
) -> None:
    caplog.set_level(logging.ERROR, logger="kiosk.agent")
    state = tmp_path / STATION
    journal_path = state / "journal.sqlite3"
    journal = Journal(journal_path)  # the UI's side of the journal
    all_ids = fill_outbox(journal, SESSIONS)
    total = len(all_ids)
    assert total == 3 * SESSIONS > MAX_IN_FLIGHT
    subscriber = EventSubscriber(broker)
    agent = Agent(
        AgentConfig(
            site=SITE,
            station=STATION,
            host=broker.host,
            port=broker.port,
            state_dir=state,
            journal_path=journal_path,
            health_interval_s=5.0,
            reconnect_max_s=2.0,
            journal_busy_timeout_s=BUSY_S,
        )
    )
    locker = sqlite3.connect(journal_path, isolation_level=None, timeout=30)
    locker.execute("BEGIN EXCLUSIVE")  # the fault: nothing can be written, everything read
    locked = True
    agent.start()
    try:
        until(lambda: len(subscriber.counts()) >= 100, what="the first events to arrive")
        if restart_broker:
            broker.restart()
        until(lambda: ack_failures(caplog) >= 1, timeout=60, what="a failed ack write")
        delivered_in_fault = len(subscriber.counts())
        assert journal.outbox_size() == total  # the broker acknowledged, the journal kept all
        if restart_broker:  # after the reconnect the acknowledged-but-kept events go out again
            until(
                lambda: any(n > 1 for n in subscriber.counts().values()),
                timeout=60,
                what="re-sends after the reconnect",
            )
            assert journal.outbox_size() == total
        locker.execute("ROLLBACK")  # the fault clears
        locked = False
        until(lambda: journal.outbox_size() == 0, timeout=60, what="the outbox to empty")
        until(lambda: set(subscriber.counts()) == all_ids, timeout=30, what="every event")
        time.sleep(1.0)  # anything sent twice at the end would be here by now
    finally:
        if locked:
            locker.execute("ROLLBACK")
        locker.close()
        agent.stop()
        subscriber.close()
        journal.close()

    counts = subscriber.counts()
    assert set(counts) == all_ids  # none lost, none invented: exactly once after de-duplication
    resent = {event_id for event_id, n in counts.items() if n > 1}
    print(
        f"{total} events; {delivered_in_fault} delivered during the fault; "
        f"{ack_failures(caplog)} failed ack writes; {len(resent)} sent again; "
        f"{subscriber.broker_repeats} repeated by the broker"
    )
    if restart_broker:
        # at-least-once across the reconnect: re-sends are marked, and at most what the agent
        # may have had in flight when the connection broke
        assert resent and not subscriber.resends_unflagged()
        assert len(resent) <= MAX_IN_FLIGHT
    else:
        # a failed removal is no reason to send again: the agent kept them in flight
        assert not resent
