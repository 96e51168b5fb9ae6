"""The MQTT shell of the rollout engine (:mod:`fleet.console.rollout`): ``desired`` out,
``reported`` in.

:class:`RolloutDriver` connects with the console's rights, publishes each wave's retained
``desired`` (QoS 1) with the rollout's ``rev``, feeds every station's ``reported`` to the engine,
ticks it for deadlines and saves records through a :class:`fleet.console.rollout.RolloutStore` (at
once
when a rollout's state or wave changes, else at most every ``save_every_s``). A ``reported``
carries the terminal's phase (``staged``, ``applied``, ``failed``, ...) and, for a failure, its
reason code (``error``) and text (``detail``), which the engine keeps with the station.
:meth:`RolloutDriver.retry` starts a new rollout over a finished one's failed stations.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.subscribeoptions import SubscribeOptions

from fleet.console.rollout import (
    FINAL_STATES,
    Policy,
    Progress,
    Rollout,
    RolloutError,
    RolloutStore,
    split_key,
    station_key,
)
from fleet.mqtt.client import BrokerAccess, on_accepted
from fleet.protocol.topics import ROOT, StationTopics, dumps, loads, parse_station_topic

log = logging.getLogger("fleet.console.rollout")


class RolloutDriver:
    """Runs rollouts over MQTT with the console's rights; thread-safe.

    ``connect()`` subscribes to every station's ``reported`` and (without its own messages)
    ``desired``, waits until the retained ones have arrived (so it knows the revs stations have
    seen) and takes up the store's active rollouts. Then :meth:`start`, :meth:`pause`,
    :meth:`resume`, :meth:`abort`, :meth:`retry`, :meth:`status`, :meth:`wait`.
    """

    def __init__(
        self,
        broker: BrokerAccess,
        store: RolloutStore,
        *,
        tick_s: float = 0.5,
        save_every_s: float = 1.0,
    ) -> None:
        self.broker, self.store = broker, store
        self.tick_s, self.save_every_s = tick_s, save_every_s
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._rollouts: dict[str, Rollout] = {}
        self._owner: dict[str, str] = {}  # station key → id of the unfinished rollout it is in
        self._seen_rev: dict[str, int] = {}  # station key → highest rev in desired/reported
        self._dirty: set[str] = set()
        self._stop = threading.Event()
        self._synced = threading.Event()
        self._probe = f"{ROOT}/console/rollout-probe/{uuid.uuid4().hex}"
        self.client = broker.client(f"rollout-{uuid.uuid4().hex[:12]}", max_inflight=1000)
        self.client.on_connect = on_accepted(
            log, "the rollout driver", self._on_connect, level=logging.ERROR
        )
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self._ticker = threading.Thread(target=self._tick_loop, name="rollout-tick", daemon=True)

    # --- life cycle ----------------------------------------------------------------------------

    def connect(self, timeout_s: float = 30.0) -> None:
        with self._lock:
            for rollout_id in self.store.active_ids():
                record = self.store.load(rollout_id)
                if record is not None:
                    self._adopt(Rollout(record))
        self.client.connect(self.broker.host, self.broker.port, keepalive=30)
        self.client.loop_start()
        if not self._synced.wait(timeout_s):
            raise RolloutError("the rollout driver did not receive the retained state in time")
        self._ticker.start()

    def close(self) -> None:
        self._stop.set()
        if self._ticker.is_alive():
            self._ticker.join(timeout=5)
        self._save_dirty()
        self.client.disconnect()
        self.client.loop_stop()

    def _adopt(self, rollout: Rollout) -> None:
        self._rollouts[rollout.record.id] = rollout
        if not rollout.finished:
            for key in rollout.record.stations:
                self._owner[key] = rollout.record.id

    # --- commands ------------------------------------------------------------------------------

    def start(
        self,
        desired: Mapping[str, Any],
        stations: Iterable[str],
        policy: Policy | None = None,
        *,
        rollout_id: str | None = None,
        now: float | None = None,
        retry_of: str | None = None,
    ) -> str:
        """Create and start a rollout of ``desired`` (without ``rev``) over site/station keys."""
        keys = list(dict.fromkeys(stations))
        now = time.time() if now is None else now
        with self._lock:
            busy = [k for k in keys if k in self._owner]
            if busy:
                raise RolloutError(f"{len(busy)} stations are in a running rollout, e.g. {busy[0]}")
            floor = max((self._seen_rev.get(k, 0) for k in keys), default=0)
            rev = self.store.next_rev(floor)
            rollout = Rollout.create(
                rollout_id or uuid.uuid4().hex[:12], rev, desired, keys, policy or Policy(), now
            )
            rollout.record.retry_of = retry_of
            self._adopt(rollout)
            self._publish(rollout, rollout.start(now))
            self._saved(rollout)
            return rollout.record.id

    def retry(self, rollout_id: str, new_id: str | None = None) -> str:
        """A new rollout of a finished one's ``desired`` and policy over only its failed and
        timed-out stations, under a new rev; the id of the new rollout."""
        with self._lock:
            first = self._get(rollout_id)
            if not first.finished:
                raise RolloutError(f"cannot retry a rollout that is {first.state}")
            if first.record.retried_as:
                raise RolloutError(f"retried already as {first.record.retried_as}")
            keys = first.retriable()
            if not keys:
                raise RolloutError("no failed stations to retry")
            desired = {k: v for k, v in first.record.desired.items() if k != "rev"}
            new = self.start(
                desired, keys, first.record.policy, rollout_id=new_id, retry_of=rollout_id
            )
            first.record.retried_as = new
            first.record.updated = time.time()
            self._saved(first)
            return new

    def pause(self, rollout_id: str) -> Progress:
        with self._lock:
            rollout = self._get(rollout_id)
            rollout.pause(time.time())
            return self._saved(rollout)

    def resume(self, rollout_id: str) -> Progress:
        with self._lock:
            rollout = self._get(rollout_id)
            self._publish(rollout, rollout.resume(time.time()))
            return self._saved(rollout)

    def abort(self, rollout_id: str, reason: str = "aborted by hand") -> Progress:
        with self._lock:
            rollout = self._get(rollout_id)
            rollout.abort(time.time(), reason)
            return self._saved(rollout)

    def status(self, rollout_id: str) -> Progress:
        with self._lock:
            return self._get(rollout_id).progress()

    def wait(
        self, rollout_id: str, timeout_s: float, states: Iterable[str] = FINAL_STATES
    ) -> Progress:
        """Block until the rollout is in one of ``states`` (or the timeout); its progress."""
        wanted = set(states)
        deadline = time.monotonic() + timeout_s
        with self._changed:
            rollout = self._get(rollout_id)
            while rollout.state not in wanted:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(min(left, 0.5))
            return rollout.progress()

    def _get(self, rollout_id: str) -> Rollout:
        rollout = self._rollouts.get(rollout_id)
        if rollout is None:
            record = self.store.load(rollout_id)
            if record is None:
                raise RolloutError(f"no rollout {rollout_id!r}")
            rollout = Rollout(record)
            self._rollouts[rollout_id] = rollout
        return rollout

    # --- plumbing (under the lock) -------------------------------------------------------------

    def _publish(self, rollout: Rollout, targets: list[str]) -> None:
        if not targets:
            return
        payload = dumps(rollout.record.desired)
        for key in targets:
            site, station = split_key(key)
            self.client.publish(StationTopics(site, station).desired, payload, qos=1, retain=True)
            self._seen_rev[key] = max(self._seen_rev.get(key, 0), rollout.record.rev)

    def _saved(self, rollout: Rollout) -> Progress:
        """Save now (state or wave changed), release finished stations, wake waiters."""
        self.store.save(rollout.record)
        self._dirty.discard(rollout.record.id)
        if rollout.finished:
            for key in rollout.record.stations:
                if self._owner.get(key) == rollout.record.id:
                    del self._owner[key]
        self._changed.notify_all()
        return rollout.progress()

    def _after(self, rollout: Rollout, before: tuple[str, int], targets: list[str]) -> None:
        self._publish(rollout, targets)
        if (rollout.state, rollout.record.wave) != before:
            self._saved(rollout)
        else:
            self._dirty.add(rollout.record.id)

    def _save_dirty(self) -> None:
        with self._lock:
            for rollout_id in sorted(self._dirty):
                self.store.save(self._rollouts[rollout_id].record)
            self._dirty.clear()

    def _tick_loop(self) -> None:
        last_save = time.monotonic()
        while not self._stop.wait(self.tick_s):
            now = time.time()
            with self._lock:
                for rollout in list(self._rollouts.values()):
                    if rollout.finished:
                        continue
                    before = (rollout.state, rollout.record.wave)
                    self._after(rollout, before, rollout.tick(now))
            if time.monotonic() - last_save >= self.save_every_s:
                self._save_dirty()
                last_save = time.monotonic()

    # --- MQTT callbacks (paho's thread) --------------------------------------------------------

    def _on_connect(self, client: mqtt.Client) -> None:
        """The broker took the connection (:func:`fleet.mqtt.client.on_accepted`)."""
        own_excluded = SubscribeOptions(qos=1, noLocal=True)
        client.subscribe(
            [
                (f"{ROOT}/+/+/reported", SubscribeOptions(qos=1)),
                (f"{ROOT}/+/+/desired", own_excluded),
                (self._probe, SubscribeOptions(qos=1)),
            ]
        )

    def _on_subscribe(self, client: mqtt.Client, *_args: Any) -> None:
        # the broker sends retained messages right after SUBACK, in order: when the probe
        # published now comes back, every retained desired/reported has arrived
        client.publish(self._probe, b"", qos=1)

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        if message.topic == self._probe:
            self._synced.set()
            return
        parsed = parse_station_topic(message.topic)
        if parsed is None or not message.payload:
            return
        site, station, rest = parsed
        try:
            payload = loads(bytes(message.payload))
        except ValueError:
            log.warning("%s is not a JSON object; ignored", message.topic)
            return
        key = station_key(site, station)
        revs = [v for v in (payload.get("rev"), payload.get("rev_applied")) if type(v) is int]
        with self._lock:
            if revs:
                self._seen_rev[key] = max(self._seen_rev.get(key, 0), *revs)
            if rest != "reported" or key not in self._owner:
                return
            rollout = self._rollouts[self._owner[key]]
            rev = payload.get("rev")
            if type(rev) is not int:
                return
            before = (rollout.state, rollout.record.wave)
            error, detail = payload.get("error"), payload.get("detail")
            targets = rollout.report(
                key,
                rev,
                str(payload.get("phase")),
                error if isinstance(error, str) else None,
                time.time(),
                detail if isinstance(detail, str) else None,
            )
            self._after(rollout, before, targets)
