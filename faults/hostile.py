"""A hostile station: one enrolled terminal floods every topic it may write with broken messages
while a healthy one asks for help, through the shipped TLS broker configuration.

- **The flood** (:func:`mutations`): valid messages of every kind a station sends (``state``,
  ``birth``, ``health``, ``reported``, every ``evt/…``, ``cmd/{id}/result``), each broken in one
  way — a field of the wrong type, a huge or negative number, NaN, nesting 5,000 deep, invalid
  UTF-8, a truncated or non-object document, a field added or taken away, an unknown event kind or
  topic, a payload over the protocol's limit — and kept only if the console's own edge check
  (:func:`fleet.console.edge.check`) refuses it, so every one must end as a dead letter. Some
  ``state`` messages are retained, the last of them broken.
- **The healthy station** sends a help request every quarter second meanwhile. Each must be stored
  and raised as an alert within 5 s of being sent (polled in the database every 50 ms).
- **The console** (its ingest, on SQLite, over the same TLS broker) must acknowledge everything:
  every broken message the broker accepted becomes a dead letter, and the bad station has one
  alert (``malformed_messages``, counted). Then the console is stopped and started again: the
  broken retained ``state`` arrives first, and help requests are still alerted within 5 s.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select

from faults.report import Row
from fleet.console import enroll
from fleet.console.edge import ALERT_KIND, EventIn, Item, check
from fleet.console.ingest import Ingest, Settings
from fleet.console.store import Alert, DeadLetter, Station, StationEvent, Store
from fleet.protocol.models import MAX_PAYLOAD_BYTES
from fleet.protocol.topics import ROOT, dumps
from fleet.trust.pki import write_cert, write_key
from sandbox.mosquitto import MosquittoBroker, TlsFiles

SITE = "hostile-site"
BAD, GOOD = "st-bad", "st-good"
ALERT_WITHIN_S = 5.0


def _valid(station: str, rng: random.Random) -> list[tuple[str, dict[str, Any]]]:
    """One well-formed message of each kind a station sends (topic below its root, payload)."""
    now = time.time()
    event = {"event_id": f"e-{rng.getrandbits(48):x}", "station": station, "ts": now}
    event["backfill"] = False
    return [
        ("state", {"online": True, "session": 7, "reason": "connect", "ts": now}),
        (
            "birth",
            {
                "station": station,
                "site": SITE,
                "app_version": "0.1.0",
                "catalog_version": 3,
                "hardware": {"reader": "sim"},
                "capabilities": ["id_card", "a4"],
                "cert_expiry": None,
                "session": 7,
                "ts": now,
            },
        ),
        (
            "health",
            {
                "seq": 1,
                "uptime": 5.0,
                "ui_alive": True,
                "devices": {"a4_printer": {"state": "ok", "reasons": []}},
                "disk_free_mib": 900,
                "last_txn_ts": None,
                "outbox": 0,
                "interval_s": 60.0,
                "ts": now,
            },
        ),
        (
            "reported",
            {
                "rev": 1,
                "rev_applied": 1,
                "catalog_version": 3,
                "phase": "applied",
                "error": None,
                "detail": None,
                "ts": now,
            },
        ),
        (
            "evt/transaction",
            event
            | {
                "txn_id": "t1",
                "service": "queue_ticket",
                "outcome": "completed",
                "outputs": ["thermal"],
                "abandoned_state": None,
                "reason": None,
                "lang": "zh",
                "elder": True,
                "duration_s": 12.0,
            },
        ),
        (
            "evt/rating",
            event | {"txn_id": "t1", "service": "queue_ticket", "rating": 5, "tags": []},
        ),
        ("evt/help", event | {"screen": "home", "txn_id": None}),
        ("evt/alert", event | {"kind": "maintenance", "detail": {"action": "entered"}}),
        (
            "cmd/c1/result",
            {
                "id": "c1",
                "name": "ping",
                "station": station,
                "status": "succeeded",
                "repeat": False,
                "detail": {},
                "ts": now,
            },
        ),
    ]


_WRONG = ["x", [1, 2], {"a": 1}, None, True, 2**64, -1, 10**30, -(2**63) - 1, 1.5, "", "9" * 80]


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _break(rng: random.Random, rest: str, payload: dict[str, Any]) -> tuple[str, bytes]:
    """One way of breaking a valid message: (topic below the root, the bytes sent)."""
    way = rng.randrange(12)
    body = dict(payload)
    key = rng.choice(sorted(body))
    if way <= 3:  # a field of the wrong type, or a number out of range
        body[key] = rng.choice(_WRONG)
        return rest, dumps(body)
    if way == 4:  # nesting far deeper than any parser should follow
        text = dumps({**body, key: 0}).decode()
        return rest, text.replace(f'"{key}":0', f'"{key}":{_nested(5000)}').encode()
    if way == 5:  # invalid UTF-8 in a string
        return rest, dumps(body).replace(b'"', b'"\xff\xfe', 1)
    if way == 6:  # truncated, or not an object
        data = dumps(body)
        return rest, rng.choice([data[: len(data) // 2], b"[]", b"42", b'"x"', b"", b"NaN"])
    if way == 7:  # a field the protocol does not know
        body[f"extra_{rng.randrange(1000)}"] = 1
        return rest, dumps(body)
    if way == 8:  # a required field taken away
        del body[key]
        return rest, dumps(body)
    if way == 9:  # an event kind or a topic the protocol does not have
        kind = f"k{rng.getrandbits(32):x}"
        return rng.choice([f"evt/{kind}", f"cmd/{kind}/result/x", f"evt/{kind}/deeper"]), dumps(
            body
        )
    if way == 10:  # NaN and infinity (JSON has neither)
        text = dumps({**body, key: 0}).decode()
        return rest, text.replace(f'"{key}":0', f'"{key}":{rng.choice(["NaN", "1e999"])}').encode()
    # over the protocol's payload limit (rarely: each is a quarter of a megabyte)
    if rng.random() < 0.02:
        body[key] = "x" * (MAX_PAYLOAD_BYTES + 10)
        return rest, dumps(body)
    body[key] = {"deep": _nested(30)}  # a string where a number goes
    return rest, dumps(body)


def mutations(count: int, *, seed: int = 17) -> Iterator[tuple[str, bytes]]:
    """``count`` broken messages of station :data:`BAD`, each refused by the console's edge."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible test flood, not a secret
    made = 0
    while made < count:
        rest, payload = rng.choice(_valid(BAD, rng))
        topic_rest, data = _break(rng, rest, payload)
        if not isinstance(check(SITE, BAD, topic_rest, data, frozenset()), EventIn | Item):
            made += 1
            yield topic_rest, data


