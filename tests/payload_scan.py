"""The suite's scan of what stations send: no name or ID number ever leaves a station.

Every :class:`sandbox.mosquitto.MosquittoBroker` started during the session gets a subscriber
with the console's rights on ``kiosk/v1/#`` the moment it accepts connections (attached by
wrapping ``start``/``stop`` of the class; the broker itself runs unchanged). What stations send
(``state``, ``birth``, ``health``, ``evt/…``, ``reported``, ``cmd/…/result``) is kept for the
whole session and scanned after the last test for names and ID numbers of the demo dataset
(DESIGN.md: no personal data ever leaves the station).

The suite runs on several pytest-xdist workers: each worker scans what its own brokers carried
(:func:`scan`) and hands the result to the controller (``workeroutput``), which reports them all
together (:func:`report`) and fails the run on one finding. This module is a pytest plugin,
loaded for every run by ``-p tests.payload_scan`` in pyproject.toml's addopts.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypedDict

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from fleet.mqtt.client import CONSOLE_USER
from fleet.protocol.topics import parse_station_topic
from flows.synthetic import SYNTHETIC_CARDS, SYNTHETIC_RESIDENTS
from sandbox.mosquitto import MosquittoBroker

STATION_SENDS = re.compile(r"^(state|birth|health|reported|evt/[^/]+|cmd/[^/]+/result)$")
ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])\d{17}[0-9Xx](?![0-9A-Za-z])")


@dataclass
class PayloadLog:
    """Payloads stations sent, as (topic, bytes), from every broker of the session."""

    payloads: list[tuple[str, bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    attach_failures: list[str] = field(default_factory=list)

    def add(self, topic: str, payload: bytes) -> None:
        parsed = parse_station_topic(topic)
        if parsed is not None and STATION_SENDS.match(parsed[2]):
            with self.lock:
                self.payloads.append((topic, payload))

    def snapshot(self) -> list[tuple[str, bytes]]:
        with self.lock:
            return list(self.payloads)


PAYLOADS = PayloadLog()


def personal_needles() -> list[str]:
    """Names and ID numbers of every invented person of the demo dataset."""
    needles: set[str] = set()
    for person in (*SYNTHETIC_RESIDENTS, *SYNTHETIC_CARDS.values()):
        needles.update({person.name, person.id_number})
    return sorted(needles)


def find_personal(payloads: list[tuple[str, bytes]]) -> list[str]:
    """Every place a payload carries a demo name, a demo ID number or any 18-digit ID number."""
    needles = personal_needles()
    found = []
    for topic, raw in payloads:
        text = raw.decode("utf-8", errors="replace")
        for needle in needles:
            if needle in text:
                found.append(f"{topic}: {needle[:1]}… (a demo name or ID number)")
        for match in ID_NUMBER.finditer(text):
            found.append(f"{topic}: an 18-digit ID number {match.group(0)[:4]}…")
    return found


class Recorder:
    def __init__(self, broker: MosquittoBroker) -> None:
        self.subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"payload-recorder-{id(self):x}",
            protocol=mqtt.MQTTv5,
        )
        if getattr(broker, "tls", False):
            creds = broker.console_credentials()  # type: ignore[attr-defined]
            self.client.tls_set(
                ca_certs=str(creds.ca_file),
                certfile=str(creds.cert_file),
                keyfile=str(creds.key_file),
            )
        else:
            self.client.username_pw_set(CONSOLE_USER, broker.console_password)
        self.client.on_connect = lambda c, *_: c.subscribe("kiosk/v1/#", qos=1)
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = lambda _c, _u, m: PAYLOADS.add(m.topic, bytes(m.payload))
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        if not self.subscribed.wait(5):
            raise RuntimeError("the payload recorder did not subscribe")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@contextmanager
def recording_every_broker() -> Iterator[PayloadLog]:
    """While open, every broker started gets a :class:`Recorder`."""
    patch = pytest.MonkeyPatch()
    real_start: Callable[..., None] = MosquittoBroker.start
    real_stop: Callable[..., None] = MosquittoBroker.stop

    def start(self: MosquittoBroker, *args: Any, **kwargs: Any) -> None:
        real_start(self, *args, **kwargs)
        try:
            self.__dict__["_payload_recorder"] = Recorder(self)
        except Exception as err:  # the broker's own tests must still run; the scan says so
            PAYLOADS.attach_failures.append(f"{self.address}: {type(err).__name__}: {err}")

    def stop(self: MosquittoBroker) -> None:
        recorder = self.__dict__.pop("_payload_recorder", None)
        if recorder is not None:
            recorder.close()
        real_stop(self)

    patch.setattr(MosquittoBroker, "start", start)
    patch.setattr(MosquittoBroker, "stop", stop)
    try:
        yield PAYLOADS
    finally:
        patch.undo()


class Scan(TypedDict):
    """One process's scan, in a form xdist carries from a worker to the controller."""

    count: int
    topics: list[str]
    problems: list[str]


def scan() -> Scan:
    """This process's payloads, scanned."""
    payloads = PAYLOADS.snapshot()
    problems = [f"recorder not attached: {f}" for f in PAYLOADS.attach_failures]
    problems += find_personal(payloads)
    topics = sorted({t.split("/", 4)[4].split("/")[0] for t, _ in payloads})
    return {"count": len(payloads), "topics": topics, "problems": problems}


def report(session: pytest.Session, scans: list[Scan]) -> None:
    """Print the scans as one, and fail the session on a finding."""
    count = sum(s["count"] for s in scans)
    problems = [p for s in scans for p in s["problems"]]
    if not count and not problems:
        return  # nothing sent through a broker (a run of other tests)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line("")  # after xdist's progress, which ensure_newline does not see
    if problems:
        if reporter is not None:
            reporter.write_line("PERSONAL DATA IN STATION PAYLOADS (or not all scanned):", red=True)
            for line in problems[:20]:
                reporter.write_line(f"  {line}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    elif reporter is not None:
        topics = sorted({t for s in scans for t in s["topics"]})
        reporter.write_line(f"payload scan: {count} station payloads on {topics}, clean")


# --- the plugin's hooks --------------------------------------------------------------------------

WORKER_SCANS: list[Scan] = []  # on the controller: what each finished worker found


@pytest.fixture(scope="session", autouse=True)
def record_station_payloads() -> Iterator[PayloadLog]:
    """Attach a :class:`Recorder` to every broker this process starts."""
    with recording_every_broker() as log:
        yield log


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """xdist, on the controller: a worker finished; keep its scan."""
    found = getattr(node, "workeroutput", {}).get("payload_scan")
    if found is not None:
        WORKER_SCANS.append(found)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """After every test: on a worker, hand this process's scan to the controller; otherwise
    report every scan of the run (this process's and its workers')."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["payload_scan"] = scan()
        return
    report(session, [scan(), *WORKER_SCANS])
