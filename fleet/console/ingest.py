"""The console's ingest: MQTT in, database rows out; alerts, commands, certificate renewal.

Subscriptions (MQTT v5). ``health``, ``evt/#``, ``reported`` and ``cmd/+/result`` are taken
through the shared subscription ``$share/{group}/kiosk/v1/...`` so that several console
processes split the work: each message reaches one of them, and all of them write the same
database. ``state`` and ``birth`` are retained, and a broker never hands retained messages to a
shared subscription (MQTT v5, 4.8.2), so every console subscribes to those two directly; both are
idempotent upserts (a ``state`` of an older ``session`` is a late Will and is ignored).

Every write that two consoles could race on is made safe by the database: an event is unique by
(station, event id), an alert by its ``active_key`` while it is not resolved; a unique violation
is counted as a duplicate, never an error.

Alerts: from health (``ui_frozen``, ``paper_out``, ``paper_low``, ``toner_low``, ``toner_out``,
``reader_fault``; resolved when the health no longer says so), from events (``help_request``,
and the station's own ``alert`` events as ``station:{kind}``; both resolved by acknowledging), and
from the timers (``offline`` when a station has been offline longer than the threshold inside its
duty hours; resolved when it is back). A new alert goes to the webhook, if one is configured.
A rating of one or two stars becomes a follow-up (:mod:`fleet.console.followups`) in the very
transaction that first stores it, so a redelivered rating makes none and none is lost between.

Certificate renewal: an ``evt/csr`` is answered with an ``install_certificate`` command made by
:func:`fleet.trust.renewal.answer_csr` for the station named by the TOPIC (the broker's ACL ties the
topic to the sender), never the payload.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import gc
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from prometheus_client import CollectorRegistry
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, load_only

from fleet.console import call_audit, enroll, followups, help_reply, incidents
from fleet.console.alerting import AlertDesk
from fleet.console.call_records import PURGE_EVERY_S, RecordingPolicy, purge
from fleet.console.edge import ALERT_KIND as MALFORMED_ALERT
from fleet.console.edge import (
    DeadLetters,
    EventIn,
    Item,
    Rejected,
    excerpt,
    label,
    oversized,
    parse,
)
from fleet.console.ingest_batch import BatchWriter, EventRows
from fleet.console.outputs import Metrics, Webhook
from fleet.console.store import (
    Alert,
    CommandRow,
    Station,
    Store,
    Timers,
    audit,
    in_duty_hours,
    new_command,
    offline_since,
)
from fleet.console.zone import DEFAULT_TIMEZONE
from fleet.mqtt.client import CONSOLE_USER, BrokerAccess, on_accepted
from fleet.mqtt.stream import RETAIN_IF_NEW, Message, StreamSubscriber
from fleet.protocol.models import CALL_END_EVENT, STATION_ALERT_KINDS, STATION_PATTERN
from fleet.protocol.topics import CONSOLE_STATE, ROOT, StationTopics, dumps
from fleet.protocol.topics import parse_station_topic as parse_topic
from fleet.trust.pki import CertificateAuthority, PkiError
from fleet.trust.renewal import CSR_EVENT, answer_csr

log = logging.getLogger("fleet.console.ingest")

FINAL = frozenset({"succeeded", "failed", "timed_out"})
# events the console acts on
FOLLOWED_EVENTS = frozenset({"help", "alert", CSR_EVENT, "rating", CALL_END_EVENT})
STATION_NAME = re.compile(STATION_PATTERN)
SITE_ALERT = "site_mismatch"  # a station publishing under a site it is not bound to
COMMAND_GRACE_S = 30.0  # a result may take this long beyond the command's own timeout


@dataclass(frozen=True)
class Settings:
    offline_alert_after_s: float = 300.0
    # this many stations of one site offline within the window: one incident (site_outage)
    incident_min_stations: int = 5
    incident_window_s: float = 60.0
    timers: Timers = field(default_factory=Timers)
    webhook_url: str | None = None
    timezone: str = DEFAULT_TIMEZONE  # the stations' zone: duty hours, pages, days (zone.py)
    sweep_s: float = 5.0
    share_group: str | None = "console"  # None: plain subscriptions (a single console)
    console_url: str = ""  # put in webhook messages so a person can click through
    # The inbound stream's MQTT session. With an expiry, the broker keeps this console's share of
    # the stream (and what it had not acknowledged) while it restarts: the id must then stay the
    # same across restarts and differ between consoles (``fleet console`` uses the host name and
    # HTTP port, and an hour). "" and 0: a fresh id, and a session that ends with the connection.
    client_id: str = ""
    session_expiry_s: int = 0
    followup_due_s: float = followups.DUE_S  # a bad rating is to be settled within this
    recording: RecordingPolicy = field(default_factory=RecordingPolicy)  # calls (call_records)


# The cyclic garbage collector's first threshold for a console process (CPython's is 700). The
# ingest allocates a dict per message, 5,000 messages a batch, nearly all freed by reference
# counting; at 700 the collector ran every few dozen messages and scanned what the batch still
# held, a fifth of the ingest's time (docs/performance.md).
GC_THRESHOLD = 50_000


def tune_gc() -> None:
    """Once a console process is set up: what it holds from its start (modules, the app, the
    ORM's mappings) is never scanned again, and the collector runs less often."""
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_THRESHOLD, older, oldest)


