"""The benchmarks still run (a few rounds; their figures are not judged here: tests never time)."""

from __future__ import annotations

from bench import bench_flows


def test_flows_benchmark_runs() -> None:
    figures = bench_flows.run(rounds=5)
    assert set(figures) == {"flows.transition_p95_to_frame"}
    assert figures["flows.transition_p95_to_frame"] > 0


def test_identity_benchmark_runs() -> None:
    from bench import bench_identity

    figures = bench_identity.run(rounds=2)
    assert figures["identity.sam_read_to_wire"] > 0
    assert 0.09 < bench_identity.wire_seconds() < 0.15  # ~1,360 bytes at 115200 baud


def test_voice_benchmark_runs() -> None:
    from bench import bench_voice

    figures = bench_voice.run(rounds=1)
    assert set(figures) == {"voice.stop_ms", "voice.cached_first_sample_ms", "voice.live_to_cached"}
    assert all(v > 0 for v in figures.values())


def test_documents_benchmark_runs() -> None:
    from bench import bench_documents

    figures = bench_documents.run(rounds=1)
    assert set(figures) == {
        "documents.certificate_ms",
        "documents.certificate_to_baseline",
        "documents.receipt_ms",
        "documents.receipt_to_baseline",
    }


def test_agent_benchmark_runs() -> None:
    from bench import bench_agent

    figures = bench_agent.run(n=50, rounds=1)
    assert set(figures) == {"agent.outbox_to_raw_qos1", "agent.reconnect_to_first_event_ms"}
    assert all(v > 0 for v in figures.values())


def test_ui_benchmark_runs() -> None:
    from bench import bench_ui

    figures = bench_ui.run(rounds=1, sessions=12, early=4)
    assert set(figures) == {
        "ui.cold_start_ms",
        "ui.cold_start_to_bare_kivy",
        "ui.transition_p95_to_frame",
        "ui.rss_10000_to_100",
    }
    assert all(v > 0 for v in figures.values())


def test_console_benchmark_runs() -> None:
    from bench import bench_console

    figures = bench_console.run(n=30, per_terminal=3)
    assert set(figures) == {
        "console.ingest_to_mosquitto_sub",
        "console.rollout_10000_s",
        "console.rss_10000_mib",
    }
    assert all(v > 0 for v in figures.values())


def test_fleet_page_benchmark_runs() -> None:
    from bench import bench_fleet_page

    figures = bench_fleet_page.run(n=20, baseline=10, every=10, health_s=1.0)
    assert set(figures) == {
        "console.fleet_page_10000_ms",
        "console.fleet_page_10000_to_100",
        "console.fleet_page_10000_kib",
    }
    assert all(v > 0 for v in figures.values())
