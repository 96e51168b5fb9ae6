"""Every message the real agent and the simulated terminals publish fits the protocol models.

The real agent serves a journal with residents' sessions (transactions, ratings, help), print
failures and maintenance alerts, device health written as the kiosk writes it, commands from
the console (one it runs, one it hands to the UI, one it does not know) and a catalog it cannot
fetch; the simulator runs 10 terminals with events. A console-rights subscriber keeps every
message under ``kiosk/v1/#``, and each one a station sent is read through
:func:`fleet.protocol.models.station_message`.
"""

from __future__ import annotations

import inspect
import json
import time
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from drivers.cups.printer import CupsPrinter
from drivers.escpos.printer import EscposPrinter
from drivers.sam.reader import SamReader
from drivers.speech.voice import Pyttsx3Speech
from fleet.agent import Agent, AgentConfig
from fleet.mqtt.client import CONSOLE_USER
from fleet.protocol.commands import COMMANDS
from fleet.protocol.models import STATION_DEVICES, Health, station_message
from fleet.protocol.topics import StationTopics, dumps, parse_station_topic
from flows.identity import identity_hash
from flows.models import DeviceHealth, DeviceState
from flows.synthetic import SYNTHETIC_RESIDENTS
from sandbox.mosquitto import MosquittoBroker
from statedir.journal import Journal
from tests.fleet.test_simulate import Watcher, simulator

SITE, STATION = "zibo-gx", "st-0777"


def station_messages(watcher: Watcher) -> list[tuple[str, dict[str, Any]]]:
    """(topic below the station's root, payload) of every message a station sent."""
    out = []
    with watcher.lock:
        messages = list(watcher.messages)
    for topic, payload, _retained in messages:
        parsed = parse_station_topic(topic)
        if parsed is None:
            continue
        rest = parsed[2]
        if rest == "desired" or (rest.startswith("cmd/") and not rest.endswith("/result")):
            continue  # what the console sent
        out.append((rest, payload))
    return out


def kinds(messages: list[tuple[str, dict[str, Any]]]) -> set[str]:
    return {"cmd/result" if r.startswith("cmd/") else r for r, _ in messages}


def fill_journal(journal: Journal) -> None:
    key = b"k" * 32
    for i, person in enumerate(SYNTHETIC_RESIDENTS):
        txn = journal.begin_transaction(
            "social_insurance_certificate",
            lang=("zh", "en")[i % 2],
            elder=i % 2 == 0,
            identity_hash=identity_hash(key, person.id_number),
        )
        journal.help_request(screen="preview", txn_id=txn)
        if i == 0:
            journal.begin_print(f"{txn}-a4", txn_id=txn, printer="a4")
            journal.end_print(f"{txn}-a4", state="failed", reason="media-empty")
            journal.finish_transaction(txn, outcome="failed", reason="error.print_failed")
        else:
            journal.finish_transaction(txn, outcome="completed", outputs=["a4", "thermal"])
            journal.rate(txn, 3 + i % 3, ["fast"])
    abandoned = journal.begin_transaction("", lang="zh", elder=False)
    journal.finish_transaction(
        abandoned, outcome="abandoned", abandoned_state="identify", reason="timeout"
    )
    journal.alert("maintenance", {"action": "entered"})
    journal.put_health(
        [
            DeviceHealth("id_reader", "id_reader", DeviceState.OK).as_dict(),
            DeviceHealth("a4_printer", "a4_printer", DeviceState.FAULT, ("media-empty",)).as_dict(),
            DeviceHealth("thermal_printer", "thermal_printer", DeviceState.DEGRADED).as_dict(),
            DeviceHealth("speech", "speech", DeviceState.UNKNOWN).as_dict(),
        ]
    )
    journal.touch_ui_heartbeat()


def console_client(broker: MosquittoBroker) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.username_pw_set(CONSOLE_USER, broker.console_password)
    client.connect(broker.host, broker.port)
    client.loop_start()
    return client


