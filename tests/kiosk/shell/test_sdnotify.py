"""The notify protocol against a real unix datagram socket, as systemd's own would receive it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiosk.shell import sdnotify
from kiosk.shell.sdnotify import Notifier


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)
    try:
        yield sock, str(path)
    finally:
        sock.close()


def test_ready_watchdog_status_reach_the_socket(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    notifier = Notifier(path)
    assert notifier.ready("home screen ready")
    assert sock.recv(4096) == b"READY=1\nSTATUS=home screen ready"
    assert notifier.watchdog()
    assert sock.recv(4096) == b"WATCHDOG=1"
    assert notifier.stopping()
    assert sock.recv(4096) == b"STOPPING=1"
    assert notifier.sent == 3
    notifier.close()


def test_abstract_namespace_address() -> None:
    name = f"kiosk-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(5)
    try:
        notifier = Notifier("@" + name)
        assert notifier.watchdog()
        assert sock.recv(100) == b"WATCHDOG=1"
        notifier.close()
    finally:
        sock.close()


def test_without_notify_socket_nothing_is_sent() -> None:
    notifier = Notifier(env={})
    assert not notifier.enabled
    assert notifier.ready() is False and notifier.watchdog() is False
    assert notifier.watchdog_usec() is None
    assert notifier.watchdog_period_s() == sdnotify.DEFAULT_PERIOD_S


def test_watchdog_period_is_half_the_timeout_and_only_for_this_pid() -> None:
    mine = Notifier(env={"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())})
    assert mine.watchdog_usec() == 30_000_000
    assert mine.watchdog_period_s() == 15.0
    other = Notifier(env={"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"})
    assert other.watchdog_usec() is None


def test_a_vanished_socket_is_survived_and_recovered(
    listener: tuple[socket.socket, str], caplog: pytest.LogCaptureFixture
) -> None:
    sock, path = listener
    notifier = Notifier(path)
    sock.close()
    os.unlink(path)
    assert notifier.watchdog() is False  # no exception
    assert notifier.watchdog() is False
    assert sum("notify" in r.getMessage() for r in caplog.records) == 1  # logged once
    again = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    again.bind(path)
    again.settimeout(5)
    try:
        assert notifier.watchdog() is True
        assert again.recv(100) == b"WATCHDOG=1"
    finally:
        notifier.close()
        again.close()


def test_kivy_shaped_tick_never_returns_false(listener: tuple[socket.socket, str]) -> None:
    """Clock.schedule_interval unschedules a callback that returns False: tick never does."""
    sock, path = listener
    sdnotify._default = Notifier(path)
    try:
        assert sdnotify.tick(0.5) is None
        assert sock.recv(100) == b"WATCHDOG=1"
        sock.close()
        os.unlink(path)
        assert sdnotify.tick(0.5) is None  # the send failed; still not False
    finally:
        sdnotify._default.close()
        sdnotify._default = None


def test_a_child_process_notifies_from_its_environment(
    listener: tuple[socket.socket, str],
) -> None:
    """The way systemd starts the kiosk: NOTIFY_SOCKET and WATCHDOG_USEC in the environment."""
    sock, path = listener
    code = (
        "import os\n"
        "os.environ['WATCHDOG_PID'] = str(os.getpid())\n"
        "from kiosk.shell import sdnotify\n"
        "print(sdnotify.watchdog_period_s())\n"
        "sdnotify.ready()\n"
        "sdnotify.tick()\n"
    )
    env = {**os.environ, "NOTIFY_SOCKET": path, "WATCHDOG_USEC": "4000000"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    assert out.strip() == "2.0"
    assert sock.recv(100) == b"READY=1"
    assert sock.recv(100) == b"WATCHDOG=1"
