"""Catalog rollouts: canary stations → a percentage → all, on success rate and failure rate.

DESIGN.md ("Fleet protocol"): "Rollouts go canary → percentage → all, advance on success rate and
abort on failure rate". Two layers:

- :class:`Rollout`, the engine: pure logic over plain data (:class:`RolloutRecord`), with a
  python-statemachine chart for its life (draft → running ⇄ paused → completed | aborted). It
  does no I/O and reads no clock: every call takes ``now`` and returns the stations that must be
  sent the new ``desired`` (the next wave, when one starts).
- :class:`fleet.console.rollout_mqtt.RolloutDriver`, the MQTT shell: publishes the retained
  ``desired`` of each wave, counts the terminals' ``reported`` messages, ticks the engine for
  deadlines and saves records through a :class:`RolloutStore` (the console's database implements
  it; :class:`MemoryStore` and :class:`JsonFileStore` are here).

Rules of the engine (:class:`Policy`):

- waves: the canary stations (named, or the first ``canary`` of the list), then up to
  ``percent`` % of all stations (counted with the canaries), then the rest; empty waves are left
  out.
- a wave's **success rate** is applied / its size; when it reaches ``advance_at`` the next wave
  starts (stations still pending go on counting in their own wave).
- a wave's **failure rate** is failed / results (results = applied + failed, a timed-out station
  counts as failed); when it is above ``abort_above`` once at least ``min_results`` results are in
  (or the whole wave, if smaller), the rollout aborts by itself and says why, e.g.
  "failure rate 40% > 20% after 10 results in wave canary". Stations of later waves never get
  the new ``desired``.
- a station that has not reported ``applied`` or ``failed`` by ``wave_timeout_s`` after its wave
  started counts as failed (``timed_out``); a later report still updates it.
- a failure the terminal retries by itself (``error`` ``download`` or ``storage``, see
  :mod:`fleet.agent.catalog_update`) is not a result yet.
- a wave whose every station has a result without reaching ``advance_at`` aborts the rollout;
  the last wave completes the rollout when it reaches ``advance_at`` and no station is pending.
- pause stops new waves (results, deadlines and the automatic abort still count); resume goes on;
  abort by hand takes a reason. Stations already sent the ``desired`` keep it: going back is a
  new rollout of the old content under a higher catalog version (docs/decisions.md).

Every rollout has one ``rev``, above every rev the store issued before and above any rev seen
in the targeted stations' retained ``desired``/``reported``: so ``rev`` rises strictly for each
station, and a report is counted only when its ``rev`` is the rollout's.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import threading
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from statemachine import State, StateMachine
from statemachine.exceptions import TransitionNotAllowed

from fleet.errors import FleetError

log = logging.getLogger("fleet.console.rollout")

# a station's phase within a rollout
WAITING = "waiting"  # its wave has not started: it has not been sent the desired
PENDING = "pending"  # sent, no result yet
APPLIED = "applied"
FAILED = "failed"
TIMED_OUT = "timed_out"  # no result by the wave's deadline: counts as failed
PHASES = (WAITING, PENDING, APPLIED, FAILED, TIMED_OUT)
# the failures a terminal retries by itself (fleet.agent.catalog_update.TRANSIENT): still pending
RETRIED_ERRORS = frozenset({"download", "timeout", "storage"})

DRAFT, RUNNING, PAUSED, COMPLETED, ABORTED = "draft", "running", "paused", "completed", "aborted"
FINAL_STATES = frozenset({COMPLETED, ABORTED})


class RolloutError(FleetError):
    """A rollout cannot do what was asked (pause a completed one, overlap another, ...)."""

    translation_key = "error.rollout"


def station_key(site: str, station: str) -> str:
    return f"{site}/{station}"


def split_key(key: str) -> tuple[str, str]:
    site, _, station = key.partition("/")
    if not site or not station or "/" in station:
        raise RolloutError(f"not a site/station key: {key!r}")
    return site, station


# --- plain data ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Policy:
    canary: int = 1  # canary stations taken from the head of the list ...
    canary_stations: tuple[str, ...] = ()  # ... unless named here (site/station keys)
    percent: float = 50.0  # the middle wave: up to this share of all stations, canaries included
    advance_at: float = 0.9  # success rate (applied / wave size) that starts the next wave
    abort_above: float = 0.2  # failure rate (failed / results) that aborts ...
    min_results: int = 10  # ... once this many results are in (the wave's size if smaller)
    wave_timeout_s: float = 600.0  # no result by then: the station counts as failed

    def __post_init__(self) -> None:
        if not 0 < self.advance_at <= 1 or not 0 <= self.abort_above < 1:
            raise RolloutError("advance_at must be in (0, 1] and abort_above in [0, 1)")
        if not 0 < self.percent <= 100 or self.canary < 0 or self.min_results < 1:
            raise RolloutError("percent in (0, 100], canary ≥ 0 and min_results ≥ 1")
        if self.wave_timeout_s <= 0:
            raise RolloutError("wave_timeout_s must be positive")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Policy:
        values = dict(data)
        values["canary_stations"] = tuple(values.get("canary_stations", ()))
        return cls(**values)


@dataclass
class StationResult:
    wave: int
    phase: str = WAITING
    error: str | None = None
    ts: float = 0.0


@dataclass
class Wave:
    name: str
    size: int
    started_at: float | None = None


@dataclass
class RolloutRecord:
    """Everything a rollout is; what a :class:`RolloutStore` keeps."""

    id: str
    rev: int
    desired: dict[str, Any]  # the payload every targeted station gets, ``rev`` included
    policy: Policy
    waves: list[Wave]
    stations: dict[str, StationResult]  # site/station → result
    state: str = DRAFT
    wave: int = -1  # index of the current wave
    reason: str | None = None
    created: float = 0.0
    updated: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RolloutRecord:
        return cls(
            id=str(data["id"]),
            rev=int(data["rev"]),
            desired=dict(data["desired"]),
            policy=Policy.from_dict(data["policy"]),
            waves=[Wave(**w) for w in data["waves"]],
            stations={k: StationResult(**v) for k, v in data["stations"].items()},
            state=str(data["state"]),
            wave=int(data["wave"]),
            reason=data.get("reason"),
            created=float(data.get("created", 0.0)),
            updated=float(data.get("updated", 0.0)),
        )


@dataclass(frozen=True)
class WaveProgress:
    name: str
    size: int
    targeted: int  # sent the desired (the whole wave once it started, else 0)
    applied: int
    failed: int  # timed-out stations included
    timed_out: int
    pending: int
    started_at: float | None


@dataclass(frozen=True)
class Progress:
    id: str
    state: str
    rev: int
    wave: str | None  # name of the current wave
    reason: str | None
    waves: tuple[WaveProgress, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def plan_waves(stations: Sequence[str], policy: Policy) -> list[tuple[str, list[str]]]:
    """The waves of a rollout over ``stations`` (site/station keys, in the order given)."""
    ordered = list(dict.fromkeys(stations))
    members = set(ordered)
    canary = [s for s in dict.fromkeys(policy.canary_stations) if s in members]
    if not policy.canary_stations:
        canary = ordered[: policy.canary]
    chosen = set(canary)
    rest = [s for s in ordered if s not in chosen]
    upto = math.ceil(len(ordered) * policy.percent / 100)
    middle = rest[: max(0, upto - len(canary))]
    last = rest[len(middle) :]
    waves = [("canary", canary), (f"{policy.percent:g}%", middle), ("all", last)]
    return [(name, members_) for name, members_ in waves if members_]


# --- the engine ----------------------------------------------------------------------------------


class RolloutChart(StateMachine):
    """The life of a rollout; its state lives in the record's ``state`` field."""

    draft = State(initial=True)
    running = State()
    paused = State()
    completed = State(final=True)
    aborted = State(final=True)

    start = draft.to(running)
    pause = running.to(paused)
    resume = paused.to(running)
    complete = running.to(completed)
    abort = draft.to(aborted) | running.to(aborted) | paused.to(aborted)


