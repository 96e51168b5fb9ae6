"""Benchmarks: each ``bench/bench_*.py`` has ``run() -> dict[str, float]``; see ``__main__``."""
