"""The console side of rollouts, apart from its pages: the database's rollout store, the service
that drives rollouts while this process holds the rollout lease, and the checks of requests.

- :class:`DbRolloutStore` keeps each :class:`fleet.console.rollout.RolloutRecord` as JSON in the
  ``rollouts`` table (with its id, state and times as columns) and the last ``desired`` rev issued
  in ``rollout_revs`` (raised by one ``UPDATE``, so two console processes never issue the same).
- :class:`RolloutService` owns the driver (:class:`fleet.console.rollout_mqtt.RolloutDriver`) and
  drives only while this process holds the rollout lease (:mod:`fleet.console.rollout_lease`):
  several
  console processes may share one database, exactly one drives rollouts, and when it stops
  renewing the lease another takes the active rollouts over from the database. The holder
  connects its driver in the background (the console serves its pages while the broker is
  away), with the console's MQTT credentials, TLS if it has them, and applies, about every
  second, the requests that ``fleet rollout`` and the consoles not driving leave in
  ``rollout_requests``.
- :func:`desired_from`, :func:`policy_from`, :func:`choose_stations`: what a start request
  (page, API, CLI) may ask for. Thresholds are given in percent everywhere people type them
  (``advance_at_pct``, ``abort_above_pct``: the page, the CLI, the API); the record keeps
  fractions. The API still takes ``advance_at``/``abort_above`` as fractions from older scripts.
- a retry (``retry``, detail ``new_id``) starts a new rollout over a finished one's failed
  stations (:meth:`fleet.console.rollout_mqtt.RolloutDriver.retry`); it is audited like a start.

What is rolled out is the ``desired`` of docs/decisions.md: ``{catalog: {target, version,
sha256, length}, metadata_url, targets_url?}`` (the rev is the driver's); the targets are every
station the console knows, one site, or a list of ``site/station`` keys.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict
from typing import Any

from sqlalchemy import Integer, case, literal, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from fleet.console import i18n
from fleet.console.rollout import (
    FINAL_STATES,
    Policy,
    Progress,
    Rollout,
    RolloutError,
    RolloutRecord,
)
from fleet.console.rollout_lease import (
    LEASE_S,
    REQUEST_TTL_S,
    RolloutLease,
    claim,
    current_holder,
    finish,
    pending,
    submit,
    wait_done,
)
from fleet.console.rollout_mqtt import RolloutDriver
from fleet.console.store import RolloutRev, RolloutRow, Station, Store, audit
from fleet.mqtt.client import BrokerAccess

log = logging.getLogger("fleet.console.rollouts")

SHA256 = re.compile(r"^[0-9a-f]{64}$")
TARGET = re.compile(r"^[A-Za-z0-9._\-/]{1,200}$")
KEY = re.compile(r"^[A-Za-z0-9._\-]{1,64}/[A-Za-z0-9._\-]{1,64}$")
SCOPES = ("all", "site", "list")
ACTIONS = ("pause", "resume", "abort", "retry")
POLICY_INTS = ("canary", "min_results")
POLICY_FLOATS = ("percent", "advance_at", "abort_above", "wave_timeout_s", "soak_s")
POLICY_PERCENTS = ("advance_at_pct", "abort_above_pct")  # what people type: percent
ROLLOUT_ID = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")
ANSWER_S = 15.0  # how long a console not driving waits for the one that does


FIELD_LABELS = {
    "target": "rollouts.target",
    "version": "rollouts.version",
    "length": "rollouts.length",
    "metadata_url": "rollouts.metadata_url",
    "targets_url": "rollouts.targets_url",
    "canary": "rollouts.canary",
    "percent": "rollouts.percent",
    "advance_at_pct": "rollouts.advance_at",
    "abort_above_pct": "rollouts.abort_above",
    "min_results": "rollouts.min_results",
    "wave_timeout_s": "rollouts.wave_timeout",
    "soak_s": "rollouts.soak",
}
"""The start form's label of each field (a message about a field names it as the form does)."""


