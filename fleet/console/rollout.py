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
  it; :class:`fleet.console.rollout_stores.MemoryStore` and ``JsonFileStore`` are for tests and
  benchmarks).

Rules of the engine (:class:`Policy`):

- waves: the canary stations (named, or the first ``canary`` of the list: a number of
  stations), then up to ``percent`` % of all stations (counted with the canaries), then the rest;
  empty waves are left out.
- a station is **staged** when its terminal has downloaded and verified the catalog and swapped it
  into its store, and **applied** when the kiosk serves residents with it (the kiosk takes a new
  catalog only between sessions, :mod:`fleet.agent.catalog_update`).
- a wave's **success rate** is applied / its size (after the wave's deadline, staged stations
  count as well: a kiosk in a long session must not hold the rollout forever); when it reaches
  ``advance_at`` the wave **soaks** for ``soak_s`` seconds, then the next wave starts (stations
  still pending go on counting in their own wave). Pause, abort and the automatic abort work
  during the soak.
- a wave's **failure rate** is failed / results (results = applied + failed, a timed-out station
  counts as failed); when it is above ``abort_above`` once at least ``min_results`` results are in
  (or the whole wave, if smaller), the rollout aborts by itself and says why, e.g.
  "failure rate 40% > 20% after 10 results in wave canary". Stations of later waves never get
  the new ``desired``. A failure keeps the terminal's reason code and its text (``detail``,
  at most :data:`DETAIL_MAX` characters), e.g. "untrusted: no trust anchor at …".
- a station that has not reported ``staged``, ``applied`` or ``failed`` by ``wave_timeout_s``
  after its wave started counts as failed (``timed_out``); a later report still updates it. A
  station staged by then is pending-not-failed: it counts toward the advance and never blocks
  completion; it becomes applied when its kiosk reports so.
- a failure the terminal retries by itself (``error`` ``download``, ``timeout`` or ``storage``,
  see :mod:`fleet.agent.catalog_update`) is not a result yet.
- a wave whose every station has a result without reaching ``advance_at`` aborts the rollout;
  the last wave completes the rollout when it reaches ``advance_at`` and no station is pending.
  A rollout may complete with failures (up to ``1 - advance_at`` of a wave): it says "completed
  with N failures" wherever it is shown.
- pause stops new waves (results, deadlines, the soak's clock and the automatic abort still
  count); resume goes on (a wave whose soak has run out starts at once); abort by hand takes a
  reason. Stations already sent the ``desired`` keep it: going back is a new rollout of the old
  content under a higher catalog version (docs/decisions.md).
- **retry**: a finished rollout (completed with failures, or aborted) can be retried once: a new
  rollout (``retry_of`` names the first, whose ``retried_as`` names it) of the same ``desired``
  and policy over only the stations that failed or timed out, under a new rev (a terminal does
  not try a rev again that failed for good).

