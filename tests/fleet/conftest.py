"""The fleet tests' shared rig: a private PostgreSQL for the session, each test's database on
SQLite and on PostgreSQL, and a private broker. (The scan of every payload stations send is the
whole suite's: tests/payload_scan.py.)
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.mosquitto import MosquittoBroker
from sandbox.postgres import PostgresCluster

# --- the console's suites run on both databases, against a private broker -----------------------


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """One private PostgreSQL for the session; each test gets a database of its own."""
    cluster = PostgresCluster()
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'console.sqlite3'}"
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    return cluster.create_database(f"t{time.monotonic_ns()}")


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    b = MosquittoBroker(tmp_path / "broker")
    b.start()
    yield b
    b.stop()
