"""scripts/platform-wheels (which locked pins have no wheel for a station's architecture) reads
every pin of the terminal's lock with its hashes. The lookup itself needs the package index and
is run by hand (its figures are in docs/deploy.md); here, what it would ask for."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib.machinery import SourceFileLoader
from importlib.util import module_from_spec, spec_from_loader
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "platform-wheels"


def script() -> ModuleType:
    loader = SourceFileLoader("platform_wheels", str(SCRIPT))
    spec = spec_from_loader("platform_wheels", loader)
    assert spec is not None
    module = module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_every_pin_of_the_terminal_lock_is_asked_for_with_all_its_hashes() -> None:
    lock = REPO / "requirements" / "terminal.txt"
    text = lock.read_text()
    expected = re.findall(r"^([A-Za-z0-9_.\-]+==\S+)", text, re.M)
    found = script().pins(lock)
    assert [pin for pin, _ in found] == expected
    assert {"pyscard==", "pycups==", "kivy=="} <= {pin.split("==")[0] + "==" for pin, _ in found}
    hashes = sum(h.count("--hash=sha256:") for _, h in found)
    assert hashes == text.count("--hash=sha256:")


def test_an_unknown_platform_is_refused_with_the_known_ones() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "sparc"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert "aarch64" in result.stderr and "loongarch64" in result.stderr
