"""The composition root: from a configuration to a running station (runtime, devices, app)."""

from __future__ import annotations

import ctypes
import logging
import logging.handlers
import os
import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flows.catalog import Catalog
from flows.errors import ConfigError
from flows.tokens import Signer
from kiosk import version as app_version
from kiosk.config import Config, keep_escpos_cache, state_dir_problem
from kiosk.fonts import find_cjk_font
from kiosk.i18n import Translator
from kiosk.shell.catalog_watch import CatalogWatch, active_catalog, store_dir
from kiosk.shell.diskguard import DiskGuard
from kiosk.shell.jack import JackWatch
from kiosk.shell.maintenance import Desk, PinGuard
from kiosk.shell.runtime import Intent, Runtime
from statedir.journal import Journal

if TYPE_CHECKING:
    from kiosk.shell.call_peer import CallMedia


def syslog_priority(levelno: int) -> int:
    """The syslog priority of a logging level (sd-daemon(3)): 7 debug ... 2 critical."""
    for floor, priority in (
        (logging.CRITICAL, 2),
        (logging.ERROR, 3),
        (logging.WARNING, 4),
        (logging.INFO, 6),
    ):
        if levelno >= floor:
            return priority
    return 7


class JournalFormatter(logging.Formatter):
    """Lines for journald on stderr, each with its ``<N>`` priority prefix (sd-daemon(3)), so
    ``journalctl -p warning`` finds warnings; journald adds the time. Every line of a
    traceback carries the prefix, as journald stores each line as an entry of its own."""

    def __init__(self) -> None:
        super().__init__("%(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{syslog_priority(record.levelno)}>"
        return "\n".join(prefix + line for line in super().format(record).splitlines())


def setup_logging(state_dir: Path, *, level: int = logging.INFO, name: str = "kiosk") -> Path:
    """Log to ``logs/{name}.log`` in the state directory, rotated (and never personal data).

    Nothing below ``level`` is written anywhere: without ``--debug`` the wire loggers' polling
    lines do not push the history out of the rotation. Each process has a file of its own
    (``kiosk.log`` for the UI, ``agent.log`` for the agent): two processes rotating one file
    lose lines. Under systemd (``JOURNAL_STREAM`` set) the journal gets every line too, with its
    priority."""
    log_dir = state_dir / "logs"
    path = log_dir / f"{name}.log"
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=5_000_000, backupCount=5, encoding="utf-8"
        )
    except OSError as err:  # said on the terminal in words, never as a traceback
        raise ConfigError(
            f"[state] dir {state_dir}: {path} cannot be written: {err.strerror or err}"
        ) from err
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    if os.environ.get("JOURNAL_STREAM"):  # started by systemd: the journal gets it too
        journal = logging.StreamHandler(sys.stderr)
        journal.setFormatter(JournalFormatter())
        root.addHandler(journal)
    root.setLevel(level)
    return path


def preflight(config: Config) -> Catalog:
    """What ``kiosk run`` needs before it opens a window: a writable state directory and a
    catalog that loads. Raises ConfigError or CatalogError with the path and the reason."""
    why = state_dir_problem(config.state_dir)
    if why:
        raise ConfigError(f"[state] dir {why}; the kiosk keeps its journal there")
    return active_catalog(config)


@dataclass
class Station:
    config: Config
    runtime: Runtime
    simulate: Callable[[str], None] | None
    font: Path

    def build_app(self) -> Any:
        from kiosk.ui.app import build_app

        return build_app(self.runtime, self.config, font=self.font, simulate=self.simulate)


MMAP_THRESHOLD = 128 * 1024  # glibc's own default, made fixed


def fix_malloc_threshold() -> bool:
    """Keep glibc's mmap threshold fixed, so large buffers go back to the system when freed.

    glibc raises the threshold to the size of each large block freed (up to 32 MiB). The preview
    of a certificate is a page bitmap of several MiB: after the first ones, such bitmaps come
    from the heap, and the heap keeps their high-water mark. The UI's resident memory then stepped
    up by 7-8 MiB at a random session and stayed there (the soak in docs/reliability.md). A fixed
    threshold (``mallopt(M_MMAP_THRESHOLD)``, as ``MALLOC_MMAP_THRESHOLD_`` would set it) keeps
    them mapped and unmapped each time. False where the C library has no ``mallopt`` (musl)."""
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_mmap_threshold = -3  # <malloc.h>
    return bool(mallopt(m_mmap_threshold, MMAP_THRESHOLD))


def create_station(config: Config, *, strict_translations: bool = False) -> Station:
    """Everything but the window: call ``kiosk.ui.app.configure_kivy`` before ``build_app``."""
    keep_escpos_cache(config.state_dir)  # kiosk run did at load_config; a caller may not have
    from kiosk.shell.devices import build_devices

    fix_malloc_threshold()

    state_dir = config.state_dir
    state_dir.mkdir(parents=True, exist_ok=True)
    catalog = active_catalog(config)
    font = find_cjk_font()
    journal = Journal(state_dir / "journal.sqlite3")
    devices, simulate = build_devices(config, state_dir)
    runtime = Runtime(
        catalog=catalog,
        devices=devices,
        journal=journal,
        translator=Translator(strict=strict_translations),
        font=font,
        secret=load_secret(state_dir / "identity.key"),
        signer=Signer.load_or_create(state_dir / "document-signing.key"),
        lang=config.station.lang,
        elder=config.station.elder_default,
        volume=config.devices.speech_volume,
        quiet_volume=config.devices.speech_quiet_volume,
        quiet_hours=config.devices.speech_quiet_hours,
        attract_every_s=config.ui.attract_every_s,
        card_left_alert_s=config.station.card_left_alert_s,
    )
    runtime.remote.catalog_loader = lambda: active_catalog(config)
    runtime.diskguard = DiskGuard(state_dir, journal)
    runtime.desk = Desk(
        guard=PinGuard(config.maintenance.pin_hash, state_dir / "maintenance-pin.json"),
        state_dir=state_dir,
        app_version=app_version(),
        post=runtime.queue.put,
    )
    if config.devices.headphones:
        runtime.jack = JackWatch(
            config.devices.headphones, lambda plugged: runtime.post(Intent("headphones", plugged))
        )
    runtime.catalog_watch = CatalogWatch(store_dir(state_dir), runtime.offer_catalog, catalog)
    runtime.calls.audio = call_audio(config)
    return Station(config=config, runtime=runtime, simulate=simulate, font=font)


def call_audio(config: Config) -> CallMedia | None:
    """The call's sound devices, camera and ICE servers (``[call]``); None without a
    microphone."""
    from kiosk.shell.call_peer import CallMedia, IceServer

    c = config.call
    if not c.microphone:
        return None
    servers = tuple(
        IceServer((url,), c.turn_username or None, c.turn_password or None)
        if url.startswith("turn")
        else IceServer((url,))
        for url in c.ice_servers
    )
    return CallMedia(
        source=c.microphone,
        sink=c.speaker,
        source_format=c.microphone_format or None,
        sink_format=c.speaker_format or None,
        ice_servers=servers,
        relay_only=c.ice_relay_only,
        camera=c.camera,
        camera_format=c.camera_format or None,
        camera_options=(("video_size", c.camera_size),)
        if c.camera_size and c.camera_format
        else (),
    )


def load_secret(path: Path) -> bytes:
    """The station's key for identity hashes, created on first start and kept private."""
    if path.exists():
        return path.read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(key)
    tmp.chmod(0o600)
    tmp.replace(path)
    return key
