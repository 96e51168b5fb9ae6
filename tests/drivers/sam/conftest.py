"""Fixtures for the SAM driver tests: a simulator on a real pty, a reader on it, an event log."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from drivers.sam.reader import SamReader
from drivers.sam.simulator import SamSimulator
from flows.models import DeviceEvent

E = TypeVar("E")


class EventLog:
    """The reader's sink: keeps every event, in order, and waits for the next of a kind."""

    def __init__(self) -> None:
        self.queue: queue.Queue[DeviceEvent] = queue.Queue()
        self.seen: list[DeviceEvent] = []

    def put(self, event: DeviceEvent) -> None:
        self.queue.put(event)

    def drain(self) -> list[DeviceEvent]:
        while True:
            try:
                self.seen.append(self.queue.get_nowait())
            except queue.Empty:
                return self.seen

    def wait_for(self, kind: type[E], timeout: float = 5.0) -> E:
        """The next event of ``kind`` (events before it are kept in ``seen``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                event = self.queue.get(timeout=0.02)
            except queue.Empty:
                continue
            self.seen.append(event)
            if isinstance(event, kind):
                return event
        raise AssertionError(f"no {kind.__name__} within {timeout}s; saw {self.kinds()}")

    def kinds(self) -> list[str]:
        return [type(e).__name__ for e in self.drain()]

    def count(self, kind: type) -> int:
        return sum(isinstance(e, kind) for e in self.drain())


def until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


@pytest.fixture
def wait_until() -> Callable[..., None]:
    return until


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SamSimulator]:
    s = SamSimulator(link_path=tmp_path / "usb-SAM_Reader-if00-port0")
    s.start()
    yield s
    s.stop()


@pytest.fixture
def events() -> EventLog:
    return EventLog()


@pytest.fixture
def make_reader(events: EventLog) -> Iterator[Callable[..., SamReader]]:
    """Readers with fast test timings, stopped at teardown."""
    started: list[SamReader] = []

    def make(port: str, **kw: object) -> SamReader:
        options: dict[str, object] = {"poll_s": 0.02, "io_timeout_s": 0.3, "max_backoff_s": 0.1}
        options.update(kw)
        r = SamReader(port, **options)  # type: ignore[arg-type]
        r.start(events.put)
        started.append(r)
        return r

    yield make
    for r in started:
        r.stop()


@pytest.fixture
def reader(sim: SamSimulator, make_reader: Callable[..., SamReader]) -> SamReader:
    assert sim.link_path is not None
    return make_reader(str(sim.link_path))