class RequestError(Exception):
    """A start request that cannot be carried out as asked (answered 400, exit 1 in the CLI).

    ``key`` names the message in the console's catalogs and ``params`` fill it in: ``str()``
    says it in English (the CLI, the audit), :meth:`words` in the request's language (the
    page, the API). A ``field`` is also given as ``label``, the form's name for it. A text that
    is no key (the CLI's own messages) is said as it is."""

    def __init__(self, key: str, **params: Any) -> None:
        self.key, self.params = key, params
        super().__init__(self.words("en"))

    def words(self, lang: str | None = None) -> str:
        lang = lang or i18n.current()
        params = dict(self.params)
        if "field" in params:
            label = FIELD_LABELS.get(str(params["field"]))
            params["label"] = i18n.translate(lang, label) if label else params["field"]
        return i18n.translate(lang, self.key, **params)


class NotDriving(Exception):
    """No console process drives rollouts now, or the one that does did not answer in time."""


def new_rollout_id() -> str:
    return uuid.uuid4().hex[:12]


# --- the store -----------------------------------------------------------------------------------


class DbRolloutStore:
    """:class:`fleet.console.rollout.RolloutStore` in the console's database. With a ``fence``, a
    record
    is saved only while ``fence(db)`` is true (this process holds the rollout lease)."""

    def __init__(self, store: Store, fence: Callable[[Session], bool] | None = None) -> None:
        self.store = store
        self.fence = fence

    def save(self, record: RolloutRecord) -> None:
        data = record.to_dict()
        with self.store.session() as db:
            if self.fence is not None and not self.fence(db):
                log.warning("rollout %s not saved: this console lost the rollout lease", record.id)
                return
            row = db.get(RolloutRow, record.id)
            if row is None:
                row = RolloutRow(id=record.id, created=record.created, started_by="")
                db.add(row)
            row.state, row.updated, row.record = record.state, record.updated, data

    def load(self, rollout_id: str) -> RolloutRecord | None:
        with self.store.session() as db:
            row = db.get(RolloutRow, rollout_id)
            return None if row is None else RolloutRecord.from_dict(row.record)

    def active_ids(self) -> list[str]:
        with self.store.session() as db:
            query = select(RolloutRow.id).where(RolloutRow.state.not_in(sorted(FINAL_STATES)))
            return list(db.scalars(query.order_by(RolloutRow.created)))

    def next_rev(self, floor: int = 0) -> int:
        above = literal(int(floor), Integer)
        raised = case((RolloutRev.last_rev > above, RolloutRev.last_rev), else_=above) + 1
        with self.store.session() as db:
            db.execute(update(RolloutRev).where(RolloutRev.id == 1).values(last_rev=raised))
            rev = db.scalar(select(RolloutRev.last_rev).where(RolloutRev.id == 1))
        if rev is None:
            raise RolloutError("the rollout_revs row is missing: is the schema migrated?")
        return int(rev)


# --- the driver ----------------------------------------------------------------------------------


