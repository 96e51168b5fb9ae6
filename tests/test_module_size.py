"""No production module grows past 600 lines (STYLE: modules under ~600 lines): a module that
long does several jobs, and the next reader has to find the seams."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("flows", "statedir", "drivers", "fleet", "kiosk", "sandbox")
LIMIT = 600


def test_no_production_module_is_over_600_lines() -> None:
    long = {
        str(path.relative_to(REPO)): n
        for package in PACKAGES
        for path in sorted((REPO / package).rglob("*.py"))
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > LIMIT
    }
    assert not long, f"split these along their seams: {long}"
