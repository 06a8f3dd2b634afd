"""The shared latency protocol: counts, percentile order, interleaving. Never asserts on timing."""

from __future__ import annotations

import json

import pytest

from edgec.runtimes.measure import LatencyStats, measure, measure_interleaved, stats_from_samples


def test_measure_defaults_to_100_timed_runs_after_warmup():
    calls = []
    seen = []
    stats = measure(lambda: calls.append(1), threads=1, progress=lambda i, n: seen.append((i, n)))
    assert isinstance(stats, LatencyStats)
    assert (stats.runs, stats.warmup, stats.threads, stats.method) == (100, 10, 1, "measured")
    assert len(calls) == 110
    assert seen[0] == (1, 100) and seen[-1] == (100, 100)
    assert 0 <= stats.min_ms <= stats.p10_ms <= stats.p50_ms <= stats.p90_ms <= stats.p99_ms
    assert stats.min_ms <= stats.mean_ms
    assert stats.note == ""


def test_to_dict_is_json_ready_and_complete():
    d = measure(lambda: None, runs=100, warmup=0, threads=2).to_dict()
    json.dumps(d)
    for key in ("p50_ms", "p90_ms", "p99_ms", "mean_ms", "min_ms", "runs", "warmup", "threads"):
        assert key in d
    assert d["threads"] == 2 and d["method"] == "measured"


def test_percentiles_of_known_samples():
    stats = stats_from_samples([float(v) for v in range(1, 101)], warmup=0, threads=1)
    assert stats.p50_ms == pytest.approx(50.5)
    assert stats.p90_ms == pytest.approx(90.1)
    assert stats.p99_ms == pytest.approx(99.01)
    assert (stats.min_ms, stats.mean_ms) == (1.0, 50.5)


def test_few_runs_are_flagged_and_bad_counts_rejected():
    assert "not meaningful" in measure(lambda: None, runs=5, warmup=0, threads=1).note
    with pytest.raises(ValueError):
        measure(lambda: None, runs=0, threads=1)
    with pytest.raises(ValueError):
        measure(lambda: None, warmup=-1, threads=1)


def test_interleaved_alternates_round_by_round():
    order: list[str] = []
    fns = {"a": lambda: order.append("a"), "b": lambda: order.append("b")}
    rounds_done = []
    stats = measure_interleaved(
        fns, rounds=3, per_round=2, warmup=1, threads=1, progress=lambda i, n: rounds_done.append(i)
    )
    # warm-up, then the variant that goes first rotates every round
    assert "".join(order) == "ab" + "aabb" + "bbaa" + "aabb"
    assert rounds_done == [1, 2, 3]
    assert set(stats) == {"a", "b"}
    for s in stats.values():
        assert s.runs == 6 and s.warmup == 1
        assert s.p50_ms <= s.p90_ms <= s.p99_ms
        assert "interleaved" in s.note


def test_interleaved_needs_variants():
    with pytest.raises(ValueError):
        measure_interleaved({}, threads=1)
