"""The console's batch ingest (fleet.console.ingest_batch through Ingest.handle_batch) on SQLite
and on
PostgreSQL: a batch is de-duplicated against itself and the database, and only events stored for
the first time are acted on, so a redelivered help request raises nothing twice."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from fleet.console.ingest import Ingest
from fleet.console.store import Alert, StationEvent, Store
from fleet.mqtt.client import BrokerAccess
from tests.fleet import messages

TOPIC = "kiosk/v1/zibo-gx/{station}/evt/{kind}"


def event(station: str, kind: str, event_id: str, **body: object) -> tuple[str, bytes]:
    return TOPIC.format(station=station, kind=kind), messages.event(kind, station, event_id, **body)


@pytest.fixture
def ingest(db_url: str) -> Iterator[Ingest]:
    store = Store(db_url)
    store.migrate()
    console = Ingest(store, BrokerAccess("127.0.0.1", 1, "unused"))  # never started: no broker
    yield console
    store.close()


def counts(ingest: Ingest) -> tuple[int, list[tuple[str, int, bool]]]:
    with ingest.store.session() as db:
        events = db.scalar(select(func.count(StationEvent.id))) or 0
        alerts = [
            (a.kind, a.count, a.active_key is not None)
            for a in db.scalars(select(Alert).order_by(Alert.id))
        ]
    return events, alerts


def duplicates(ingest: Ingest) -> float:
    return ingest.metrics.duplicates._value.get()


def test_events_are_stored_once_and_acted_on_once(ingest: Ingest) -> None:
    help_1 = event("st-1", "help", "h-1", screen="choose")
    sale = event("st-1", "transaction", "t-1", service="queue_ticket", outcome="completed")
    ingest.handle_batch([help_1, sale, help_1])  # the same event twice in one batch
    assert counts(ingest) == (2, [("help_request", 1, True)])
    assert duplicates(ingest) == 1

    ingest.handle_batch([sale, help_1])  # redelivered (the ack was lost): nothing new
    assert counts(ingest) == (2, [("help_request", 1, True)])  # not counted as a second call
    assert duplicates(ingest) == 3

    help_2 = event("st-1", "help", "h-2", screen="identify")
    other = event("st-2", "help", "h-1", screen="choose")  # the same id from another station
    ingest.handle_batch([help_2, other])
    assert counts(ingest) == (4, [("help_request", 2, True), ("help_request", 1, True)])

    # the first station's alert is acknowledged (resolved), then its events come again
    ingest.resolve(ingest.station_id("zibo-gx", "st-1"), "help_request")
    ingest.handle_batch([help_1, help_2])  # redelivered after the acknowledgement
    events, alerts = counts(ingest)
    assert events == 4 and alerts == [("help_request", 2, False), ("help_request", 1, True)]
