"""Small helpers the simulators share: free ports, stopping servers, ptys, running standalone."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import threading
import tty
from collections.abc import Callable
from pathlib import Path
from typing import Any


def free_port(host: str = "127.0.0.1") -> int:
    """A port free on ``host`` right now (tests and ``make run`` never use fixed ports)."""
    with socket.socket() as s:
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
