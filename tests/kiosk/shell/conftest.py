"""Fixtures of the shell's tests: a private cupsd for the runtime rigs (station.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox.cups import CupsSandbox


@pytest.fixture(scope="module")
def cups(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CupsSandbox]:
    """One private cupsd for a test module's runtimes (test_print_once.py has its own per test)."""
    sandbox = CupsSandbox(tmp_path_factory.mktemp("cups"))
    sandbox.start()
    yield sandbox
    sandbox.stop()
