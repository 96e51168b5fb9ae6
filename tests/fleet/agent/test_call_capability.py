"""The ``call`` capability in the station's birth (issue 22): reported only where the kiosk noted
call audio in the journal, and reported again when the kiosk starts after the agent connected
(the console offers a call only to a station that can take one)."""

from __future__ import annotations

from pathlib import Path

from fleet.agent import Agent
from fleet.protocol.models import CALL_META
from sandbox.mosquitto import MosquittoBroker
from statedir.journal import Journal
from tests.fleet.agent.test_fleet import Watcher, config, until


def test_the_birth_says_call_only_once_the_kiosk_noted_its_call_audio(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    watcher = Watcher(broker)
    cfg = config(tmp_path, broker)
    cfg.state_dir.mkdir(parents=True)
    journal = Journal(cfg.journal_path)
    agent = Agent(cfg)
    agent.start()
    try:
        until(lambda: bool(watcher.on("/birth")), what="birth")
        assert "call" not in watcher.on("/birth")[-1]["capabilities"]  # no kiosk has said yet
        journal.set_meta(CALL_META, "1")  # the kiosk starts with a microphone and a speaker
        until(lambda: "call" in watcher.on("/birth")[-1]["capabilities"], what="call in birth")
        births = len(watcher.on("/birth"))
        journal.set_meta(CALL_META, "0")  # restarted without them
        until(lambda: "call" not in watcher.on("/birth")[-1]["capabilities"], what="call gone")
        assert len(watcher.on("/birth")) == births + 1  # once per change, not every second
        until(lambda: len(watcher.on("/health")) >= 3, what="a few heartbeats")
        assert len(watcher.on("/birth")) == births + 1
    finally:
        agent.stop()
        journal.close()
        watcher.close()
