"""``fleet console`` in its own process, as in production, for the tests and the benchmarks that
drive it from outside (a browser, an HTTP client), and what it has stored of the stations."""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from sandbox.mosquitto import MosquittoBroker
from sandbox.process import free_port

REPO = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def console_process(
    tmp_path: Path,
    broker: MosquittoBroker,
    db_url: str,
    users: dict[str, str],
    *options: str,
    password: str,
) -> Iterator[str]:
    """``fleet console`` in its own process (as in production) with ``users`` (name → role)
    made by ``fleet user add``, each with ``password``; yields its URL; it must exit cleanly
    when terminated."""
    secret = tmp_path / "user.password"
    secret.write_text(password)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for name, role in users.items():
        subprocess.run(
            [sys.executable, "-m", "fleet.cli", "user", "add", name, "--db", db_url]
            + ["--role", role, "--password-file", str(secret)],
            check=True,
            env=env,
            timeout=60,
            capture_output=True,
        )
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "fleet.cli", "console", "--broker", broker.address]
        + ["--http", f"127.0.0.1:{port}", "--db", db_url]
        + ["--password-file", str(broker.root / "console.secret"), *options],
        env=env,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            assert proc.poll() is None, "fleet console exited"
            assert time.monotonic() < deadline, "fleet console did not start"
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0


def stations_reporting(db: Path) -> int:
    """Stations whose health the console (on SQLite file ``db``) has stored."""
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            query = "SELECT count(*) FROM stations WHERE health IS NOT NULL AND health != '{}'"
            return int(conn.execute(query).fetchone()[0])
    except sqlite3.OperationalError:
        return 0
