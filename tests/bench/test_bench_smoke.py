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
