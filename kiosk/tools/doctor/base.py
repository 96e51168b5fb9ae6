"""What every check of ``kiosk doctor`` shares: the row it returns, the options, running a
command and probing a port."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CJK_FAMILY = "WenQuanYi Micro Hei"
CERT_WARN_DAYS = 7
"""A station certificate this close to expiry means the automatic renewal (30 days ahead) failed."""
SYSTEM_CUPS = (
    "",
    "localhost",
    "localhost:631",
    "127.0.0.1",
    "127.0.0.1:631",
    "/run/cups/cups.sock",
)
"""How a queue on this machine's own cupsd (configured in ``Options.cups_dir``) is named."""
LOW_DISK_MIB = 500  # kiosk.shell.diskguard.DiskPolicy.low_mib: below it the station logs less


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class Options:
    font_paths: tuple[Path, ...] | None = None  # None: kiosk.fonts.KNOWN_PATHS
    cert_warn_days: int = CERT_WARN_DAYS
    cups_dir: Path = Path("/etc/cups")  # the system scheduler's configuration
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))


def _run(cmd: Sequence[str], env: dict[str, str] | None = None, timeout: float = 15.0) -> Any:
    try:
        return subprocess.run(
            list(cmd), capture_output=True, text=True, timeout=timeout, check=False, env=env
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        return subprocess.CompletedProcess(list(cmd), 127, "", str(err))


def _tcp(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2.0):
            return True
    except OSError:
        return False
