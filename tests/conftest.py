"""Fixtures shared by the whole suite: the virtual screen, the artifacts folder, markers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiosk.tools.devstation import start_xvfb

# A test that imports a kiosk screen brings Kivy into this process; Kivy's default log mode
# takes the root logger and prints every library's DEBUG line (python-statemachine's, thousands,
# down to interpreter exit) to the run's output. The kiosk itself runs with the same setting.
os.environ.setdefault("KIVY_LOG_MODE", "PYTHON")
os.environ.setdefault("KIVY_NO_ARGS", "1")

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--hardware", action="store_true", help="run tests that need real devices")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--hardware"):
        return
    skip = pytest.mark.skip(reason="needs real devices (--hardware)")
    for item in items:
        if "hardware" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Screenshots and other files a person should look at after a run."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def xvfb() -> Iterator[str]:
    """A private X server on a free display number; yields the DISPLAY value."""
    try:
        proc, display = start_xvfb(1920, 1080)
    except RuntimeError as err:
        pytest.fail(str(err))
    try:
        yield display
    finally:
        proc.terminate()
        proc.wait(timeout=10)
