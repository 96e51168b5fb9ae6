"""The supervisor of `make run` says why a process ended, restarts by policy, and gives up on a
process that fails at every start. Children are real processes (small Python programs)."""

from __future__ import annotations

import io
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from kiosk.tools.supervise import (
    QUICK_FAILURES,
    RUN_MARK,
    Child,
    RestartPolicy,
    Supervisor,
    marked_processes,
    sweep,
)


def run_until(supervisor: Supervisor, cond: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        supervisor.poll()
        time.sleep(0.05)


def program(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_the_reason_is_what_the_process_said_on_stderr() -> None:
    out = io.StringIO()
    supervisor = Supervisor(f"test|{secrets.token_hex(4)}", out=out)
    child = supervisor.start(
        Child(
            "kiosk",
            program(
                "import sys; print('kiosk: cupsd refuses its configuration (cupsd -t): Missing "
                "value for Printcap on line 12', file=sys.stderr); sys.exit(1)"
            ),
            note={1: "an error it could name"},
        )
    )
    run_until(supervisor, lambda: child.proc is None)
    text = out.getvalue()
    assert "station: kiosk exited with 1 (an error it could name)" in text
    assert (
        "    kiosk: cupsd refuses its configuration (cupsd -t): Missing value for Printcap" in text
    )
    assert "kiosk is not started again (as on a station)" in text  # Restart=no


def test_the_reason_is_taken_from_the_log_when_stderr_is_silent(tmp_path: Path) -> None:
    """Only what the log gained in this run, warnings and errors with their tracebacks."""
    log = tmp_path / "agent.log"
    log.write_text("2026-12-04 10:00:00,000 ERROR old: an error of yesterday\n")
    code = (
        "import logging, sys\n"
        f"logging.basicConfig(filename={str(log)!r}, format='%(asctime)s %(levelname)s "
        "%(name)s: %(message)s', level=logging.INFO)\n"
        "logging.getLogger('kiosk.agent').info('connected')\n"
        "try:\n    {}['journal']\n"
        "except KeyError:\n    logging.getLogger('kiosk.agent').exception('the journal is gone')\n"
        "sys.exit(70)\n"
    )
    out = io.StringIO()
    supervisor = Supervisor(f"test|{secrets.token_hex(4)}", out=out)
    child = supervisor.start(Child("agent", program(code), log=log))
    run_until(supervisor, lambda: child.proc is None)
    text = out.getvalue()
    assert "station: agent exited with 70" in text
    assert "ERROR kiosk.agent: the journal is gone" in text
    assert "    KeyError: 'journal'" in text  # the traceback's last line
    assert "yesterday" not in text and "connected" not in text


def test_restarts_follow_the_policy_and_a_process_failing_at_every_start_stops_it() -> None:
    out = io.StringIO()
    supervisor = Supervisor(f"test|{secrets.token_hex(4)}", out=out)
    child = supervisor.start(
        Child("agent", program("raise SystemExit(1)"), RestartPolicy("always", delay_s=0.05))
    )
    run_until(supervisor, lambda: bool(supervisor.gave_up))
    assert child.starts == QUICK_FAILURES
    text = out.getvalue()
    assert text.count("agent will be started again in 0.05 s") == QUICK_FAILURES - 1
    assert f"agent failed {QUICK_FAILURES} times within 10 s of starting" in text


def test_a_killed_child_is_started_again_and_stop_all_ends_it() -> None:
    supervisor = Supervisor(f"test|{secrets.token_hex(4)}", out=io.StringIO())
    child = supervisor.start(
        Child("agent", program("import time; time.sleep(60)"), RestartPolicy("always", 0.1))
    )
    first = child.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    run_until(supervisor, lambda: child.pid not in (None, first))
    assert child.running()
    supervisor.stop_all()
    assert not child.running()


def test_the_sweep_ends_what_children_left_behind() -> None:
    """A grandchild in a session of its own (as the kiosk's cupsd) outlives its parent; the
    mark it inherited finds it."""
    mark = f"test|{secrets.token_hex(4)}"
    env = {**os.environ, RUN_MARK: mark}
    orphan = subprocess.Popen(
        program("import time; time.sleep(60)"), env=env, start_new_session=True
    )
    try:
        assert orphan.pid in marked_processes(lambda value: value == mark)
        left = sweep(lambda value: value == mark)
        assert len(left) == 1 and left[0].endswith(f"({orphan.pid})")
        orphan.wait(timeout=10)
        assert orphan.returncode == -signal.SIGTERM
        assert marked_processes(lambda value: value == mark) == {}
    finally:
        if orphan.poll() is None:
            orphan.kill()
            orphan.wait()