Every rollout has one ``rev``, above every rev the store issued before and above any rev seen
in the targeted stations' retained ``desired``/``reported``: so ``rev`` rises strictly for each
station, and a report is counted only when its ``rev`` is the rollout's.
"""

from __future__ import annotations

import copy
import logging
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
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
STAGED = "staged"  # verified and swapped in; the kiosk serves it after the current session
PHASES = (WAITING, PENDING, STAGED, APPLIED, FAILED, TIMED_OUT)
RETRIABLE = frozenset({FAILED, TIMED_OUT})
DETAIL_MAX = 200  # characters of a terminal's failure text kept with the station
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
    soak_s: float = 300.0  # a wave that reached advance_at is watched this long before the next

    def __post_init__(self) -> None:
        if not 0 < self.advance_at <= 1 or not 0 <= self.abort_above < 1:
            raise RolloutError("advance_at must be in (0, 1] and abort_above in [0, 1)")
        if not 0 < self.percent <= 100 or self.canary < 0 or self.min_results < 1:
            raise RolloutError("percent in (0, 100], canary ≥ 0 and min_results ≥ 1")
        if self.wave_timeout_s <= 0:
            raise RolloutError("wave_timeout_s must be positive")
        if self.soak_s < 0:
            raise RolloutError("soak_s must be 0 or more")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Policy:
        values = dict(data)
        values.setdefault("soak_s", 0.0)  # stored before soaking existed: as they ran
        values["canary_stations"] = tuple(values.get("canary_stations", ()))
        return cls(**values)


@dataclass
class StationResult:
    wave: int
    phase: str = WAITING
    error: str | None = None
    ts: float = 0.0
    detail: str | None = None  # the terminal's text for a failure, truncated


@dataclass
class Wave:
    name: str
    size: int
    started_at: float | None = None
    soak_from: float | None = None  # when it reached advance_at: the next wave soak_s later


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
    retry_of: str | None = None  # the rollout whose failed stations this one retries
    retried_as: str | None = None  # the rollout that retried this one's failed stations

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
            retry_of=data.get("retry_of"),
            retried_as=data.get("retried_as"),
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
    staged: int = 0  # verified and waiting for the end of a session: not serving yet
    soak_until: float | None = None  # the next wave starts then (it reached advance_at)


@dataclass(frozen=True)
class Progress:
    id: str
    state: str
    rev: int
    wave: str | None  # name of the current wave
    reason: str | None
    waves: tuple[WaveProgress, ...] = field(default_factory=tuple)
    failed: int = 0  # in every wave, timed-out stations included
    retry_of: str | None = None
    retried_as: str | None = None

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

    def retriable(self) -> list[str]:
        """The stations a retry would send the desired again: failed or timed out."""
        return [k for k, r in self.record.stations.items() if r.phase in RETRIABLE]

    def progress(self) -> Progress:
        rec = self.record
        waves = []
        soak = rec.policy.soak_s
        for i, (wave, counts) in enumerate(zip(rec.waves, self._counts, strict=True)):
            soaking = wave.soak_from is not None and i == rec.wave and i < len(rec.waves) - 1
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
                    staged=counts[STAGED],
                    soak_until=(
                        wave.soak_from + soak
                        if soaking and wave.soak_from is not None and not self.finished
                        else None
                    ),
                )
            )
        current = rec.waves[rec.wave].name if rec.wave >= 0 else None
        failed = sum(w.failed for w in waves)
        return Progress(
            rec.id,
            rec.state,
            rec.rev,
            current,
            rec.reason,
            tuple(waves),
            failed,
            rec.retry_of,
            rec.retried_as,
        )

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
        self,
        station: str,
        rev: int,
        phase: str,
        error: str | None,
        now: float,
        detail: str | None = None,
    ) -> list[str]:
        """A station's ``reported``; returns the stations of a wave it starts, if any."""
        result = self.record.stations.get(station)
        if result is None or result.phase == WAITING or rev != self.record.rev:
            return []
        if phase == "applied":
            new = APPLIED
        elif phase == "staged":
            new = STAGED
        elif phase == "failed" and error not in RETRIED_ERRORS:
            new = FAILED
        else:  # downloading, verified, a failure the terminal retries: still pending
            return []
        if result.phase == new or (new == STAGED and result.phase == APPLIED):
            return []
        if new != FAILED:
            error = detail = None
        self._set(result, new, error, now, detail)
        return self._evaluate(now)

    def tick(self, now: float) -> list[str]:
        """Deadlines (pending stations of a wave past its timeout count as failed) and soaks."""
        rec = self.record
        if rec.state not in (RUNNING, PAUSED):
            return []
        expired = {
            i
            for i, wave in enumerate(rec.waves)
            if self._expired(i, now) and (self._counts[i][PENDING] or self._counts[i][STAGED])
        }
        current = rec.waves[rec.wave]
        soaking = current.soak_from is not None and rec.wave < len(rec.waves) - 1
        if not expired and not soaking:
            return []
        for result in rec.stations.values():
            if result.wave in expired and result.phase == PENDING:
                self._set(result, TIMED_OUT, "timeout", now)
        return self._evaluate(now)

    def _expired(self, index: int, now: float) -> bool:
        started = self.record.waves[index].started_at
        return started is not None and now >= started + self.record.policy.wave_timeout_s

    def _set(
        self,
        result: StationResult,
        phase: str,
        error: str | None,
        now: float,
        detail: str | None = None,
    ) -> None:
        counts = self._counts[result.wave]
        counts[result.phase] -= 1
        counts[phase] += 1
        result.phase, result.error, result.ts = phase, error, now
        result.detail = " ".join(detail.split())[:DETAIL_MAX] if detail else None
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
        # the console's page words these reasons (fleet.console.rollout_pages.reason_words)
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
        wave = rec.waves[rec.wave]
        counts = self._counts[rec.wave]
        expired = self._expired(rec.wave, now)
        success = (counts[APPLIED] + (counts[STAGED] if expired else 0)) / wave.size
        last = rec.wave == len(rec.waves) - 1
        if success >= policy.advance_at and wave.soak_from is None:
            wave.soak_from = now  # the soak's clock runs while paused too
            rec.updated = now
        if rec.state == PAUSED:
            return []
        if success >= policy.advance_at and not last:
            assert wave.soak_from is not None
            if now >= wave.soak_from + policy.soak_s:
                return self._open_wave(rec.wave + 1, now)
            return []
        if last and success >= policy.advance_at:
            unsettled = any(
                c[PENDING] or (c[STAGED] and not self._expired(i, now))
                for i, c in enumerate(self._counts)
            )
            if not unsettled:
                self._send("complete", now)
                log.info("rollout %s completed", rec.id)
            return []
        if not counts[PENDING] and (expired or not counts[STAGED]):
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
