"""systemd's notify protocol, the part the kiosk needs: READY, WATCHDOG, STATUS, STOPPING.

A unit with ``Type=notify`` and ``WatchdogSec=`` gives its process ``NOTIFY_SOCKET`` (a unix
datagram socket; a leading ``@`` means the abstract namespace) and ``WATCHDOG_USEC``. The process
sends ``READY=1`` once it serves, then ``WATCHDOG=1`` more often than every ``WATCHDOG_USEC``;
if the pings stop, systemd kills the process (SIGABRT) and ``Restart=`` starts it again.

The pings must come from the loop whose freezing they are meant to detect: in the kiosk app from
the Kivy clock (a frozen UI stops them), in the agent from its health loop.

Without ``NOTIFY_SOCKET`` (a terminal, a test, ``make run``) every call does nothing and returns
False. A send that fails is logged once and never raised: the watchdog is a guard, not a reason
to crash.

Why not the ``sdnotify`` or ``systemd-python`` packages: the protocol is one ``sendto`` of a few
bytes; ``sdnotify`` swallows every error silently and ignores ``WATCHDOG_PID``, and
``systemd-python`` must be compiled against libsystemd. This module has no dependency.
"""

from __future__ import annotations

import logging
import os
import socket
import threading

log = logging.getLogger("kiosk.shell.sdnotify")

DEFAULT_PERIOD_S = 5.0
"""How often to ping when systemd set no watchdog (the pings then go nowhere)."""


class Notifier:
    """Sends notifications to ``address`` (default: ``$NOTIFY_SOCKET``)."""

    def __init__(self, address: str | None = None, *, env: dict[str, str] | None = None) -> None:
        self._env = dict(os.environ if env is None else env)
        self.address = self._env.get("NOTIFY_SOCKET", "") if address is None else address
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._failed = False
        self.sent = 0

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def watchdog_usec(self) -> int | None:
        """The watchdog timeout systemd set for this process, or None (no watchdog)."""
        usec = self._env.get("WATCHDOG_USEC", "")
        pid = self._env.get("WATCHDOG_PID", "")
        if not usec.isdigit() or int(usec) == 0:
            return None
        if pid and pid != str(os.getpid()):
            return None  # meant for another process (we were started by the main process)
        return int(usec)

    def watchdog_period_s(self) -> float:
        """How often to call :meth:`watchdog`: half the timeout, as sd_watchdog_enabled(3) says."""
        usec = self.watchdog_usec()
        return DEFAULT_PERIOD_S if usec is None else max(usec / 2_000_000, 0.05)

    def notify(self, *fields: str) -> bool:
        """Send ``KEY=VALUE`` fields in one datagram; True if it left."""
        if not self.enabled:
            return False
        data = "\n".join(fields).encode()
        address = self.address
        if address.startswith("@"):
            address = "\0" + address[1:]
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = socket.socket(
                        socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
                    )
                self._sock.sendto(data, address)
            except OSError as err:
                if not self._failed:  # once: a watchdog ping comes every few seconds
                    log.error("systemd notify to %s failed: %s", self.address, err)
                self._failed = True
                return False
            if self._failed:
                log.info("systemd notify to %s works again", self.address)
                self._failed = False
            self.sent += 1
            return True

    def ready(self, status: str = "") -> bool:
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text}")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None


_default: Notifier | None = None


def default() -> Notifier:
    """The process's notifier, made from the environment at first use."""
    global _default
    if _default is None:
        _default = Notifier()
    return _default


def ready(status: str = "") -> bool:
    return default().ready(status)


def watchdog() -> bool:
    return default().watchdog()


def tick(_dt: object = None) -> None:
    """``WATCHDOG=1``, shaped for ``Clock.schedule_interval``: it returns None, never False.

    (A Kivy interval callback that returns False is unscheduled; a failed ping must not end the
    pinging, or systemd would kill a healthy UI.)
    """
    default().watchdog()


def watchdog_period_s() -> float:
    return default().watchdog_period_s()


def stopping() -> bool:
    return default().stopping()
