"""Fixtures of the shell's tests: a private cupsd for the runtime rigs (station.py), and a bare
runtime for the call tests (no devices but speech that is off, the demo catalog)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flows.catalog import load_catalog
from kiosk.fonts import find_cjk_font
from kiosk.i18n import Translator
from kiosk.shell.catalog_watch import DEMO_CATALOG
from kiosk.shell.devices import SpeechOff
from kiosk.shell.deviceset import Devices
from kiosk.shell.runtime import Frame, Runtime
from sandbox.cups import CupsSandbox
from statedir.journal import Journal


@pytest.fixture(scope="module")
def cups(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CupsSandbox]:
    """One private cupsd for a test module's runtimes (test_print_once.py has its own per test)."""
    sandbox = CupsSandbox(tmp_path_factory.mktemp("cups"))
    sandbox.start()
    yield sandbox
    sandbox.stop()


class Reader:
    def read_again(self) -> None:
        pass


@pytest.fixture
def bare_runtime(tmp_path: Path) -> tuple[Runtime, list[Frame]]:
    """A runtime with no devices (speech off, no reader or printers) and the frames it draws;
    a call test gives it its ``calls.audio``."""
    unused: Any = object()
    runtime = Runtime(
        catalog=load_catalog(DEMO_CATALOG),
        devices=Devices(Reader(), unused, unused, SpeechOff()),
        journal=Journal(tmp_path / "journal.sqlite3"),
        translator=Translator(strict=True),
        font=find_cjk_font(),
        secret=b"k" * 32,
        attract_every_s=3600,
    )
    frames: list[Frame] = []
    runtime.on_frame = frames.append
    return runtime, frames