@dataclass
class Publisher:
    """A station's MQTT client with its certificate; counts what the broker accepted."""

    station: str
    broker: MosquittoBroker
    tls: TlsFiles
    accepted: int = 0
    refused: int = 0
    connected: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=self.station, protocol=mqtt.MQTTv5
        )
        self.client.tls_set(
            ca_certs=str(self.tls.ca_file),
            certfile=str(self.tls.cert_file),
            keyfile=str(self.tls.key_file),
        )
        self.client.max_inflight_messages_set(200)
        self.client.reconnect_delay_set(0.1, 1)
        self.client.on_connect = lambda *_: self.connected.set()
        self.client.on_disconnect = lambda *_: self.connected.clear()
        self.client.on_publish = self._on_publish
        self._lock = threading.Lock()

    def _on_publish(self, _c: Any, _u: Any, _mid: int, reason: Any, _p: Any) -> None:
        with self._lock:
            if reason.is_failure:
                self.refused += 1
            else:
                self.accepted += 1

    def start(self) -> None:
        self.client.connect(self.broker.host, self.broker.port)
        self.client.loop_start()
        if not self.connected.wait(10):
            raise RuntimeError(f"{self.station} did not connect")

    def publish(self, rest: str, data: bytes, *, retain: bool = False) -> None:
        topic = f"{ROOT}/{SITE}/{self.station}/{rest}"
        while True:
            info = self.client.publish(topic, data, qos=1, retain=retain)
            if info.rc == mqtt.MQTT_ERR_SUCCESS:
                return
            self.connected.wait(1)  # disconnected (the broker refused an oversize packet)

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@dataclass
class HelpWatch:
    """Help requests from :data:`GOOD`: when each was sent, stored and alerted."""

    store: Store
    sent: dict[str, float] = field(default_factory=dict)
    stored: dict[str, float] = field(default_factory=dict)
    alerted: dict[int, float] = field(default_factory=dict)  # the alert's count → when seen

    def poll(self) -> None:
        now = time.monotonic()
        with self.store.session() as db:
            good = select(Station.id).where(Station.station == GOOD).scalar_subquery()
            ids = db.scalars(
                select(StationEvent.event_id).where(
                    StationEvent.station_id == good, StationEvent.kind == "help"
                )
            ).all()
            count = db.scalar(
                select(func.max(Alert.count)).where(
                    Alert.station_id == good,
                    Alert.kind == "help_request",
                    Alert.active_key.is_not(None),
                )
            )
        for event_id in ids:
            self.stored.setdefault(event_id, now)
        for n in range(1, (count or 0) + 1):
            self.alerted.setdefault(n, now)

    def worst(self, ids: list[str]) -> float:
        """The longest time from sending to both stored and alerted, over these requests."""
        order = list(self.sent)
        worst = 0.0
        for event_id in ids:
            n = order.index(event_id) + 1
            done = max(self.stored.get(event_id, float("inf")), self.alerted.get(n, float("inf")))
            worst = max(worst, done - self.sent[event_id])
        return worst