def test_every_message_the_real_agent_sends_fits_the_models(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    watcher = Watcher(broker, "kiosk/v1/#")
    journal = Journal(tmp_path / "journal.sqlite3")
    fill_journal(journal)
    agent = Agent(
        AgentConfig(
            site=SITE,
            station=STATION,
            host=broker.host,
            port=broker.port,
            state_dir=tmp_path / "agent",
            journal_path=tmp_path / "journal.sqlite3",
            health_interval_s=0.5,
        )
    )
    console = console_client(broker)
    topics = StationTopics(SITE, STATION)
    agent.start()
    try:
        assert agent.connected.wait(10)
        # its health is published after its subscriptions, and the broker keeps a client's order
        deadline = time.monotonic() + 10
        while "health" not in kinds(station_messages(watcher)) and time.monotonic() < deadline:
            time.sleep(0.05)
        for name, args in (("rebirth", {}), ("collect_logs", {"lines": 20}), ("nope", {})):
            body = {"name": name, "args": args, "timeout_s": 30}
            console.publish(topics.command(uuid.uuid4().hex), dumps(body), qos=1)
        console.publish(topics.command(uuid.uuid4().hex), dumps({"name": 5}), qos=1)
        desired = {
            "rev": 1,
            "catalog": {"target": "c.toml", "version": 2, "sha256": "a" * 64, "length": 10},
            "metadata_url": "http://127.0.0.1:1/metadata/",
            "targets_url": "http://127.0.0.1:1/targets/",
        }
        console.publish(topics.desired, dumps(desired), qos=1, retain=True)
        want = {"state", "birth", "health", "evt/transaction", "evt/rating", "evt/help"}
        want |= {"evt/alert", "cmd/result", "reported"}
        deadline = time.monotonic() + 30
        while not want <= kinds(station_messages(watcher)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert want <= kinds(station_messages(watcher)), kinds(station_messages(watcher))
        time.sleep(1.0)  # the final results and the failed report
    finally:
        agent.stop()
        console.loop_stop()
        console.disconnect()
        journal.close()
    time.sleep(0.5)
    watcher.close()
    messages = station_messages(watcher)
    for rest, payload in messages:
        station_message(rest, payload)  # raises with the field that does not fit
    assert ("state", False) in {(r, p["online"]) for r, p in messages if r == "state"}
    statuses = {p["status"] for r, p in messages if r.startswith("cmd/")}
    assert {"accepted", "succeeded", "failed"} <= statuses
    health = Health.model_validate(next(p for r, p in messages if r == "health"))
    assert sorted(health.devices) == sorted(STATION_DEVICES)
    assert health.devices["a4_printer"].state is DeviceState.FAULT


def test_every_message_the_simulator_sends_fits_the_models_and_matches_the_agent(
    broker: MosquittoBroker,
) -> None:
    watcher = Watcher(broker, "kiosk/v1/#")
    sim = simulator(broker, 10, health_interval_s=0.3, event_interval_s=0.2)
    try:
        deadline = time.monotonic() + 20
        want = {"state", "birth", "health", "evt/transaction", "evt/rating"}
        while not want <= kinds(station_messages(watcher)) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        sim.stop()
    time.sleep(0.5)
    watcher.close()
    messages = station_messages(watcher)
    assert want <= kinds(messages)
    for rest, payload in messages:
        station_message(rest, payload)
    for rest, payload in messages:
        if rest == "health":  # the names and states the real agent reports
            assert sorted(payload["devices"]) == sorted(STATION_DEVICES)
            assert {d["state"] for d in payload["devices"].values()} == {"ok"}


def test_the_station_devices_are_the_drivers_own_names() -> None:
    """The protocol's device names are what the drivers report by default (no drift)."""
    drivers = (SamReader, CupsPrinter, EscposPrinter, Pyttsx3Speech)
    names = [inspect.signature(d.__init__).parameters["name"].default for d in drivers]
    assert names == list(STATION_DEVICES)


def test_a_message_that_does_not_fit_is_refused_with_its_field() -> None:
    good = {"online": True, "session": 3, "ts": 1.0, "reason": "connect"}
    assert station_message("state", good)
    for bad, field in (
        ({**good, "session": "x"}, "session"),
        ({**good, "session": 2**64 - 1}, "session"),
        ({**good, "ts": [1, 2]}, "ts"),
        ({**good, "extra": 1}, "extra"),
    ):
        try:
            station_message("state", bad)
        except ValueError as err:
            assert field in str(err)
        else:
            raise AssertionError(f"{bad} was accepted")
    health = {
        "seq": 1,
        "uptime": 0,
        "ui_alive": True,
        "devices": {"x": {"state": "ok", "reasons": 5}},
        "disk_free_mib": 1,
        "last_txn_ts": None,
        "outbox": 0,
        "interval_s": 60,
        "ts": 1,
    }
    try:
        station_message("health", health)
    except ValueError as err:
        assert "reasons" in str(err)
    else:
        raise AssertionError("a health whose reasons are 5 was accepted")
    try:
        station_message("evt/unknown", {})
    except ValueError as err:
        assert "evt/unknown" in str(err)


def test_the_console_offers_exactly_the_commands_a_station_knows() -> None:
    from fleet.agent.commands import UI_HANDLERS
    from fleet.console.app import COMMANDS as CONSOLE_COMMANDS

    assert set(CONSOLE_COMMANDS) == {n for n, s in COMMANDS.items() if s.by_hand}
    assert all(CONSOLE_COMMANDS[n] == COMMANDS[n].timeout_s for n in CONSOLE_COMMANDS)
    assert {h.name for h in UI_HANDLERS} == {n for n, s in COMMANDS.items() if s.target == "ui"}
    assert json.dumps(sorted(COMMANDS))  # names are plain strings
