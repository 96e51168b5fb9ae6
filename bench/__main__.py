"""``make bench``: run every benchmark module and write ``bench/results.json``.

One flat JSON object, figure name → number: ratios are dimensionless, times in milliseconds,
memory in MiB. Each module measures its own baseline in the same run.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    names = [n if n.startswith("bench_") else f"bench_{n}" for n in argv] or sorted(
        p.stem for p in HERE.glob("bench_*.py")
    )
    results: dict[str, float] = {}
    out = HERE / "results.json"
    if argv and out.exists():
        results = json.loads(out.read_text())
    for index, name in enumerate(names, 1):
        # a module runs for up to minutes: say which, as it starts and as it ends
        print(f"[{index}/{len(names)}] {name} ...", flush=True)
        started = time.monotonic()
        module = importlib.import_module(f"bench.{name}")
        figures = module.run()
        for key, value in figures.items():
            print(f"{key:45s} {value:12.4f}")
        print(
            f"[{index}/{len(names)}] {name} done in {time.monotonic() - started:.1f} s", flush=True
        )
        results.update(figures)
    out.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
