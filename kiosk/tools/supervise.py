"""Processes kept running the way systemd keeps them on a station, for ``make run``.

On a station systemd starts the kiosk, the agent and the console and starts them again when they
end (``Restart=`` in ``deploy/systemd/``). ``make run`` reads those same settings from the unit
files (:meth:`RestartPolicy.from_unit`), so a remote ``restart_ui`` (exit status 4), a crash or a
``kill -9`` is followed by a restart on a developer's machine exactly as in the field, and the
console shows a real outage and a real recovery.

What systemd gives for free and a plain parent process does not, this module does by hand:

- **the reason a process ended**, said on the terminal: the last lines it wrote to stderr and
  the warnings and errors its log file gained since it started (the cupsd message, the
  traceback), not only an exit status;
- **no process left behind**: every process started for the station, and everything those start
  (the kiosk's private cupsd, its speech worker, multiprocessing's resource tracker), carries
  one environment variable naming the run (:data:`RUN_MARK`); on stop, whatever still carries it
  is ended, as systemd ends a unit's whole control group. Processes left by an earlier run that
  was itself killed are found the same way and ended at the next start.

A process that keeps failing within seconds of starting (a configuration error) is not restarted
for ever on a developer's machine: after :data:`QUICK_FAILURES` such failures the station stops
and says why (on a station, systemd would go on; ``StartLimitIntervalSec=0``).
"""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

RUN_MARK = "KIOSK_STATION_RUN"
"""Environment variable inherited by every process of one ``make run``: ``{data dir}|{token}``."""

QUICK_S = 10.0  # a process that ends sooner than this after starting failed "at start"
QUICK_FAILURES = 4  # that many at-start failures in a row stop the station
LOG_LEVELS = (" WARNING ", " ERROR ", " CRITICAL ")


@dataclass(frozen=True)
class RestartPolicy:
    """The restart settings of a systemd service unit (systemd.service(5)), the ones we use."""

    restart: str = "no"  # no | always | on-failure | on-abnormal
    delay_s: float = 0.1  # RestartSec=
    prevent: frozenset[int] = frozenset()  # RestartPreventExitStatus=
    success: frozenset[int] = frozenset({0})  # 0 plus SuccessExitStatus=

    @classmethod
    def from_unit(cls, path: Path) -> RestartPolicy:
        """The policy of ``path``'s ``[Service]`` section; the defaults where it is silent."""
        values: dict[str, str] = {}
        section = ""
        for raw in path.read_text(encoding="utf-8").splitlines():
            line = raw.strip()
            if not line or line.startswith(("#", ";")):
                continue
            if line.startswith("["):
                section = line
                continue
            key, sep, value = line.partition("=")
            if sep and section == "[Service]":
                values[key.strip()] = value.strip()
        return cls(
            restart=values.get("Restart", "no"),
            delay_s=_seconds(values.get("RestartSec", "100ms")),
            prevent=frozenset(_statuses(values.get("RestartPreventExitStatus", ""))),
            success=frozenset({0, *_statuses(values.get("SuccessExitStatus", ""))}),
        )

    def restarts(self, returncode: int) -> bool:
        """Whether systemd would start the service again after it ended with ``returncode``
        (Popen's: negative for a signal)."""
        if returncode in self.prevent:
            return False
        if self.restart == "always":
            return True
        if self.restart == "on-failure":
            return returncode not in self.success
        if self.restart == "on-abnormal":
            return returncode < 0
        return False


def _seconds(value: str) -> float:
    value = value.strip()
    for suffix, factor in (("ms", 0.001), ("min", 60.0), ("s", 1.0)):
        if value.endswith(suffix):
            return float(value.removesuffix(suffix)) * factor
    return float(value)


def _statuses(value: str) -> Iterable[int]:
    return (int(word) for word in value.split() if word.isdigit())


def describe(returncode: int) -> str:
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-returncode).name}"
    return f"exited with {returncode}"