class Rollout:
    """One rollout's engine over its :class:`RolloutRecord`. Not thread-safe: one caller."""

    def __init__(self, record: RolloutRecord) -> None:
        self.record = record
        self.chart = RolloutChart(record, state_field="state")
        self._counts = [Counter[str]() for _ in record.waves]
        for result in record.stations.values():
            self._counts[result.wave][result.phase] += 1

    @classmethod
    def create(
        cls,
        rollout_id: str,
        rev: int,
        desired: Mapping[str, Any],
        stations: Sequence[str],
        policy: Policy,
        now: float,
    ) -> Rollout:
        """A draft over ``stations`` (site/station keys); ``desired`` gets ``rev`` put in."""
        for key in stations:
            split_key(key)
        plan = plan_waves(stations, policy)
        if not plan:
            raise RolloutError("a rollout needs at least one station")
        results = {key: StationResult(i) for i, (_, keys) in enumerate(plan) for key in keys}
        record = RolloutRecord(
            id=rollout_id,
            rev=rev,
            desired={**copy.deepcopy(dict(desired)), "rev": rev},
            policy=policy,
            waves=[Wave(name, len(keys)) for name, keys in plan],
            stations=results,
            created=now,
            updated=now,
        )
        return cls(record)

    # --- reading -----------------------------------------------------------------------------

    @property
    def state(self) -> str:
        return self.record.state

    @property
    def finished(self) -> bool:
        return self.record.state in FINAL_STATES

    def progress(self) -> Progress:
        rec = self.record
        waves = []
        for wave, counts in zip(rec.waves, self._counts, strict=True):
            waves.append(
                WaveProgress(
                    name=wave.name,
                    size=wave.size,
                    targeted=wave.size - counts[WAITING],
                    applied=counts[APPLIED],
                    failed=counts[FAILED] + counts[TIMED_OUT],
                    timed_out=counts[TIMED_OUT],
                    pending=counts[PENDING],
                    started_at=wave.started_at,
                )
            )
        current = rec.waves[rec.wave].name if rec.wave >= 0 else None
        return Progress(rec.id, rec.state, rec.rev, current, rec.reason, tuple(waves))

    # --- commands ----------------------------------------------------------------------------

    def _send(self, event: str, now: float) -> None:
        try:
            self.chart.send(event)
        except TransitionNotAllowed as err:
            raise RolloutError(f"cannot {event} a rollout that is {self.record.state}") from err
        self.record.updated = now

    def start(self, now: float) -> list[str]:
        """draft → running: the first wave; returns its stations (to be sent the desired)."""
        self._send("start", now)
        return self._open_wave(0, now)

    def pause(self, now: float) -> None:
        self._send("pause", now)

    def resume(self, now: float) -> list[str]:
        """paused → running; returns the stations of a wave that starts at once, if any."""
        self._send("resume", now)
        return self._evaluate(now)

    def abort(self, now: float, reason: str = "aborted by hand") -> None:
        self._send("abort", now)
        self.record.reason = reason

    # --- results -----------------------------------------------------------------------------

    def report(
        self, station: str, rev: int, phase: str, error: str | None, now: float
    ) -> list[str]:
        """A station's ``reported``; returns the stations of a wave it starts, if any."""
        result = self.record.stations.get(station)
        if result is None or result.phase == WAITING or rev != self.record.rev:
            return []
        if phase == "applied":
            new = APPLIED
        elif phase == "failed" and error not in RETRIED_ERRORS:
            new = FAILED
        else:  # downloading, verified, a failure the terminal retries: still pending
            return []
        if result.phase == new:
            return []
        self._set(result, new, error, now)
        return self._evaluate(now)

    def tick(self, now: float) -> list[str]:
        """Deadlines: pending stations of a wave past its timeout count as failed."""
        rec = self.record
        if rec.state not in (RUNNING, PAUSED):
            return []
        expired = {
            i
            for i, wave in enumerate(rec.waves)
            if wave.started_at is not None
            and now >= wave.started_at + rec.policy.wave_timeout_s
            and self._counts[i][PENDING]
        }
        if not expired:
            return []
        for result in rec.stations.values():
            if result.wave in expired and result.phase == PENDING:
                self._set(result, TIMED_OUT, "timeout", now)
        return self._evaluate(now)

    def _set(self, result: StationResult, phase: str, error: str | None, now: float) -> None:
        counts = self._counts[result.wave]
        counts[result.phase] -= 1
        counts[phase] += 1
        result.phase, result.error, result.ts = phase, error, now
        self.record.updated = now

    def _open_wave(self, index: int, now: float) -> list[str]:
        rec = self.record
        rec.wave = index
        rec.waves[index].started_at = now
        targets = [k for k, r in rec.stations.items() if r.wave == index]
        for key in targets:
            self._set(rec.stations[key], PENDING, None, now)
        log.info("rollout %s: wave %s, %d stations", rec.id, rec.waves[index].name, len(targets))
        return targets

    def _auto_abort(self, now: float, reason: str) -> None:
        log.warning("rollout %s aborted: %s", self.record.id, reason)
        self.abort(now, reason)

    def _evaluate(self, now: float) -> list[str]:
        rec = self.record
        if rec.state not in (RUNNING, PAUSED):
            return []
        policy = rec.policy
        for i, wave in enumerate(rec.waves[: rec.wave + 1]):
            counts = self._counts[i]
            failed = counts[FAILED] + counts[TIMED_OUT]
            results = counts[APPLIED] + failed
            if results and results >= min(policy.min_results, wave.size):
                rate = failed / results
                if rate > policy.abort_above:
                    self._auto_abort(
                        now,
                        f"failure rate {rate:.0%} > {policy.abort_above:.0%} "
                        f"after {results} results in wave {wave.name}",
                    )
                    return []
        if rec.state == PAUSED:
            return []
        wave = rec.waves[rec.wave]
        counts = self._counts[rec.wave]
        success = counts[APPLIED] / wave.size
        last = rec.wave == len(rec.waves) - 1
        if success >= policy.advance_at and not last:
            return self._open_wave(rec.wave + 1, now)
        if last and success >= policy.advance_at:
            if not any(c[PENDING] for c in self._counts):
                self._send("complete", now)
                log.info("rollout %s completed", rec.id)
            return []
        if not counts[PENDING]:
            self._auto_abort(
                now,
                f"wave {wave.name} ended at success rate {success:.0%} < {policy.advance_at:.0%}",
            )
        return []