class RolloutService:
    """Drives rollouts while this process holds the rollout lease; see the module's text.

    ``ready`` is set while this process drives (its driver connected, the lease held).
    :meth:`execute` carries a start, pause, resume or abort out here when this process drives,
    else leaves it for the process that does and waits for the outcome.
    """

    def __init__(
        self,
        store: Store,
        broker: BrokerAccess,
        *,
        tick_s: float = 0.5,
        lease_s: float = LEASE_S,
        poll_s: float = 1.0,
        holder: str | None = None,
    ) -> None:
        self.db = store
        self.lease = RolloutLease(store, holder, lease_s)
        self.store = DbRolloutStore(store, fence=self.lease.check)
        self.broker = broker
        self.tick_s, self.poll_s = tick_s, poll_s
        self.driver: RolloutDriver | None = None
        self.ready = threading.Event()
        self.error: str | None = None
        self._lock = threading.RLock()  # one command at a time: the web's and the requests'
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._lease_thread = threading.Thread(
            target=self._lease_loop, name="rollout-lease", daemon=True
        )
        self._thread = threading.Thread(target=self._run, name="rollout-driver", daemon=True)

    def start(self) -> None:
        self._lease_thread.start()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        for thread in (self._lease_thread, self._thread):
            if thread.is_alive():
                thread.join(timeout=35)
        if self.driver is not None:
            self._drop("the console stops")
        if self._lease_thread.ident is not None:
            try:
                self.lease.release()
            except SQLAlchemyError as err:
                log.warning("could not give the rollout lease up: %s", err)

    def driving(self) -> bool:
        return self.ready.is_set() and self.driver is not None and self.lease.holds()

    def available(self) -> bool:
        """True if some console process (this one or another) drives rollouts now."""
        if self.driving():
            return True
        with self.db.session() as db:
            return current_holder(db) is not None

    # --- the lease and the driver (background threads) -----------------------------------------

    def _lease_loop(self) -> None:
        held = False
        while not self._stop.is_set():
            try:
                now_held = self.lease.try_acquire()
            except SQLAlchemyError as err:
                log.warning("rollout lease not renewed: %s", err)
                now_held = self.lease.holds()
            if now_held != held:
                if now_held:
                    log.info(
                        "rollout lease taken by %s: this console drives rollouts", self.lease.holder
                    )
                else:
                    log.warning("rollout lease lost by %s", self.lease.holder)
                self._wake.set()
            held = now_held
            self._stop.wait(self.lease.renew_s)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self.lease.holds():
                    if self.driver is None:
                        self._connect()
                    if self.driver is not None:
                        self._apply_pending()
                elif self.driver is not None:
                    self._drop("the rollout lease was lost")
            except Exception:  # a database hiccup must not end the loop
                log.exception("rollout service")
            self._wake.wait(self.poll_s)
            self._wake.clear()

    def _connect(self) -> None:
        driver = RolloutDriver(self.broker, self.store, tick_s=self.tick_s)
        try:
            driver.connect()
        except (OSError, RolloutError) as err:
            self.error = f"broker unreachable: {err}" if isinstance(err, OSError) else str(err)
            log.warning("rollout driver: %s; retrying", self.error)
            driver.close()
            self._stop.wait(2.0)
            return
        if self._stop.is_set() or not self.lease.holds():
            driver.close()
            return
        self.driver, self.error = driver, None
        self.ready.set()
        log.info("rollout driver connected")

    def _drop(self, why: str) -> None:
        with self._lock:
            self.ready.clear()
            driver, self.driver = self.driver, None
            if driver is not None:
                log.warning("rollouts: %s; this console stops driving them", why)
                driver.close()

    def _apply_pending(self) -> None:
        for request in pending(self.db):
            if self._stop.is_set() or not self.lease.holds():
                return
            if not claim(self.db, request.id):
                continue
            if time.time() - request.created > REQUEST_TTL_S:
                finish(self.db, request.id, False, "expired: no console took it up in time")
                continue
            try:
                self._apply(
                    request.action, request.rollout_id, request.actor, request.via, request.detail
                )
            except (RolloutError, NotDriving) as err:
                finish(self.db, request.id, False, str(err))
            except Exception as err:
                log.exception("rollout request %d", request.id)
                finish(self.db, request.id, False, f"internal error: {type(err).__name__}")
            else:
                finish(self.db, request.id, True)

    # --- commands ------------------------------------------------------------------------------

    def execute(
        self,
        action: str,
        rollout_id: str,
        actor: str,
        via: str,
        detail: dict[str, Any],
        timeout_s: float = ANSWER_S,
    ) -> Progress:
        """Start (``detail``: desired, stations, policy, scope), pause, resume or abort
        (``detail``: reason). Raises :class:`RolloutError` if refused (audited), or
        :class:`NotDriving`."""
        if self.driving():
            return self._apply(action, rollout_id, actor, via, detail)
        with self.db.session() as db:
            if current_holder(db) is None:
                raise NotDriving(self.error or "no console process drives rollouts yet")
            request_id = submit(db, action, rollout_id, actor, via, detail)
        done = wait_done(self.db, request_id, timeout_s)
        if done is None:
            raise NotDriving("the console that drives rollouts did not answer in time")
        if not done.ok:
            raise RolloutError(done.error)
        progress = self.progress(rollout_id)
        if progress is None:
            raise RolloutError(f"no rollout {rollout_id!r}")
        return progress

    def progress(self, rollout_id: str) -> Progress | None:
        """From the database (it lags the driver by at most its ``save_every_s``)."""
        with self.db.session() as db:
            row = db.get(RolloutRow, rollout_id)
            return None if row is None else Rollout(RolloutRecord.from_dict(row.record)).progress()

    def _apply(
        self, action: str, rollout_id: str, actor: str, via: str, detail: Mapping[str, Any]
    ) -> Progress:
        name = "rollout" if action == "start" else action
        target = f"rollout/{rollout_id}"
        note: dict[str, Any] = {"via": via}
        with self._lock:
            driver = self.driver
            if driver is None or not self.lease.holds():
                raise NotDriving("this console does not drive rollouts (any more)")
            try:
                if action == "start":
                    progress = self._start(driver, rollout_id, actor, detail)
                    note |= {
                        "version": progress_version(detail),
                        "stations": len(detail["stations"]),
                        "scope": detail.get("scope", "list"),
                    }
                elif action == "pause":
                    progress = driver.pause(rollout_id)
                elif action == "resume":
                    progress = driver.resume(rollout_id)
                elif action == "abort":
                    reason = str(detail.get("reason") or "aborted by hand")
                    progress = driver.abort(rollout_id, reason)
                    note["reason"] = reason
                elif action == "retry":
                    new_id = str(detail.get("new_id") or new_rollout_id())
                    if not ROLLOUT_ID.match(new_id):
                        raise RequestError("rollouts.error.rollout_id")
                    driver.retry(rollout_id, new_id)
                    progress = driver.status(new_id)
                    note |= {"retry": new_id, "stations": sum(w.size for w in progress.waves)}
                    with self.db.session() as db:
                        row = db.get(RolloutRow, new_id)
                        if row is not None:
                            row.started_by = actor
                else:
                    raise RolloutError(f"no action {action[:16]!r}")
            except (RolloutError, RequestError) as err:
                why = str(err)
                with self.db.session() as db:
                    audit(db, actor, name, target, ok=False, reason=why, via=via)
                raise RolloutError(why) from err
        with self.db.session() as db:
            audit(db, actor, name, target, **note)
        return progress

    def _start(
        self, driver: RolloutDriver, rollout_id: str, actor: str, detail: Mapping[str, Any]
    ) -> Progress:
        if not ROLLOUT_ID.match(rollout_id):
            raise RequestError("rollouts.error.rollout_id")
        try:
            given = dict(detail["desired"])
            flat = {**given["catalog"]} | {
                k: given[k] for k in ("metadata_url", "targets_url") if k in given
            }
            desired = desired_from(flat)
            policy = Policy.from_dict(detail.get("policy") or {})
            keys = [str(k) for k in detail["stations"]]
        except (KeyError, TypeError, ValueError) as err:
            raise RequestError("rollouts.error.malformed", detail=str(err)) from err
        with self.db.session() as db:
            if db.get(RolloutRow, rollout_id) is not None:
                raise RolloutError(f"rollout {rollout_id} exists already")
        driver.start(desired, keys, policy, rollout_id=rollout_id)
        with self.db.session() as db:
            row = db.get(RolloutRow, rollout_id)
            if row is not None:
                row.started_by = actor
        return driver.status(rollout_id)


