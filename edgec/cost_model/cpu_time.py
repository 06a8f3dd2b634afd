"""Interleaved timing that also records the CPU time each call used (for shared machines).

On a machine other processes load, a call's wall time includes the time it waited for a core;
its CPU time does not. With one ONNX Runtime thread the kernels run on the calling thread,
so the calling thread's CPU time (`time.thread_time`) is the latency the same call would have
on an idle core (plus what cache pollution from the other processes costs). The host cost
model is calibrated on it at one thread, and bench/estimator_host.py reports it next to wall
time. Timing itself is `runtimes.measure.measure_interleaved`; this module only wraps the
callables.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

__all__ = ["interleaved_with_cpu_time"]


def interleaved_with_cpu_time(
    calls: dict[str, Callable[[], object]], *, warmup: int, **options: Any
) -> tuple[dict[str, Any], dict[str, float]]:
    """(wall-time stats per tag, median CPU seconds per call per tag), warm-up calls excluded.

    `options` go to `measure_interleaved` (rounds, per_round, threads, …)."""
    from edgec.runtimes.measure import measure_interleaved

    samples: dict[str, list[float]] = {tag: [] for tag in calls}

    def recorded(tag: str, fn: Callable[[], object]) -> Callable[[], None]:
        def call() -> None:
            start = time.thread_time()
            fn()
            samples[tag].append(time.thread_time() - start)

        return call

    wall = measure_interleaved(
        {tag: recorded(tag, fn) for tag, fn in calls.items()}, warmup=warmup, **options
    )
    cpu = {tag: statistics.median(values[warmup:]) for tag, values in samples.items()}
    return wall, cpu