# --- persistence ---------------------------------------------------------------------------------


class RolloutStore(Protocol):
    """Where rollouts live between processes; the console's database implements it."""

    def save(self, record: RolloutRecord) -> None:
        """Keep ``record`` (all of it; an implementation may store only what changed)."""

    def load(self, rollout_id: str) -> RolloutRecord | None: ...

    def active_ids(self) -> list[str]:
        """Rollouts neither completed nor aborted: a restarted driver takes them up again."""
        ...

    def next_rev(self, floor: int = 0) -> int:
        """A rev above every rev this store issued and above ``floor``; remembered at once."""
        ...


class MemoryStore:
    def __init__(self) -> None:
        self._records: dict[str, dict[str, Any]] = {}
        self._rev = 0
        self._lock = threading.Lock()

    def save(self, record: RolloutRecord) -> None:
        data = record.to_dict()
        with self._lock:
            self._records[record.id] = data

    def load(self, rollout_id: str) -> RolloutRecord | None:
        with self._lock:
            data = self._records.get(rollout_id)
        return RolloutRecord.from_dict(data) if data is not None else None

    def active_ids(self) -> list[str]:
        with self._lock:
            return [k for k, v in self._records.items() if v["state"] not in FINAL_STATES]

    def next_rev(self, floor: int = 0) -> int:
        with self._lock:
            self._rev = max(self._rev, floor) + 1
            return self._rev


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(json.dumps(data, separators=(",", ":"), sort_keys=True))
    os.replace(tmp, path)