def progress_version(detail: Mapping[str, Any]) -> Any:
    return detail["desired"]["catalog"]["version"]


def start_detail(
    desired: dict[str, Any], keys: list[str], policy: Policy, scope: str
) -> dict[str, Any]:
    """What a start request carries (JSON): see :meth:`RolloutService.execute`."""
    return {"desired": desired, "stations": keys, "policy": asdict(policy), "scope": scope}


# --- requests ------------------------------------------------------------------------------------


def parse_number(value: Any, name: str, kind: type[int] | type[float]) -> int | float:
    if isinstance(value, bool):
        raise RequestError("rollouts.error.number", field=name)
    if isinstance(value, str):
        value = value.strip()
    try:
        number = kind(value)
    except (TypeError, ValueError) as err:
        raise RequestError("rollouts.error.number", field=name) from err
    if kind is int and isinstance(value, float) and value != number:
        raise RequestError("rollouts.error.whole_number", field=name)
    return number


def desired_from(data: Mapping[str, Any]) -> dict[str, Any]:
    """The ``desired`` (without rev) from the catalog fields of a request."""
    target = str(data.get("target") or "").strip()
    if not TARGET.match(target) or ".." in target:
        raise RequestError("rollouts.error.target")
    version = int(parse_number(data.get("version"), "version", int))
    length = int(parse_number(data.get("length"), "length", int))
    if version < 1 or length < 1:
        raise RequestError("rollouts.error.positive")
    sha256 = str(data.get("sha256") or "").strip().lower()
    if not SHA256.match(sha256):
        raise RequestError("rollouts.error.sha256")
    desired: dict[str, Any] = {
        "catalog": {"target": target, "version": version, "sha256": sha256, "length": length}
    }
    for name in ("metadata_url", "targets_url"):
        url = str(data.get(name) or "").strip()
        if not url and name == "targets_url":
            continue
        if not re.match(r"^https?://[^\s]{1,500}$", url):
            raise RequestError("rollouts.error.url", field=name)
        desired[name] = url
    return desired