@dataclass
class Outcome:
    sent: int = 0
    accepted: int = 0
    refused_by_broker: int = 0
    dead_letters: int = 0
    bad_alerts: list[tuple[str, int]] = field(default_factory=list)
    help_worst_s: float = 0.0
    helps: int = 0
    after_restart_worst_s: float = 0.0
    retained_set_aside_after_restart: bool = False
    acknowledged: int = 0
    seconds: float = 0.0


def _help(station: str, event_id: str) -> bytes:
    payload = {
        "event_id": event_id,
        "station": station,
        "ts": time.time(),
        "backfill": False,
        "screen": "choose",
        "txn_id": None,
    }
    return dumps(payload)


def _console(broker: MosquittoBroker, store: Store) -> Ingest:
    ingest = Ingest(store, broker.console_access(), settings=Settings(sweep_s=1.0))
    ingest.start()
    deadline = time.monotonic() + 15
    while not ingest.connected.is_set():
        if time.monotonic() > deadline:
            raise RuntimeError("the console did not connect")
        time.sleep(0.05)
    return ingest


def _enrol(store: Store, broker: MosquittoBroker, station: str, folder: Path) -> TlsFiles:
    """Enrol ``station`` at :data:`SITE` as an operator would; its certificate files."""
    with store.session() as db:
        issued = enroll.enrol(db, broker.ca, SITE, station, "faults", days=90)
    folder.mkdir(parents=True, exist_ok=True)
    tls = TlsFiles(broker.ca_file, folder / f"{station}.crt", folder / f"{station}.key")
    write_cert(tls.cert_file, issued.cert)
    write_key(tls.key_file, issued.key)
    return tls


def _run_helps(
    good: Publisher, watch: HelpWatch, prefix: str, until_done: Callable[[], bool]
) -> list[str]:
    """A help request every quarter second until ``until_done`` (at least 4)."""
    sent: list[str] = []
    n = 0
    while n < 4 or not until_done():
        event_id = f"{prefix}-{n}"
        watch.sent[event_id] = time.monotonic()
        good.publish("evt/help", _help(GOOD, event_id))
        sent.append(event_id)
        n += 1
        for _ in range(5):
            watch.poll()
            time.sleep(0.05)
    return sent


