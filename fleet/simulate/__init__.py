"""Thousands of simulated terminals in one process, each with a real MQTT connection of its own.

``fleet simulate --kiosks N`` (and the rollout tests and ``bench/bench_console.py``) run a
:class:`Simulator`: N paho clients (client id = station id, MQTT v5, plain TCP, anonymous: the
private broker of :mod:`sandbox.mosquitto` lets a station in by its client id) driven by **one**
network thread. paho's threaded loop costs a thread and a wake-up socket pair per client; here a
single ``selectors`` loop (epoll) watches every client's socket and calls paho's
``loop_read``/``loop_write``/``loop_misc`` (paho's "external event loop" interface:
``on_socket_open``/``close``/``register_write``/``unregister_write``). Everything a terminal does
runs on that thread, from a timer heap; other threads talk to it through :meth:`Simulator.call`.

What each simulated terminal sends, like the real agent (:mod:`fleet.agent`):

- ``state`` retained, and the same shape as its Will (with a will delay); ``session`` rises at
  every connect; a clean stop says ``reason: shutdown``;
- ``birth`` retained at connect; ``health`` every ``health_interval_s`` (±20 % jitter, the
  first one at a random point of the first interval so a fleet does not beat in step);
- events at random (mean ``event_interval_s``): ``evt/transaction``, ``evt/rating``,
  ``evt/help``, each with an ``event_id``;
- catalog acknowledgements: on a ``desired`` with a rev above the last one it handled it
  reports ``downloading``, then after ``apply_s`` ``staged`` and ``applied`` (an idle kiosk), or
  ``failed`` (``error`` ``hash_mismatch``) for a ``failure_fraction`` of the stations (decided
  per station and rev from ``seed``, so a run can be repeated); ``reported`` is retained.

One process holds a socket per terminal: :func:`raise_nofile` lifts the open-files limit (the
broker started afterwards inherits it). Measured on 2 shared cores: 10,000 terminals connect in
5–16 s; the simulator's process held 288 MiB after the console bench (docs/performance.md).
Such a process cannot also host paho clients with their own loop (``select()`` fails on
descriptors above 1023): :class:`SimulatorProcess` runs the simulator in a child process.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import random
import resource
import selectors
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from fleet.mqtt.client import new_client
from fleet.protocol.models import (
    CAPABILITIES,
    MAX_HEALTH_INTERVAL_S,
    Birth,
    Health,
    State,
    StateReason,
)
from fleet.protocol.topics import CONSOLE_STATE, StationTopics, dumps, loads
from fleet.simulate.devices import station_devices
from fleet.simulate.residents import resident_event

log = logging.getLogger("fleet.simulate")

T = TypeVar("T")


def raise_nofile(wanted: int) -> int:
    """Lift this process's open-files limit to ``wanted`` (or as far as allowed); the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= wanted:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, max(hard, wanted)))
    except (ValueError, OSError):  # not root: up to the hard limit only
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def rss_mib() -> float:
    """Resident memory of this process, MiB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / (1024 * 1024)


@dataclass(frozen=True)
class SimConfig:
    host: str
    port: int
    kiosks: int = 100
    sites: int = 10  # stations are spread over this many sites
    prefix: str = "sim"  # station ids {prefix}-{i:05d}, sites {prefix}-site-{j:02d}
    health_interval_s: float = 60.0
    event_interval_s: float = 300.0  # mean time between events of one terminal; 0: none
    apply_s: tuple[float, float] = (0.05, 0.5)  # downloading → applied/failed after this long
    failure_fraction: float = 0.0
    fault_every: int = 0  # every Nth terminal's A4 printer is jammed (fleet.simulate.devices)
    will_delay_s: int = 10
    keepalive_s: int = 60
    connect_batch: int = 100  # CONNECTs sent per loop turn ...
    max_connecting: int = 500  # ... while fewer than this many wait for their CONNACK
    seed: int = 0


@dataclass(eq=False)
class SimTerminal:
    """One simulated terminal's state; touched only on the simulator's thread."""

    site: str
    station: str
    client: mqtt.Client
    topics: StationTopics
    session: int = 0
    seq: int = 0
    started: float = field(default_factory=time.monotonic)
    connected: bool = False
    write_armed: bool = False
    last_rev: int = 0  # the newest desired rev handled
    rev_applied: int = 0
    catalog_version: int | None = None
    last_report: dict[str, Any] | None = None
    desired_revs: list[int] = field(default_factory=list)  # every desired rev received

    @property
    def key(self) -> str:
        return f"{self.site}/{self.station}"


@dataclass
class SimStats:
    connected: int = 0
    connects: int = 0  # successful CONNACKs, reconnects included
    disconnects: int = 0
    published: int = 0
    acked: int = 0  # PUBACKs of everything the terminals sent QoS 1
    desired: int = 0  # desired messages received
    applied: int = 0
    failed: int = 0


class Simulator:
    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.stats = SimStats()
        self._selector = selectors.DefaultSelector()
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._calls: list[Callable[[], None]] = []
        self._calls_lock = threading.Lock()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._writers: set[SimTerminal] = set()
        self._rng = random.Random(config.seed)  # noqa: S311 (simulation, not secrets)
        self._stop = threading.Event()
        self._closing = False
        self._thread: threading.Thread | None = None
        self._to_connect: list[SimTerminal] = []
        self._connecting = 0
        self.all_connected = threading.Event()
        self.failure_fraction = config.failure_fraction
        self.terminals = [self._terminal(i) for i in range(config.kiosks)]
        self.by_key = {t.key: t for t in self.terminals}

    def _terminal(self, i: int) -> SimTerminal:
        cfg = self.config
        site = f"{cfg.prefix}-site-{i % max(cfg.sites, 1):02d}"
        station = f"{cfg.prefix}-{i:05d}"
        # no in-flight limit of paho's own: the broker's applies
        client = new_client(station, max_inflight=0)
        term = SimTerminal(site, station, client, StationTopics(site, station))
        client.user_data_set(term)
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_register_write
        client.on_socket_unregister_write = self._on_unregister_write
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        return term

    @property
    def station_keys(self) -> list[str]:
        return [t.key for t in self.terminals]

    # --- life cycle (any thread) ---------------------------------------------------------------

    def start(self) -> None:
        raise_nofile(self.config.kiosks * 2 + 256)
        self._to_connect = list(reversed(self.terminals))
        self._thread = threading.Thread(target=self._run, name="simulator", daemon=True)
        self._thread.start()

    def wait_connected(self, timeout_s: float) -> bool:
        return self.all_connected.wait(timeout_s)

    def stop(self, timeout_s: float = 15.0) -> None:
        """Say ``shutdown`` in every terminal's state, disconnect cleanly, end the thread."""
        if self._thread is None:
            return
        try:
            self.call(self._shutdown).result(timeout_s)
        except Exception:
            log.exception("the simulator did not shut down cleanly")
        deadline = time.monotonic() + timeout_s
        while self.stats.connected and time.monotonic() < deadline:
            time.sleep(0.05)
        self._stop.set()
        self._wake()
        self._thread.join(timeout_s)
        self._thread = None
        for term in self.terminals:  # anything left (a terminal still connecting)
            if term.client.socket() is not None:
                term.client.disconnect()
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()

    def call(self, fn: Callable[[], T]) -> Future[T]:
        """Run ``fn`` on the simulator's thread; its result (or exception) in the future."""
        future: Future[T] = Future()

        def run() -> None:
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn())
                except Exception as err:
                    future.set_exception(err)

        with self._calls_lock:
            self._calls.append(run)
        self._wake()
        return future

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            self._wake_w.send(b"x")

    # --- commands (any thread, through call) ---------------------------------------------------

    def burst(self, per_terminal: int, kind: str = "health") -> Future[int]:
        """Every connected terminal publishes ``per_terminal`` messages now (``health`` or
        ``events``); the future holds how many were handed to paho."""

        def run() -> int:
            sent = 0
            for term in self.terminals:
                if not term.connected:
                    continue
                for _ in range(per_terminal):
                    if kind == "health":
                        self._publish_health(term)
                    else:
                        self._publish_event(term)
                    sent += 1
            return sent

        return self.call(run)

    def set_failure_fraction(self, fraction: float) -> None:
        def run() -> None:
            self.failure_fraction = fraction

        self.call(run).result(10)

    def desired_revs(self, key: str) -> list[int]:
        """The revs of every ``desired`` the terminal ``site/station`` received."""
        return self.call(lambda: list(self.by_key[key].desired_revs)).result(10)

    # --- the loop (the simulator's thread) -----------------------------------------------------

    def _run(self) -> None:
        last_misc = time.monotonic()
        while not self._stop.is_set():
            self._connect_some()
            timeout = self._run_timers()
            if self._to_connect and self._connecting < self.config.max_connecting:
                timeout = 0.0
            for key, mask in self._selector.select(timeout):
                term = key.data
                if term is None:
                    self._run_calls()
                    continue
                if mask & selectors.EVENT_READ:
                    term.client.loop_read()
                if mask & selectors.EVENT_WRITE:
                    term.client.loop_write()
            self._flush_writes()
            now = time.monotonic()
            if now - last_misc >= 1.0:  # keepalive pings, for every connected client
                last_misc = now
                for term in self.terminals:
                    if term.connected:
                        term.client.loop_misc()

    def _run_calls(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except BlockingIOError:
            pass
        with self._calls_lock:
            calls, self._calls = self._calls, []
        for call in calls:
            call()

    def _run_timers(self) -> float:
        """Run what is due; seconds until the next timer (at most 0.5)."""
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now:
            _, _, fn = heapq.heappop(self._timers)
            try:
                fn()
            except Exception:
                log.exception("a simulated terminal's timer failed")
        if self._timers:
            return max(0.0, min(0.5, self._timers[0][0] - time.monotonic()))
        return 0.5

    def _later(self, delay_s: float, fn: Callable[[], None]) -> None:
        heapq.heappush(self._timers, (time.monotonic() + delay_s, next(self._order), fn))

    def _flush_writes(self) -> None:
        while self._writers:
            batch, self._writers = self._writers, set()
            for term in batch:
                term.client.loop_write()
                sock = term.client.socket()
                if term.client.want_write() and sock is not None and not term.write_armed:
                    term.write_armed = True  # the socket is full: wait until it is writable
                    self._selector.modify(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, term)

    def _connect_some(self) -> None:
        cfg = self.config
        sent = 0
        while (
            self._to_connect and sent < cfg.connect_batch and self._connecting < cfg.max_connecting
        ):
            term = self._to_connect.pop()
            sent += 1
            self._connect(term)

    def _prepare(self, term: SimTerminal) -> Properties:
        term.session += 1
        will = Properties(PacketTypes.WILLMESSAGE)  # type: ignore[no-untyped-call]
        will.WillDelayInterval = self.config.will_delay_s
        term.client.will_set(
            term.topics.state, self._state(term, False, "lost"), qos=1, retain=True, properties=will
        )
        return will

    def _connect(self, term: SimTerminal) -> None:
        self._prepare(term)
        try:
            if term.session == 1:
                term.client.connect(
                    self.config.host, self.config.port, self.config.keepalive_s, clean_start=True
                )
            else:
                term.client.reconnect()
        except OSError as err:
            log.warning("%s cannot connect (%s); again soon", term.station, err)
            self._later(self._rng.uniform(1.0, 5.0), lambda: self._connect(term))
            return
        self._connecting += 1

    def _shutdown(self) -> None:
        self._closing = True
        self._to_connect.clear()
        self._timers.clear()
        for term in self.terminals:
            if term.connected:
                term.client.publish(
                    term.topics.state, self._state(term, False, "shutdown"), qos=1, retain=True
                )
                term.client.disconnect()

    # --- paho's external-loop callbacks --------------------------------------------------------

    def _on_socket_open(self, _c: mqtt.Client, term: SimTerminal, sock: Any) -> None:
        term.write_armed = False
        self._selector.register(sock, selectors.EVENT_READ, term)

    def _on_socket_close(self, _c: mqtt.Client, term: SimTerminal, sock: Any) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(sock)
        self._writers.discard(term)

    def _on_register_write(self, _c: mqtt.Client, term: SimTerminal, _sock: Any) -> None:
        self._writers.add(term)

    def _on_unregister_write(self, _c: mqtt.Client, term: SimTerminal, sock: Any) -> None:
        if term.write_armed:
            term.write_armed = False
            self._selector.modify(sock, selectors.EVENT_READ, term)

    # --- the terminal's protocol ---------------------------------------------------------------

    def _state(self, term: SimTerminal, online: bool, reason: StateReason) -> bytes:
        state = State(online=online, session=term.session, ts=time.time(), reason=reason)
        return dumps(state.dump())

    def _on_connect(
        self,
        client: mqtt.Client,
        term: SimTerminal,
        _flags: Any,
        reason: ReasonCode,
        _props: Properties | None,
    ) -> None:
        self._connecting = max(0, self._connecting - 1)
        if reason.is_failure:
            log.warning("the broker refused %s: %s", term.station, reason)
            return
        term.connected = True
        self.stats.connected += 1
        self.stats.connects += 1
        if self.stats.connected == len(self.terminals):
            self.all_connected.set()
        publish = self._publish
        publish(term, term.topics.state, self._state(term, True, "connect"), retain=True)
        publish(term, term.topics.birth, self._birth(term), retain=True)
        client.subscribe(
            [(term.topics.desired, 1), (term.topics.command("+"), 1), (CONSOLE_STATE, 1)]
        )
        if term.last_report is not None:
            publish(term, term.topics.reported, dumps(term.last_report), retain=True)
        interval = self.config.health_interval_s
        session = term.session
        self._later(self._rng.uniform(0.0, interval), lambda: self._health_tick(term, session))
        if self.config.event_interval_s > 0:
            self._later(
                self._rng.expovariate(1.0 / self.config.event_interval_s),
                lambda: self._event_tick(term, session),
            )

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        term: SimTerminal,
        _flags: Any,
        reason: ReasonCode,
        _props: Properties | None,
    ) -> None:
        if term.connected:
            term.connected = False
            self.stats.connected -= 1
            self.stats.disconnects += 1
            self.all_connected.clear()
        else:  # refused or lost before CONNACK
            self._connecting = max(0, self._connecting - 1)
        if not self._closing and reason.value != 0:  # lost, not our own clean disconnect
            log.info("%s lost its connection (%s); connecting again", term.station, reason)
            self._later(self._rng.uniform(1.0, 5.0), lambda: self._connect(term))

    def _on_publish(self, *_args: Any) -> None:
        self.stats.acked += 1

    def _publish(
        self, term: SimTerminal, topic: str, payload: bytes, *, retain: bool = False
    ) -> None:
        info = term.client.publish(topic, payload, qos=1, retain=retain)
        if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
            self.stats.published += 1

    def _birth(self, term: SimTerminal) -> bytes:
        birth = Birth(
            station=term.station,
            site=term.site,
            app_version="0.1.0-sim",
            catalog_version=term.catalog_version,
            hardware={"machine": "x86_64", "system": "Linux", "simulated": True},
            capabilities=list(CAPABILITIES),
            cert_expiry=None,
            session=term.session,
            ts=time.time(),
        )
        return dumps(birth.dump())

    def _health(self, term: SimTerminal) -> bytes:
        term.seq += 1
        health = Health(
            seq=term.seq,
            uptime=round(time.monotonic() - term.started, 1),
            ui_alive=True,
            devices=station_devices(term.station, self.config.fault_every),
            disk_free_mib=20480,
            last_txn_ts=None,
            outbox=0,
            interval_s=min(self.config.health_interval_s, MAX_HEALTH_INTERVAL_S),
            ts=time.time(),
        )
        return dumps(health.dump())

    def _publish_health(self, term: SimTerminal) -> None:
        self._publish(term, term.topics.health, self._health(term))

    def _health_tick(self, term: SimTerminal, session: int) -> None:
        if not term.connected or term.session != session:
            return  # a new connection has its own timers
        self._publish_health(term)
        jitter = self._rng.uniform(0.8, 1.2)
        self._later(
            self.config.health_interval_s * jitter, lambda: self._health_tick(term, session)
        )

    def _publish_event(self, term: SimTerminal) -> None:
        roll = self._rng.random()
        now = time.time()
        kind, body = resident_event(self._rng, roll, str(uuid.uuid4()))
        body.update(ts=now, event_id=str(uuid.uuid4()), backfill=False, station=term.station)
        self._publish(term, term.topics.event(kind), dumps(body))

    def _event_tick(self, term: SimTerminal, session: int) -> None:
        if not term.connected or term.session != session:
            return
        self._publish_event(term)
        delay = self._rng.expovariate(1.0 / self.config.event_interval_s)
        self._later(delay, lambda: self._event_tick(term, session))

    def _on_message(self, _client: mqtt.Client, term: SimTerminal, msg: mqtt.MQTTMessage) -> None:
        if msg.topic != term.topics.desired:
            return  # console state and commands: a simulated terminal only listens
        try:
            desired = loads(bytes(msg.payload))
        except ValueError:
            return
        rev = desired.get("rev")
        catalog = desired.get("catalog")
        if type(rev) is not int or not isinstance(catalog, dict):
            return
        self.stats.desired += 1
        term.desired_revs.append(rev)
        if rev <= term.last_rev:
            return  # applied (or failed) already: the kiosk ignores a rev it has handled
        term.last_rev = rev
        self._report(term, rev, "downloading", None)
        fails = random.Random(f"{self.config.seed}:{term.key}:{rev}").random()  # noqa: S311
        failed = fails < self.failure_fraction
        version = catalog.get("version")
        delay = self._rng.uniform(*self.config.apply_s)
        self._later(delay, lambda: self._finish(term, rev, version, failed))

    def _finish(self, term: SimTerminal, rev: int, version: Any, failed: bool) -> None:
        if rev != term.last_rev:
            return  # a newer desired came meanwhile
        if failed:
            self.stats.failed += 1
            self._report(term, rev, "failed", "hash_mismatch")
        else:
            self.stats.applied += 1
            term.rev_applied = rev
            term.catalog_version = version if isinstance(version, int) else None
            self._report(term, rev, "staged", None)  # an idle kiosk serves it at once
            self._report(term, rev, "applied", None)

    def _report(self, term: SimTerminal, rev: int, phase: str, error: str | None) -> None:
        term.last_report = {
            "rev": rev,
            "rev_applied": term.rev_applied,
            "catalog_version": term.catalog_version,
            "phase": phase,
            "error": error,
            "detail": "simulated failure" if error else None,
            "ts": time.time(),
        }
        if term.connected:
            self._publish(term, term.topics.reported, dumps(term.last_report), retain=True)