class JsonFileStore:
    """One JSON file per rollout in ``folder`` (written atomically), and ``revs.json``."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def _path(self, rollout_id: str) -> Path:
        if not rollout_id or "/" in rollout_id or rollout_id.startswith("."):
            raise RolloutError(f"not a rollout id: {rollout_id!r}")
        return self.folder / f"rollout-{rollout_id}.json"

    def save(self, record: RolloutRecord) -> None:
        with self._lock:
            _write_json(self._path(record.id), record.to_dict())

    def load(self, rollout_id: str) -> RolloutRecord | None:
        try:
            data = json.loads(self._path(rollout_id).read_text())
        except FileNotFoundError:
            return None
        return RolloutRecord.from_dict(data)

    def active_ids(self) -> list[str]:
        ids = []
        for path in sorted(self.folder.glob("rollout-*.json")):
            data = json.loads(path.read_text())
            if data["state"] not in FINAL_STATES:
                ids.append(str(data["id"]))
        return ids

    def next_rev(self, floor: int = 0) -> int:
        path = self.folder / "revs.json"
        with self._lock:
            try:
                last = int(json.loads(path.read_text())["last_rev"])
            except FileNotFoundError:
                last = 0
            rev = max(last, floor) + 1
            _write_json(path, {"last_rev": rev})
            return rev