@dataclass
class Child:
    """One supervised process: how to start it, its restart policy, where it logs."""

    name: str
    argv: list[str]
    policy: RestartPolicy = field(default_factory=RestartPolicy)
    env: dict[str, str] | None = None
    log: Path | None = None  # its log file: what it said there is part of the reason it ended
    note: dict[int, str] = field(default_factory=dict)  # what an exit status means, said with it
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    restart_at: float | None = None
    quick_failures: int = 0
    starts: int = 0
    _log_offset: int = 0
    _stderr_tail: collections.deque[str] = field(
        default_factory=lambda: collections.deque(maxlen=40)
    )

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class Supervisor:
    """Starts children, restarts them by their policy, says why one ended, stops them all."""

    def __init__(self, mark: str, *, out: IO[str] | None = None) -> None:
        self.mark = mark
        self.out = out or sys.stdout
        self.children: list[Child] = []
        self.gave_up: str = ""  # why the station stopped on its own

    def say(self, text: str) -> None:
        print(f"station: {text}", file=self.out, flush=True)

    def start(self, child: Child) -> Child:
        if child not in self.children:
            self.children.append(child)
        env = dict(child.env if child.env is not None else os.environ)
        env[RUN_MARK] = self.mark
        child._log_offset = child.log.stat().st_size if child.log and child.log.exists() else 0
        child._stderr_tail.clear()
        child.proc = subprocess.Popen(
            child.argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,  # the terminal's Ctrl-C reaches us; we stop them in order
        )
        child.started = time.monotonic()
        child.restart_at = None
        child.starts += 1
        threading.Thread(
            target=self._relay, args=(child, child.proc), name=f"stderr-{child.name}", daemon=True
        ).start()
        return child

    def _relay(self, child: Child, proc: subprocess.Popen[bytes]) -> None:
        """The child's stderr to the terminal as it comes, its last lines kept for the reason."""
        assert proc.stderr is not None
        with proc.stderr:
            for raw in proc.stderr:
                line = raw.decode(errors="replace").rstrip()
                if line:
                    child._stderr_tail.append(line)
                    print(line, file=sys.stderr, flush=True)

    def reason(self, child: Child, lines: int = 8) -> list[str]:
        """What a child said before it ended: its stderr's last lines, else the warnings and
        errors (and tracebacks) its log file gained since it started."""
        said = list(child._stderr_tail)[-lines:]
        if said:
            return said
        if child.log is None or not child.log.exists():
            return []
        with child.log.open("rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(child._log_offset if child._log_offset <= size else 0)
            text = f.read().decode(errors="replace")
        picked: list[str] = []
        keep = False
        for line in text.splitlines():
            if line[:4].isdigit():  # a new record ("2026-12-05 07:42:08,600 LEVEL name: ...")
                keep = any(level in line for level in LOG_LEVELS)
            if keep:  # with the traceback lines that follow it
                picked.append(line)
        return picked[-lines:]

    def poll(self) -> None:
        """Note children that ended and restart them when their time has come."""
        now = time.monotonic()
        for child in self.children:
            proc = child.proc
            if proc is not None and proc.poll() is not None:
                child.proc = None
                self._ended(child, proc, now)
            if child.restart_at is not None and now >= child.restart_at and not self.gave_up:
                self.say(f"starting {child.name} again")
                self.start(child)

    def _ended(self, child: Child, proc: subprocess.Popen[bytes], now: float) -> None:
        code = int(proc.returncode)
        # let the relay thread take the last lines the child wrote
        time.sleep(0.2)
        meaning = child.note.get(code, "")
        self.say(f"{child.name} {describe(code)}" + (f" ({meaning})" if meaning else ""))
        for line in self.reason(child):
            print(f"    {line}", file=self.out, flush=True)
        quick = now - child.started < QUICK_S and code not in child.policy.success
        child.quick_failures = child.quick_failures + 1 if quick else 0
        if child.quick_failures >= QUICK_FAILURES:
            self.gave_up = (
                f"{child.name} failed {child.quick_failures} times within {QUICK_S:.0f} s of "
                "starting; stopping the station (the lines above say why)"
            )
            self.say(self.gave_up)
            return
        if child.policy.restarts(code):
            child.restart_at = now + child.policy.delay_s
            self.say(
                f"{child.name} will be started again in {child.policy.delay_s:g} s, as "
                "systemd does on a station"
            )
        else:
            self.say(f"{child.name} is not started again (as on a station)")

    def stop_all(
        self, timeout_s: float = 15.0, *, hurry: Callable[[], bool] = lambda: False
    ) -> None:
        """SIGTERM to each child, the last started first, waiting for each. What they started
        and left running is for :func:`sweep`, once everything of the run has stopped."""
        for child in reversed(self.children):
            child.restart_at = None
            proc = child.proc
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + timeout_s
            while proc.poll() is None and time.monotonic() < deadline and not hurry():
                time.sleep(0.1)
            if proc.poll() is None:
                self.say(f"{child.name} did not stop in time; killing it")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def marked_processes(match: Callable[[str], bool]) -> dict[int, str]:
    """pid -> command name of every process whose environment carries a matching RUN_MARK."""
    found: dict[int, str] = {}
    me = os.getpid()
    key = RUN_MARK.encode() + b"="
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            environ = (entry / "environ").read_bytes()
            name = (entry / "comm").read_text().strip()
        except OSError:
            continue
        for var in environ.split(b"\0"):
            if var.startswith(key) and match(var[len(key) :].decode(errors="replace")):
                found[int(entry.name)] = name
                break
    return found


def sweep(match: Callable[[str], bool], grace_s: float = 5.0) -> list[str]:
    """End every marked process: SIGTERM, then SIGKILL after ``grace_s``; their names."""
    found = marked_processes(match)
    for pid in found:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(_alive(pid) for pid in found):
        time.sleep(0.1)
    for pid in found:
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
    return [f"{name} ({pid})" for pid, name in found.items()]


def _alive(pid: int) -> bool:
    """Running and not a zombie (a zombie has ended; its parent has not asked yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"