def run(work: Path, count: int = 10_000) -> Outcome:
    """The whole scenario (see the module's docstring); the figures of its row."""
    started = time.monotonic()
    out = Outcome()
    broker = MosquittoBroker(work / "broker", tls=True)
    broker.start()
    store = Store(f"sqlite:///{work / 'console.sqlite3'}")
    store.migrate()
    ingest = _console(broker, store)
    bad = Publisher(BAD, broker, _enrol(store, broker, BAD, work / BAD))
    good = Publisher(GOOD, broker, _enrol(store, broker, GOOD, work / GOOD))
    watch = HelpWatch(store)
    try:
        for station in (bad, good):  # both start as healthy stations do
            station.start()
            for rest, payload in _valid(station.station, random.Random(1))[:3]:  # noqa: S311
                station.publish(rest, dumps(payload), retain=rest in ("state", "birth"))
        deadline = time.monotonic() + 10
        while bad.accepted < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        bad.accepted = 0  # from here on, only the flood
        flood_done = threading.Event()

        def flood() -> None:
            for i, (rest, data) in enumerate(mutations(count)):
                bad.publish(rest, data, retain=rest == "state" and i % 7 == 0)
                out.sent += 1
            broken_state = json.dumps({"online": True, "session": "x", "ts": [1, 2]}).encode()
            bad.publish("state", broken_state, retain=True)  # kept by the broker, broken
            out.sent += 1
            deadline = time.monotonic() + 300  # until the broker has answered every one
            while bad.accepted + bad.refused < out.sent and time.monotonic() < deadline:
                time.sleep(0.05)
            flood_done.set()

        flooder = threading.Thread(target=flood, name="hostile-flood", daemon=True)
        flooder.start()
        ids = _run_helps(
            good,
            watch,
            "before",
            lambda: flood_done.is_set() and _dead_letters(store) >= bad.accepted,
        )
        flooder.join(timeout=600)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the console catches up with the flood
            watch.poll()
            out.dead_letters = _dead_letters(store)
            if out.dead_letters >= bad.accepted and len(watch.stored) >= len(ids):
                break
            time.sleep(0.2)
        out.accepted, out.refused_by_broker = bad.accepted, bad.refused
        out.help_worst_s, out.helps = watch.worst(ids), len(ids)
        out.acknowledged = ingest.stream.acknowledged

        # the console restarts: the broken retained state comes back at once
        ingest.stop()
        restarted = time.time()
        ingest = _console(broker, store)
        again = _run_helps(good, watch, "after", lambda: True)
        time.sleep(ALERT_WITHIN_S)
        watch.poll()
        out.after_restart_worst_s = watch.worst(again)
        out.helps += len(again)
        with store.session() as db:
            out.retained_set_aside_after_restart = bool(
                db.scalar(
                    select(func.count(DeadLetter.id)).where(
                        DeadLetter.station == BAD,
                        DeadLetter.kind == "state",
                        DeadLetter.received_at >= restarted,
                    )
                )
            )
            bad_id = select(Station.id).where(Station.station == BAD).scalar_subquery()
            out.bad_alerts = [
                (a.kind, a.count)
                for a in db.scalars(select(Alert).where(Alert.station_id == bad_id))
            ]
        out.dead_letters = _dead_letters(store)
    finally:
        for client in (bad, good):
            client.stop()
        ingest.stop()
        store.close()
        broker.stop()
    out.seconds = time.monotonic() - started
    return out


def _dead_letters(store: Store) -> int:
    """Every message set aside (the table is pruned to its newest; the alert counts them all)."""
    with store.session() as db:
        count = db.scalar(
            select(func.max(Alert.count)).where(Alert.kind == ALERT_KIND)
        )  # one alert, counted
    return int(count or 0)


def scenario(work: Path, count: int = 10_000) -> Row:
    """``make faults``' row: survived if every help request was alerted within 5 s, before and
    after the restart, and every broken message was set aside under one alert."""
    out = run(work, count)
    lost = []
    if out.dead_letters < out.accepted:
        lost.append(f"{out.accepted - out.dead_letters} broken messages never set aside")
    late = max(out.help_worst_s, out.after_restart_worst_s)
    if late > ALERT_WITHIN_S:
        lost.append(f"a help request alerted after {late:.1f} s")
    alerts = [kind for kind, _ in out.bad_alerts]
    survived = alerts == [ALERT_KIND] and out.retained_set_aside_after_restart
    return Row(
        "hostile station",
        survived,
        lost,
        out.after_restart_worst_s,
        f"{out.sent} broken messages from one enrolled station over the shipped TLS broker"
        f" ({out.accepted} accepted by the broker, {out.refused_by_broker} refused by its ACL or"
        f" size limit), {out.dead_letters} set aside under {len(out.bad_alerts)} alert(s)"
        f" {out.bad_alerts}; {out.helps} help requests from a healthy station meanwhile, the"
        f" slowest stored and alerted in {out.help_worst_s:.2f} s; console restarted with a"
        f" broken retained state (set aside again: {out.retained_set_aside_after_restart});"
        " recovered = the slowest help request after the restart",
    )
