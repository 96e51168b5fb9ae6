"""Small helpers the simulators share: free loopback ports, stopping servers, running standalone."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import threading
from collections.abc import Callable
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
