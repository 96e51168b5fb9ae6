"""The console's edge: every station message is read into the protocol's models before anything
acts on it, and one that does not fit is set aside, never retried.

A station's message is checked in this order, each step cheap before the next: the topic (a site
and station name as the protocol spells them, a kind the protocol has), the size
(:data:`~fleet.protocol.models.MAX_PAYLOAD_BYTES`), the JSON (orjson: strict UTF-8, no NaN, at
most 1,024 levels deep) and the model (:mod:`fleet.protocol.models`, strict: a string is not a
number, a number out of range is out). Events, most of the stream, are parsed and checked in one
pass by pydantic straight from the bytes; only those the console acts on become dicts.

What fails becomes a :class:`Rejected`: the station, the topic, the size, a reason code from
:data:`REASONS` and a short, readable explanation, with an excerpt of at most
:data:`EXCERPT_CHARS` characters (never the payload itself). The ingest stores it as a dead
letter (:class:`DeadLetters`), counts it, raises one alert on the station that sent it, and
acknowledges the message like any other: a broken station costs the fleet nothing but a row.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable
from typing import Any, NamedTuple, cast

import orjson
from pydantic import ValidationError
from sqlalchemy import Table, delete, insert, select

from fleet.console.followups import BAD as BAD_RATING
from fleet.console.store import DeadLetter, Store
from fleet.protocol.models import (
    EVENTS,
    MAX_PACKET_BYTES,
    MAX_PAYLOAD_BYTES,
    SITE_PATTERN,
    STATION_PATTERN,
    Event,
    Message,
    station_model,
)
from fleet.protocol.topics import ROOT

log = logging.getLogger("fleet.console.ingest")

REASONS = (
    "unknown_topic",  # not a kind the protocol has (an unknown event kind, a made-up level)
    "bad_name",  # the site or station level is not a name the protocol allows
    "too_large",  # over MAX_PAYLOAD_BYTES
    "not_json",  # invalid UTF-8, not JSON, nested too deeply, not an object
    "invalid",  # JSON that does not fit the message's model
    "site_mismatch",  # a station publishing under a site it is not bound to
    "store_failed",  # the database refused this one message (the others went in)
)
"""Why a message was set aside: the only values of the ``reason`` label of the metric."""

EXCERPT_CHARS = 120
DEAD_LETTERS_KEPT = 10_000  # the newest; the sweep deletes older ones
ALERT_KIND = "malformed_messages"  # one per station, counted, until acknowledged

_SITE = re.compile(SITE_PATTERN)
_STATION = re.compile(STATION_PATTERN)
_PREFIX = ROOT + "/"


class EventIn(NamedTuple):
    """One event, checked: ``kind`` is the topic after ``evt/``; ``text`` its JSON as sent;
    ``payload`` only for the kinds the console acts on (the others are stored as text)."""

    site: str
    station: str
    kind: str
    event_id: str
    ts: float
    backfill: bool
    text: str
    payload: dict[str, Any] | None


class Item(NamedTuple):
    """Any other station message, checked: ``kind`` is the topic after the station."""

    site: str
    station: str
    kind: str
    payload: dict[str, Any]


class Rejected(NamedTuple):
    site: str
    station: str
    topic: str
    kind: str  # the message's kind as a bounded label: "health", "evt", "cmd", "other"
    size: int
    reason: str  # one of REASONS
    detail: str
    excerpt: str


class Parsed(NamedTuple):
    events: list[EventIn]  # most of the stream, kept apart: the fewer steps, the faster
    others: list[Item]
    rejected: list[Rejected]


def label(rest: str) -> str:
    """A message kind as a metric label, from a closed set whatever the topic says."""
    head, _, tail = rest.partition("/")
    if head == "evt":
        return f"evt/{tail}" if tail in EVENTS else "evt/other"
    if head in ("state", "birth", "health", "reported"):
        return head
    return "cmd_result" if head == "cmd" else "other"


# a run of digits as long as an ID or card number: a broken station must not leave one in the
# console's database by way of an excerpt (names cannot be told from other text; the excerpt is
# short and kept only with the newest dead letters)
_NUMBER = re.compile(r"\d{15,}[\dXx]?")


def excerpt(data: bytes) -> str:
    """The start of a payload as text, at most :data:`EXCERPT_CHARS` characters, long numbers
    masked."""
    text = data[: EXCERPT_CHARS * 2].decode("utf-8", "replace")[:EXCERPT_CHARS]
    return _NUMBER.sub("#" * 6, text)


def _why(err: ValidationError) -> str:
    """The first few problems in words, with where: ``session: Input should be …``."""
    parts = []
    for problem in err.errors(include_url=False, include_input=False)[:3]:
        where = ".".join(str(p) for p in problem["loc"]) or "message"
        parts.append(f"{where}: {problem['msg']}")
    more = err.error_count() - len(parts)
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


_TOPICS: dict[str, tuple[str, str, str, type[Message]]] = {}
"""Topics checked already (site, station, kind below the station, model): a station sends on a
handful, so its checks run once. Bounded: emptied when it holds :data:`_TOPICS_KEPT`."""
_TOPICS_KEPT = 100_000


def parse(messages: Iterable[tuple[str, bytes]], followed: frozenset[str]) -> Parsed:
    """Check every message; those on topics not a station's (the console's own) are skipped.
    ``followed``: the event kinds whose payload the console needs as a dict."""
    parsed = Parsed([], [], [])
    topics = _TOPICS
    for topic, data in messages:
        known = topics.get(topic)
        if known is None:
            if not topic.startswith(_PREFIX):
                continue
            parts = topic.split("/", 4)
            if len(parts) < 5 or parts[2] == "console":
                continue
            found = check_topic(parts[2], parts[3], parts[4])
            if isinstance(found, tuple):
                parsed.rejected.append(_rejected(topic, parts, data, found))
                continue
            known = (parts[2], parts[3], parts[4], found)
            if len(topics) >= _TOPICS_KEPT:
                topics.clear()
            topics[topic] = known
        site, station, rest, model = known
        checked = check_payload(site, station, rest, model, data, followed)
        if isinstance(checked, EventIn):
            parsed.events.append(checked)
        elif isinstance(checked, Item):
            parsed.others.append(checked)
        else:
            parsed.rejected.append(_rejected(topic, topic.split("/", 4), data, checked))
    return parsed


def _rejected(topic: str, parts: list[str], data: bytes, why: tuple[str, str]) -> Rejected:
    reason, detail = why
    return Rejected(
        parts[2][:64],
        parts[3][:64],
        topic[:255],
        label(parts[4]),
        len(data),
        reason,
        detail[:255],
        excerpt(data),
    )


def oversized(topic: str, size: int) -> Rejected | None:
    """A message whose packet was over the console's Maximum Packet Size, its payload unread."""
    parts = topic.split("/", 4)
    if not topic.startswith(_PREFIX) or len(parts) < 5 or parts[2] == "console":
        return None
    detail = f"a packet of {size} bytes > {MAX_PACKET_BYTES}"
    return Rejected(
        parts[2][:64], parts[3][:64], topic[:255], label(parts[4]), size, "too_large", detail, ""
    )


