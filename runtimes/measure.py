"""The one latency protocol every runtime uses: warm-up, N timed calls, percentiles, threads.

Every backend hands this module a zero-argument callable that runs one inference; nothing
else times anything, so numbers from ONNX Runtime, TensorRT and Core ML mean the same thing.

- `measure(fn, threads=...)`: `warmup` untimed calls, then `runs` calls (100 by default),
  each timed on its own with `time.perf_counter`. Garbage collection is paused while timing.
- `measure_interleaved({tag: fn}, threads=...)`: for benchmarks comparing variants on a
  shared, noisy machine. Every variant is warmed up, then `rounds` rounds each run
  `per_round` calls of every variant; the variant that goes first rotates round by round,
  so drift in machine load spreads over all variants instead of biasing one. Optionally
  each round waits until the machine is idle (`idle_below`, read from /proc/stat).

`threads` is recorded, not set: the runner was built with it. Latency is reported in
milliseconds as p50/p90/p99 (linear interpolation between order statistics), mean and min,
plus p10, the number the toolchain notes recommend next to the median on shared CPUs.
"""

from __future__ import annotations

import dataclasses
import gc
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

Progress = Callable[[int, int], None]
"""`progress(done, total)`, called outside the timed region."""

MIN_RUNS = 100


@dataclasses.dataclass
class LatencyStats:
    """Latency of one model (or variant) under one protocol, in milliseconds."""

    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    min_ms: float
    runs: int
    warmup: int
    threads: int
    method: str = "measured"
    note: str = ""
    p10_ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (floats rounded to 1 ns) for manifests and reports."""
        out = dataclasses.asdict(self)
        for key, value in out.items():
            if isinstance(value, float):
                out[key] = round(value, 6)
        return out


def stats_from_samples(
    samples_ms: list[float], *, warmup: int, threads: int, note: str = ""
) -> LatencyStats:
    """Summarise per-call times (ms) into a `LatencyStats`."""
    if not samples_ms:
        raise ValueError("no samples to summarise")
    arr = np.asarray(samples_ms, dtype=np.float64)
    p10, p50, p90, p99 = (float(v) for v in np.percentile(arr, [10, 50, 90, 99]))
    notes = [note] if note else []
    if len(arr) < MIN_RUNS:
        notes.append(f"only {len(arr)} runs (< {MIN_RUNS}): p99 is not meaningful")
    return LatencyStats(
        p50_ms=p50,
        p90_ms=p90,
        p99_ms=p99,
        mean_ms=float(arr.mean()),
        min_ms=float(arr.min()),
        runs=len(arr),
        warmup=warmup,
        threads=threads,
        note="; ".join(notes),
        p10_ms=p10,
    )


def measure(
    fn: Callable[[], object],
    *,
    warmup: int = 10,
    runs: int = MIN_RUNS,
    threads: int,
    progress: Progress | None = None,
) -> LatencyStats:
    """Time `fn()` `runs` times after `warmup` untimed calls; return its latency stats."""
    _check_counts(warmup=warmup, runs=runs)
    for _ in range(warmup):
        fn()
    samples: list[float] = []
    with _gc_paused():
        for i in range(runs):
            samples.append(_time_one(fn))
            if progress is not None:
                progress(i + 1, runs)
    return stats_from_samples(samples, warmup=warmup, threads=threads)


def measure_interleaved(
    fns: dict[str, Callable[[], object]],
    *,
    rounds: int = 20,
    per_round: int = 10,
    warmup: int = 10,
    threads: int,
    idle_below: float | None = None,
    idle_wait_s: float = 45.0,
    progress: Progress | None = None,
) -> dict[str, LatencyStats]:
    """Time several variants alternately, round by round; return stats per variant tag.

    Args:
        fns: tag → zero-argument callable running one inference of that variant.
        rounds: number of rounds; each variant gets `rounds * per_round` timed calls.
        per_round: consecutive calls of one variant within a round.
        warmup: untimed calls of every variant before the first round.
        threads: intra-op threads the callables were built with (recorded only).
        idle_below: when set (e.g. 0.08), each round first waits until the machine's CPUs
            are busy less than this fraction over 0.5 s, for at most `idle_wait_s`.
        idle_wait_s: longest wait for an idle machine before a round starts anyway.
        progress: `progress(round_done, rounds)` after every round.
    """
    if not fns:
        raise ValueError("measure_interleaved needs at least one callable")
    _check_counts(warmup=warmup, runs=rounds * per_round)
    tags = list(fns)
    for tag in tags:
        for _ in range(warmup):
            fns[tag]()
    samples: dict[str, list[float]] = {tag: [] for tag in tags}
    gated_rounds = 0
    for r in range(rounds):
        if idle_below is not None and _wait_for_idle(idle_below, idle_wait_s):
            gated_rounds += 1
        order = tags[r % len(tags) :] + tags[: r % len(tags)]
        with _gc_paused():
            for tag in order:
                fn = fns[tag]
                for _ in range(per_round):
                    samples[tag].append(_time_one(fn))
        if progress is not None:
            progress(r + 1, rounds)
    note = f"interleaved: {rounds} rounds x {per_round} runs, {len(tags)} variants"
    if idle_below is not None:
        note += (
            f"; rounds gated on CPU busy < {idle_below:.0%} ({gated_rounds}/{rounds} reached it)"
        )
    return {
        tag: stats_from_samples(samples[tag], warmup=warmup, threads=threads, note=note)
        for tag in tags
    }


def _time_one(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1e3


def _check_counts(*, warmup: int, runs: int) -> None:
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0, got {warmup}")
    if runs < 1:
        raise ValueError(f"runs must be >= 1, got {runs}")


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Keep Python's cyclic GC from landing inside a timed call (as `timeit` does)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _cpu_times() -> tuple[int, int] | None:
    """(total, idle+iowait) jiffies over all CPUs, or None where /proc/stat is missing."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return sum(fields), fields[3] + fields[4]


def _wait_for_idle(threshold: float, max_wait_s: float, window_s: float = 0.5) -> bool:
    """Wait until CPUs are busy < `threshold` over one window; False on timeout/no data."""
    deadline = time.monotonic() + max_wait_s
    while time.monotonic() < deadline:
        before = _cpu_times()
        time.sleep(window_s)
        after = _cpu_times()
        if before is None or after is None:
            return False
        total, idle = after[0] - before[0], after[1] - before[1]
        if 1.0 - idle / max(1, total) < threshold:
            return True
    return False
