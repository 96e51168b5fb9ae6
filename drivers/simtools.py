"""Small helpers the simulators share: free ports, stopping servers, ptys, running standalone."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import queue
import re
import secrets
import select
import signal
import socket
import threading
import time
import tty
from collections.abc import Callable
from pathlib import Path
from typing import Any

EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def free_port(host: str = "127.0.0.1") -> int:
    """A port free on ``host`` right now (tests and ``make run`` never use fixed ports).

    Chosen below the kernel's ephemeral range: every outgoing connection, of any process, takes
    its source port from that range, so a port picked there (as binding to port 0 does) could
    be taken between this check and the server's own bind. That happened: a console started by
    a test failed with "address already in use" on a port this function had just returned.
    """
    try:
        low = int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768  # Linux's default
    rng = secrets.SystemRandom()
    for _ in range(100):
        port = rng.randrange(max(1024, low - 12000), max(1025, low))
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue  # in use: another
            return port
    with socket.socket() as s:  # a crowded machine: the old way
        s.bind((host, 0))
        return int(s.getsockname()[1])


def close_server(server: socket.socket | None) -> None:
    """Close a listening socket and wake the thread blocked in its ``accept()``."""
    if server is None:
        return
    with contextlib.suppress(OSError):
        server.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        server.close()


class OutputNumbers:
    """Numbers for a simulator's output files that never repeat in the folder, across runs.

    ``job-0001.pdf``, ``receipt-0001.txt``: the next number is one past the highest already in
    ``folder``, so a station started again (``make run``) adds to what the last run printed
    instead of writing over it. Files of other runs, removed or not, are never touched.
    """

    def __init__(self, folder: Path | None, prefix: str) -> None:
        self._pattern = re.compile(rf"{re.escape(prefix)}-(\d+)\.")
        self._lock = threading.Lock()
        self._last = 0
        if folder is not None and folder.is_dir():
            found = (self._pattern.match(p.name) for p in folder.iterdir())
            self._last = max((int(m[1]) for m in found if m), default=0)

    def next(self) -> int:
        with self._lock:
            self._last += 1
            return self._last

    def number_of(self, path: Path) -> int:
        """The number in an output file's name (for sorting: 10000 comes after 9999)."""
        m = self._pattern.match(path.name)
        return int(m[1]) if m else 0


def run_until_signal(ready: dict[str, Any], stop: Callable[[], None]) -> int:
    """For ``python -m drivers.…``: print one JSON line when ready, run until SIGTERM/SIGINT."""
    print(json.dumps(ready), flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    stop()
    return 0


def open_pty(link_path: Path | None) -> tuple[int, int, str]:
    """A raw pseudo-terminal, its master non-blocking: (master, slave, device path). The slave
    stays open so the pty lives on while a driver opens and closes the device. ``link_path``,
    if given, is pointed at the device atomically (a stable name such as /dev/kiosk-thermal)."""
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    flags = fcntl.fcntl(master, fcntl.F_GETFL)
    fcntl.fcntl(master, fcntl.F_SETFL, flags | os.O_NONBLOCK)
    device = os.ttyname(slave)
    if link_path is not None:
        tmp = link_path.with_name(link_path.name + ".new")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(device)
        tmp.replace(link_path)
    return master, slave, device


def close_pty(master: int, slave: int, link_path: Path | None) -> None:
    """Unplug: close both ends (a driver reading the device sees a hangup), drop the link."""
    for fd in (master, slave):
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)
    if link_path is not None:
        with contextlib.suppress(FileNotFoundError):
            link_path.unlink()


PTY_WRITE_DEADLINE_S = 1.0


class PtyPlug:
    """Unplug and plug in again a device simulated on a pty. The simulator's serving thread owns
    the pty: these calls queue a request on ``_requests`` and wait until that thread has done it;
    the simulator sets ``_requests`` and keeps ``_master`` (-1 while unplugged)."""

    _requests: queue.Queue[tuple[str, threading.Event]]
    _master: int

    def unplug(self) -> None:
        """The cable is pulled: the pty is closed (the driver's port errors)."""
        self._request("unplug")

    def replug(self) -> None:
        """The device comes back, on a new pty; ``link_path`` follows it."""
        self._request("replug")

    @property
    def plugged(self) -> bool:
        return self._master >= 0

    def write_pty(self, data: bytes, deadline_s: float = PTY_WRITE_DEADLINE_S) -> None:
        """Write to the pty as a device answers on its line: what the other end does not take
        within ``deadline_s`` is lost (a stalled reader must not stall the simulator)."""
        deadline = time.monotonic() + deadline_s
        view = memoryview(data)
        while view and self._master >= 0 and time.monotonic() < deadline:
            try:
                written = os.write(self._master, view)
            except BlockingIOError:
                select.select([], [self._master], [], 0.05)
                continue
            except OSError:
                return
            view = view[written:]

    def _request(self, what: str) -> None:
        done = threading.Event()
        self._requests.put((what, done))
        if not done.wait(timeout=3):
            raise TimeoutError(f"the simulator did not {what} in time")