def check(
    site: str, station: str, rest: str, data: bytes, followed: frozenset[str]
) -> EventIn | Item | tuple[str, str]:
    """One message on ``kiosk/v1/{site}/{station}/{rest}``: checked (an :class:`EventIn` or an
    :class:`Item`, both tuples too), or (reason, detail)."""
    model = check_topic(site, station, rest)
    if isinstance(model, tuple):
        return model
    return check_payload(site, station, rest, model, data, followed)


def check_topic(site: str, station: str, rest: str) -> type[Message] | tuple[str, str]:
    """The model of what is sent on this topic, or (reason, detail)."""
    if not _SITE.match(site) or not _STATION.match(station):
        return "bad_name", "the site or station in the topic is not a valid name"
    model = station_model(rest)
    if model is None:
        return "unknown_topic", f"no station message is sent on {rest[:64]!r}"
    return model


def check_payload(
    site: str,
    station: str,
    rest: str,
    model: type[Message],
    data: bytes,
    followed: frozenset[str],
) -> EventIn | Item | tuple[str, str]:
    """A payload on a topic :func:`check_topic` took, read into ``model``."""
    if len(data) > MAX_PAYLOAD_BYTES:
        return "too_large", f"{len(data)} bytes > {MAX_PAYLOAD_BYTES}"
    try:
        if issubclass(model, Event):
            # the model's validator itself: model_validate_json's wrapper is a tenth of the cost
            event = model.__pydantic_validator__.validate_json(data, strict=True)
            if event.station != station:
                return "invalid", "station: differs from the topic's"
            kind = rest[4:]
            # the console acts on these: help, alerts, CSRs, and only the bad ratings (most are
            # good ones, stored as text without a dict or a RETURNING insert)
            acted_on = kind in followed and (kind != "rating" or event.rating <= BAD_RATING)
            return EventIn(
                site,
                station,
                kind,
                event.event_id,
                event.ts,
                event.backfill,
                data.decode(),
                orjson.loads(data) if acted_on else None,
            )
        model.model_validate_json(data, strict=True)  # JSON's rules: an enum by its value
        payload = orjson.loads(data)
    except ValidationError as err:
        json_error = any(e["type"].startswith("json") for e in err.errors(include_url=False))
        return ("not_json" if json_error else "invalid"), _why(err)
    except ValueError as err:  # orjson.JSONDecodeError, UnicodeDecodeError
        return "not_json", (str(err).splitlines() or [type(err).__name__])[0]
    return Item(site, station, rest, payload)


class DeadLetters:
    """The bounded table of messages set aside."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def add(self, rows: list[tuple[int | None, Rejected]]) -> None:
        """Store these (station id, or None when no station could be named), in one statement."""
        if not rows:
            return
        now = time.time()
        values = [
            {
                "station_id": station_id,
                "site": r.site,
                "station": r.station,
                "topic": r.topic,
                "kind": r.kind,
                "size": r.size,
                "reason": f"{r.reason}: {r.detail}"[:255],
                "excerpt": r.excerpt,
                "received_at": now,
            }
            for station_id, r in rows
        ]
        with self.store.session() as db:
            db.execute(insert(cast(Table, DeadLetter.__table__)), values)
        for _, r in rows[:5]:
            log.warning(
                "set aside a message on %s (%d bytes): %s: %s", r.topic, r.size, r.reason, r.detail
            )
        if len(rows) > 5:
            log.warning("... and %d more messages set aside", len(rows) - 5)

    def prune(self, keep: int = DEAD_LETTERS_KEPT) -> int:
        """Delete all but the newest ``keep``; how many went."""
        with self.store.session() as db:
            cutoff = db.scalar(
                select(DeadLetter.id).order_by(DeadLetter.id.desc()).offset(keep).limit(1)
            )
            if cutoff is None:
                return 0
            result = db.execute(delete(DeadLetter).where(DeadLetter.id <= cutoff))
            return int(getattr(result, "rowcount", 0) or 0)

    def recent(self, station_id: int, limit: int = 20) -> list[DeadLetter]:
        with self.store.session() as db:
            rows = db.scalars(
                select(DeadLetter)
                .where(DeadLetter.station_id == station_id)
                .order_by(DeadLetter.id.desc())
                .limit(limit)
            ).all()
            db.expunge_all()
            return list(rows)
