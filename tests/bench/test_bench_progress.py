"""``make bench`` says which module runs, as it starts and as it ends (a module takes minutes)."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

import bench.__main__ as bench_main


def test_each_module_is_announced_before_it_runs_and_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    said_before_run: list[str] = []

    def run() -> dict[str, float]:
        said_before_run.append(capsys.readouterr().out)
        return {"fake.figure_ms": 1.5}

    fake = types.ModuleType("bench.bench_fake")
    fake.run = run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "bench.bench_fake", fake)
    monkeypatch.setattr(bench_main, "HERE", tmp_path)  # results.json there, not in bench/

    assert bench_main.main(["fake"]) == 0
    assert said_before_run == ["[1/1] bench_fake ...\n"]
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["fake.figure_ms", "1.5000"]
    assert lines[1].startswith("[1/1] bench_fake done in ") and lines[1].endswith(" s")
    assert (tmp_path / "results.json").exists()