@dataclass
class Routed:
    """A parsed batch, by what the console does with it (:meth:`Ingest.prepare_batch`)."""

    events: EventRows
    rejected: list[tuple[int | None, Rejected]] = field(default_factory=list)
    heartbeats: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    records: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)
    results: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)
    kinds: collections.Counter[str] = field(default_factory=collections.Counter)


def _nothing() -> None:
    """The store step of a batch with nothing to store."""


class Ingest:
    def __init__(
        self,
        store: Store,
        broker: BrokerAccess,
        *,
        ca: CertificateAuthority | None = None,
        settings: Settings | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.store = store
        self.broker = broker
        self.ca = ca
        self.settings = settings or Settings()
        self.metrics = Metrics(registry or CollectorRegistry())
        self.webhook = Webhook(store, self.settings.webhook_url, self.metrics)
        self.ingested = 0  # messages this process took (tests of the shared subscription)
        self.batches = BatchWriter(store)
        self.alerts = AlertDesk(
            store, self.metrics, self.webhook, self.batches.name_of, self.settings.console_url
        )
        self.dead_letters = DeadLetters(store)
        self._stop = threading.Event()
        self._sweeper = threading.Thread(target=self._sweep_loop, name="console-sweep", daemon=True)
        client_id = self.settings.client_id or f"console-{uuid.uuid4().hex[:12]}"
        self.stream = StreamSubscriber(
            broker.host,
            broker.port,
            client_id,
            self._subscriptions,
            None,
            prepare=self._prepare,
            username=None if broker.tls else CONSOLE_USER,
            password=None if broker.tls else broker.password,
            tls=broker.tls,
            session_expiry_s=self.settings.session_expiry_s,
        )
        self.connected = self.stream.connected
        # commands and the console's own state go out through paho (its Will marks us offline)
        self.client = broker.client(f"{client_id[:48]}-out-{uuid.uuid4().hex[:6]}")
        self.client.will_set(CONSOLE_STATE, dumps({"online": False}), qos=1, retain=True)
        self.client.on_connect = on_accepted(
            log, "the console", self._on_connect, level=logging.ERROR
        )
        self.client.on_disconnect = self._on_disconnect
        self._out_connected = threading.Event()

    # --- life cycle ----------------------------------------------------------------------------

    def start(self) -> None:
        self.webhook.start()
        self.client.connect_async(self.broker.host, self.broker.port, keepalive=30)
        self.client.loop_start()
        self.stream.start()
        self._sweeper.start()

    def stop(self) -> None:
        self._stop.set()
        if self._sweeper.is_alive():
            self._sweeper.join(timeout=10)
        self.stream.stop()
        if self._out_connected.is_set():
            info = self.client.publish(CONSOLE_STATE, dumps({"online": False}), qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(timeout=3)
        self.client.disconnect()
        self.client.loop_stop()
        self.webhook.stop()

    def _on_connect(self, client: mqtt.Client) -> None:
        """The broker took the connection (:func:`fleet.mqtt.client.on_accepted`)."""
        client.publish(
            CONSOLE_STATE, dumps({"online": True, "ts": time.time()}), qos=1, retain=True
        )
        self._out_connected.set()

    def _on_disconnect(self, *_args: Any) -> None:
        self._out_connected.clear()

    def _subscriptions(self) -> list[tuple[str, int]]:
        """Asked at each connect. ``state`` and ``birth`` come retained at the first subscription
        of this console's session; on a reconnect the session has kept them and queued every
        change, so the broker is asked not to replay them (MQTT v5 Retain Handling 1) unless the
        database knows no station (a new or emptied database wants the whole fleet again)."""
        group = self.settings.share_group
        shared = f"$share/{group}/" if group else ""
        try:
            with self.store.session() as db:
                known = db.scalar(select(Station.id).limit(1)) is not None
        except SQLAlchemyError:  # the database is away: ask for everything, to be safe
            known = False
        retained = 1 | RETAIN_IF_NEW if known else 1
        return [(f"{ROOT}/+/+/{s}", retained) for s in ("state", "birth")] + [
            (f"{shared}{ROOT}/+/+/{s}", 1) for s in ("health", "evt/#", "reported", "cmd/+/result")
        ]

    # --- ingest --------------------------------------------------------------------------------

    def handle(self, topic: str, data: bytes) -> None:
        self.handle_batch([(topic, data)])

    def handle_batch(self, messages: list[tuple[str, bytes]]) -> None:
        """Store a batch; raises (and stores nothing of the bulk part) if the database fails,
        so the stream offers the same batch again and acknowledges nothing meanwhile."""
        self.prepare_batch(messages)()

    def _prepare(self, messages: list[Message]) -> Callable[[], None]:
        over = [(m.topic, m.oversize) for m in messages if m.oversize]
        if not over:
            return self.prepare_batch([(m.topic, m.payload) for m in messages])
        whole = [(m.topic, m.payload) for m in messages if not m.oversize]
        return self.prepare_batch(whole, oversize=over)

    def prepare_batch(
        self, messages: list[tuple[str, bytes]], *, oversize: list[tuple[str, int]] | None = None
    ) -> Callable[[], None]:
        """Check a batch at the edge and route it (the stream runs this while the previous batch
        is being written); returns the step that stores it, which may be called again if it
        fails. Messages that fail a check are routed to the dead letters, never dropped."""
        events, items, rejected = parse(messages, FOLLOWED_EVENTS)
        for topic, size in oversize or ():
            rejected += filter(None, [oversized(topic, size)])
        if not events and not items and not rejected:
            return _nothing
        keys = {(e.site, e.station) for e in events}
        keys.update((i.site, i.station) for i in items)
        keys.update((r.site, r.station) for r in rejected if r.reason != "bad_name")
        ids = self.batches.station_ids(keys)  # registers new stations: a write, but rare
        refused = {k for k in keys if k not in ids}
        routed = Routed(EventRows(0, {}, 0, [], []))
        owners: dict[str, int | None] = {}  # asked once a batch per station
        for r in rejected:
            station_id = ids.get((r.site, r.station))
            if station_id is None and STATION_NAME.match(r.station):  # a bad or foreign site
                if r.station not in owners:
                    owners[r.station] = self.batches.owner(r.station)
                station_id = owners[r.station]
            routed.rejected.append((station_id, r))
        if refused:  # a station under a site it is not bound to: set aside, alerted
            events, items = self._refuse(refused, events, items, routed)
        routed.events = self.batches.event_rows(events, FOLLOWED_EVENTS)
        routed.kinds.update("evt/" + e.kind for e in events)
        for item in items:
            station_id = ids[(item.site, item.station)]
            kind = item.kind
            routed.kinds[label(kind)] += 1
            if kind == "health":
                routed.heartbeats.append((station_id, item.payload))
            elif kind in ("state", "birth", "reported"):
                routed.records.append((station_id, kind, item.payload))
            else:  # cmd/{id}/result, the only other kind the edge lets through
                routed.results.append((station_id, kind.split("/")[1], item.payload))
        return functools.partial(self._store_isolated, routed, messages, oversize or [])

    def _refuse(
        self,
        refused: set[tuple[str, str]],
        events: list[EventIn],
        items: list[Item],
        routed: Routed,
    ) -> tuple[list[EventIn], list[Item]]:
        """Move the messages of refused (site, station) keys to the dead letters."""
        kept_events: list[EventIn] = [e for e in events if (e.site, e.station) not in refused]
        kept_items: list[Item] = [i for i in items if (i.site, i.station) not in refused]
        gone: list[tuple[str, str, str, bytes]] = [
            (e.site, e.station, f"evt/{e.kind}", e.text.encode())
            for e in events
            if (e.site, e.station) in refused
        ]
        gone += [
            (i.site, i.station, i.kind, dumps(i.payload))
            for i in items
            if (i.site, i.station) in refused
        ]
        owners = {station: self.batches.owner(station) for _, station, _, _ in gone}
        for site, station, rest, data in gone:
            topic = f"{ROOT}/{site}/{station}/{rest}"
            detail = f"station {station} is bound to another site, not {site}"
            rejected = Rejected(
                site, station, topic, label(rest), len(data), "site_mismatch", detail, excerpt(data)
            )
            routed.rejected.append((owners[station], rejected))
        return kept_events, kept_items

    def _store_isolated(
        self, routed: Routed, messages: list[tuple[str, bytes]], oversize: list[tuple[str, int]]
    ) -> None:
        """Store a batch; if it fails while the database answers, one message is to blame:
        store the batch again one message at a time and set aside the ones that fail. If the
        database does not answer, raise: the stream offers the whole batch again later."""
        try:
            self._store(routed)
        except Exception as err:
            if not self.store.reachable() or len(messages) <= 1:
                raise
            log.warning("a batch of %d failed (%s); storing one by one", len(messages), err)
            if oversize:
                self.prepare_batch([], oversize=oversize)()
            for topic, data in messages:
                try:
                    self.prepare_batch([(topic, data)])()
                except Exception as one:
                    if not self.store.reachable():
                        raise
                    self._set_aside_failed(topic, data, one)

    def _set_aside_failed(self, topic: str, data: bytes, err: Exception) -> None:
        parsed = parse_topic(topic)
        if parsed is None:
            return
        site, station, rest = parsed
        detail = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        rejected = Rejected(
            site, station, topic[:255], label(rest), len(data), "store_failed", detail[:255], ""
        )
        station_id = self.batches.station_ids([(site, station)]).get((site, station))
        self._set_aside([(station_id, rejected)])

    def _set_aside(self, rows: list[tuple[int | None, Rejected]]) -> None:
        """Dead letters, their count by reason, and one alert per station that sent them."""
        if not rows:
            return
        self.dead_letters.add(rows)
        reasons = collections.Counter(r.reason for _, r in rows)
        for reason, count in reasons.items():
            self.metrics.dead_letters.labels(reason=reason).inc(count)
        self.metrics.messages.labels(kind="rejected").inc(len(rows))
        alerts: list[tuple[int, str, dict[str, Any], bool]] = []
        for station_id, r in rows:
            if station_id is None:
                continue
            kind = SITE_ALERT if r.reason == "site_mismatch" else MALFORMED_ALERT
            detail = {"reason": r.reason, "kind": r.kind, "site": r.site}
            alerts.append((station_id, kind, detail, True))
        self.raise_alerts(alerts)

    def _store(self, routed: Routed) -> None:
        now = time.time()
        online = self.batches.records(routed.records, now)
        newest = self.batches.heartbeats(routed.heartbeats, now)
        new_events, duplicates = self.batches.events(routed.events, self._with_new_events)
        # at once: a redelivered batch finds these events stored and would not act on them again
        self._after_events(new_events)
        for station_id, command_id, payload in routed.results:
            self._result(station_id, command_id, payload)
        self._set_aside(routed.rejected)
        self.ingested += routed.kinds.total() + len(routed.rejected)
        for name, count in routed.kinds.items():
            self.metrics.messages.labels(kind=name).inc(count)
        if duplicates:
            self.metrics.duplicates.inc(duplicates)
        self.alerts.resolve_all(online, "offline")
        self.alerts.health_alerts(newest, now)

    def station_id(self, site: str, station: str) -> int:
        return self.batches.station_id(site, station)

    def _with_new_events(self, db: Session, events: list[tuple[int, str, dict[str, Any]]]) -> None:
        """In the transaction that stores them: bad ratings become follow-ups."""
        followups.record(db, events, self.settings.followup_due_s)

    def _after_events(self, events: list[tuple[int, str, dict[str, Any]]]) -> None:
        """Help requests and the stations' own alerts raise alerts; a CSR is answered."""
        alerts: list[tuple[int, str, dict[str, Any], bool]] = []
        for station_id, kind, payload in events:
            if kind == "help":
                alerts.append((station_id, "help_request", {"screen": payload.get("screen")}, True))
            elif kind == "alert":
                name = str(payload.get("kind"))
                if name not in STATION_ALERT_KINDS:  # bounded: one "other" alert per station
                    name = "other"
                event_id = str(payload.get("event_id") or "")[:64]
                alerts.append((station_id, f"station:{name}", {"event_id": event_id}, True))
            elif kind == CSR_EVENT:
                site, station = self.batches.name_of(station_id)
                self._answer_csr(station_id, site, station, payload)
            elif kind == CALL_END_EVENT:  # the call's end in the audit, if the page did not say
                with self.store.session() as db:
                    call_audit.record_station_end(db, station_id, payload, self.settings.recording)
        self.raise_alerts(alerts)

    def _result(self, station_id: int, command_id: str, payload: dict[str, Any]) -> None:
        status = str(payload.get("status", ""))
        with self.store.session() as db:
            row = db.get(CommandRow, command_id)
            if row is None or row.station_id != station_id:
                log.warning("result for a command this station was not sent: %s", command_id)
                return
            if row.status in FINAL and status not in FINAL:
                return  # a late "accepted" after the final result
            row.status = status[:16] or row.status
            detail = payload.get("detail")
            row.detail = detail if isinstance(detail, dict) else {}
            row.updated_at = time.time()

    # --- alerts (fleet.console.alerting) ------------------------------------------------------

    def raise_alert(
        self, station_id: int, kind: str, detail: dict[str, Any], *, repeat: bool = False
    ) -> bool:
        return self.alerts.raise_alert(station_id, kind, detail, repeat=repeat)

    def raise_alerts(self, requests: list[tuple[int, str, dict[str, Any], bool]]) -> int:
        return self.alerts.raise_alerts(requests)

    def resolve(self, station_id: int, kind: str) -> None:
        self.alerts.resolve(station_id, kind)

    # --- commands ------------------------------------------------------------------------------

    def send_command(
        self,
        station_id: int,
        name: str,
        args: dict[str, Any],
        timeout_s: float,
        actor: str,
        *,
        db: Session | None = None,
    ) -> str:
        """Record and publish ``{"name","args","timeout_s"}`` on the station's ``cmd/{id}``."""
        row = new_command(station_id, name, args, timeout_s, actor)
        with contextlib.ExitStack() as stack:
            if db is None:
                db = stack.enter_context(self.store.session())
            station = db.get_one(Station, station_id)
            topic = StationTopics(station.site, station.station).command(row.id)
            db.add(row)
        self.publish_command(topic, name, args, timeout_s)
        return row.id

    def publish_command(
        self, topic: str, name: str, args: dict[str, Any], timeout_s: float
    ) -> None:
        """Publish a recorded command (QoS 1, expiring with its timeout)."""
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.MessageExpiryInterval = max(1, int(timeout_s))
        body = {"name": name, "args": args, "timeout_s": timeout_s}
        self.client.publish(topic, dumps(body), qos=1, properties=props)
        self.metrics.commands.inc()

    def _answer_csr(
        self, station_id: int, site: str, station: str, payload: dict[str, Any]
    ) -> None:
        target = f"{site}/{station}"
        with self.store.session() as db:
            if enroll.renewal_refused(db, station):  # revoked at enrolment: no new certificate
                audit(db, "system", "certificate_request", target, ok=False, reason="revoked")
                return
        if self.ca is None:
            with self.store.session() as db:
                audit(db, "system", "certificate_request", target, ok=False, reason="no_ca")
            return
        try:
            command = answer_csr(self.ca, payload, station)  # the station of the TOPIC
        except PkiError as err:
            with self.store.session() as db:
                audit(db, "system", "certificate_request", target, ok=False, reason=str(err))
            self.raise_alert(station_id, "station:csr_rejected", {}, repeat=True)
            return
        with self.store.session() as db:
            command_id = self.send_command(
                station_id, command["name"], command["args"], 60.0, "system", db=db
            )
            audit(
                db,
                "system",
                "certificate_issued",
                target,
                serial=command["args"]["serial"],
                not_after=command["args"]["not_after"],
                command=command_id,
            )
            issued = command["args"]
            enroll.record_renewal(db, station, issued["serial"], issued["not_after"])  # enrolment

    # --- timers --------------------------------------------------------------------------------

    def _sweep_loop(self) -> None:
        purged_at = time.monotonic() - PURGE_EVERY_S  # the first sweep purges
        while not self._stop.wait(self.settings.sweep_s):
            try:
                self.sweep()
                if time.monotonic() - purged_at >= PURGE_EVERY_S:  # recordings past retention
                    purged_at = time.monotonic()
                    self.purge_recordings()
            except Exception:
                log.exception("sweep failed")

    def purge_recordings(self, now: float | None = None) -> list[str]:
        """Recordings of calls past their retention deleted (:func:`call_records.purge`)."""
        with self.store.session() as db:
            return purge(db, self.settings.recording, now)

    def sweep(self, now: float | None = None) -> None:
        """Offline alerts inside duty hours, and commands that never got a final result."""
        now = time.time() if now is None else now
        offline: list[tuple[int, str, str, float]] = []
        back: list[int] = []
        with self.store.session() as db:
            # only the columns the timers read: the health and birth documents of 10,000
            # stations would be decoded every few seconds for nothing
            timer_columns = load_only(
                Station.site,
                Station.station,
                Station.online,
                Station.offline_since,
                Station.state_ts,
                Station.last_seen,
                Station.interval_s,
                Station.duty_hours,
                Station.first_seen,
            )
            for row in db.scalars(select(Station).options(timer_columns)):
                since = offline_since(row, now, self.settings.timers)
                if since is None:
                    back.append(row.id)
                elif now - since >= self.settings.offline_alert_after_s and in_duty_hours(
                    row.duty_hours, now, self.settings.timezone
                ):
                    offline.append((row.id, row.site, row.station, since))
            for command in db.scalars(
                select(CommandRow).where(CommandRow.status.in_(("sent", "accepted")))
            ):
                if now > command.created_at + command.timeout_s + COMMAND_GRACE_S:
                    command.status = "timed_out"
                    command.note = "no result reached the console"
                    command.updated_at = now
            alerted = set(
                db.scalars(
                    select(Alert.station_id).where(
                        Alert.kind == "offline", Alert.active_key.is_not(None)
                    )
                )
            )
        known = incidents.open_sites(self.store)
        outages = incidents.group(
            offline,
            set(known),
            min_stations=self.settings.incident_min_stations,
            window_s=self.settings.incident_window_s,
        )
        incidents.upkeep(self.store, self.alerts, outages, known)
        for station_id, since in outages.singles:
            if station_id not in alerted:
                self.raise_alert(station_id, "offline", {"since": since})
        for station_id in back:
            if station_id in alerted:
                self.resolve(station_id, "offline")
        enroll.expiry_alerts(self, now)  # cert_expiring, 30 days ahead
        help_reply.send_queued(self, now)  # answers to help requests given with `fleet alerts`
        self.dead_letters.prune()  # the newest DEAD_LETTERS_KEPT stay
