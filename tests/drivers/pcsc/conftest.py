"""A private pcscd with the vpcd reader driver on a free port, for the PC/SC tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.pcscd import Pcscd, usable


@pytest.fixture
def pcscd(tmp_path: Path) -> Iterator[Pcscd]:
    why = usable()
    if why:
        pytest.skip(why)
    daemon = Pcscd(tmp_path)
    daemon.start()
    yield daemon
    daemon.stop()