def policy_from(data: Mapping[str, Any]) -> Policy:
    """A :class:`Policy` from the fields given (the others keep their defaults)."""
    values: dict[str, Any] = {}
    for name in POLICY_INTS:
        if data.get(name) not in (None, ""):
            values[name] = int(parse_number(data[name], name, int))
    for name in POLICY_FLOATS:
        if data.get(name) not in (None, ""):
            values[name] = float(parse_number(data[name], name, float))
    for name in POLICY_PERCENTS:
        given = data.get(name)
        if isinstance(given, str):
            given = given.strip().removesuffix("%")
        if given not in (None, ""):
            values[name.removesuffix("_pct")] = float(parse_number(given, name, float)) / 100
    canaries = data.get("canary_stations")
    if canaries:
        if not isinstance(canaries, list) or not all(isinstance(k, str) for k in canaries):
            raise RequestError("rollouts.error.canary_stations")
        values["canary_stations"] = tuple(canaries)
    try:
        return Policy(**values)
    except RolloutError as err:
        raise RequestError("rollouts.error.policy", detail=str(err)) from err


def split_keys(text: str) -> list[str]:
    return [k for k in re.split(r"[\s,;]+", text) if k]


def choose_stations(db: Session, scope: str, site: str, listed: list[str]) -> list[str]:
    """The ``site/station`` keys a rollout targets, in the order of the fleet page."""
    rows = db.execute(select(Station.site, Station.station).order_by(Station.site, Station.station))
    known = [f"{s}/{st}" for s, st in rows]
    if scope == "all":
        keys = known
    elif scope == "site":
        keys = [k for k in known if k.partition("/")[0] == site]
        if not keys:
            raise RequestError("rollouts.error.no_site_stations", site=site[:64])
    elif scope == "list":
        members = set(known)
        unknown = [k for k in listed if k not in members]
        if unknown:
            raise RequestError(
                "rollouts.error.unknown_stations", stations=", ".join(unknown[:5])[:300]
            )
        keys = list(dict.fromkeys(listed))
    else:
        raise RequestError("rollouts.error.scope")
    if not keys:
        raise RequestError("rollouts.error.no_stations")
    return keys


def rollout_view(row: RolloutRow, live: Progress | None = None) -> dict[str, Any]:
    """A rollout as the page and the API show it (``live``: the driver's fresher progress;
    the stored record lags it by at most the driver's ``save_every_s``)."""
    record = RolloutRecord.from_dict(row.record)
    view = (live or Rollout(record).progress()).to_dict()
    failures = [
        {"station": key, "phase": r.phase, "error": r.error, "detail": r.detail}
        for key, r in sorted(record.stations.items())
        if r.phase in ("failed", "timed_out")
    ]
    return view | {
        "catalog": record.desired.get("catalog", {}),
        "metadata_url": record.desired.get("metadata_url"),
        "policy": asdict(record.policy),
        "stations": len(record.stations),
        "failures": failures,
        "staged": sum(w["staged"] for w in view["waves"]),
        "retriable": bool(failures) and view["state"] in FINAL_STATES and not record.retried_as,
        "created": record.created,
        "updated": record.updated,
        "started_by": row.started_by,
        "finished": view["state"] in FINAL_STATES,
    }
