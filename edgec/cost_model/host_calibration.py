"""The host's cost-model constants: measured by micro-benchmarks at first use, cached on disk.

`host_calibration(threads)` returns the constants for this CPU, this ONNX Runtime and this
thread count. The first call runs `host_micro.run_micro_benchmarks` (about three seconds) and
writes the result to `<cache>/host-calibration-<key>.json`; later calls read it. The cache
directory is `$EDGEC_CACHE_DIR`, else `$XDG_CACHE_HOME/edgec`, else `~/.cache/edgec`. The key
is the CPU model and ISA flags, the ORT version, the thread count and the benchmarks' version:
a file whose recorded key differs (another ORT, a changed benchmark) is measured again and
overwritten. Nothing is fitted to real models: every constant comes from one benchmark.

From the benchmarks (see `host_micro` for the graphs):

    call_us                fixed cost of one session.run (two Sigmoid chains of different length)
    switch_us              extra cost of each kernel when kernels of different classes follow
                           each other, as in a model (a mixed chain against its prediction)
    peak_gflops[p]         matmul throughput at precision p (fp32, w8a8)
    gflops[p][class]       each kernel class's throughput: the slope between its small and its
                           large benchmark (FLOPs per kernel against seconds per kernel)
    fixed_us[p][class]     each class's fixed cost per kernel: the intercept of that line (at
                           least the cost of a trivial kernel)
    bandwidth_gbs          bytes per second of copies (the same slope for Split + Concat)

The estimate (`host_time.HostTimes`) times each kernel with the constants of the precision it
really runs at and of its class (`host_time.host_class`: conv1x1, deconv, quantize and the
*_rw classes refine the kernel classes): `t = fixed_us[p][class] + switch_us +
max(FLOPs / gflops[p][class], bytes / bandwidth)`, plus `call_us` once per inference. Classes
without a benchmark of their own use a measured neighbour (pool, other → elementwise); at w8a8
the classes ORT only runs in float (norm, softmax, quantize, deconv, the *_rw float convs) keep
their fp32 constants, and copies
(layout) move 1-byte elements at the fp32 bandwidth.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from edgec.cost_model.host_micro import MICRO_VERSION, ROUNDS, MicroResult, run_micro_benchmarks
from edgec.cost_model.host_time import HOST_PRECISIONS

__all__ = [
    "CACHE_ENV",
    "HOST_PRECISIONS",
    "HostCalibration",
    "cache_dir",
    "cache_path",
    "calibration_key",
    "host_calibration",
    "store_calibration",
]

CACHE_ENV = "EDGEC_CACHE_DIR"
FORMAT = "edgec-host-calibration-v1"
_BORROWED = {"pool": "elementwise", "other": "elementwise"}
_FLOAT_ONLY = (
    "norm", "softmax", "quantize", "deconv", "deconv_rw", "conv_rw", "conv1x1_rw", "dwconv_rw",
    "conv_stem",
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class HostCalibration:
    """Measured constants of this host's cost model (see the module docstring)."""

    key: dict[str, Any]
    call_us: float
    fixed_us: dict[str, dict[str, float]]
    bandwidth_gbs: float
    peak_gflops: dict[str, float]
    gflops: dict[str, dict[str, float]]
    measured_at: str
    micro: tuple[dict[str, Any], ...] = ()
    switch_us: float = 0.0  # extra cost of every kernel in a graph of mixed kernels

    def fixed_cost_us(self, precision: str) -> dict[str, float]:
        """Fixed cost of one kernel of each class at `precision` (launch, setup, small work)."""
        return self.fixed_us[HOST_PRECISIONS[precision]]

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["micro"] = list(self.micro)
        return data


def cache_dir() -> Path:
    """Where host calibrations are kept: $EDGEC_CACHE_DIR, $XDG_CACHE_HOME/edgec or
    ~/.cache/edgec."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "edgec"


def calibration_key(threads: int) -> dict[str, Any]:
    """What a cached calibration is only valid for."""
    from edgec.device_profile import host_facts
    from edgec.runtimes.ort_session import import_ort

    facts = host_facts()
    return {
        "format": FORMAT,
        "micro_version": MICRO_VERSION,
        "cpu": facts["cpu"],
        "isa": facts["isa"],
        "onnxruntime": import_ort().__version__,
        "threads": threads,
    }


def cache_path(key: dict[str, Any]) -> Path:
    """The cache file of calibrations made under `key`."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return cache_dir() / f"host-calibration-{digest}.json"


def host_calibration(threads: int, *, scale: float = 1.0, rounds: int = ROUNDS) -> HostCalibration:
    """This host's constants at `threads`: from the cache, or measured now and cached.

    `scale` and `rounds` size the benchmarks (tests use tiny ones); they are part of the key.
    """
    key = calibration_key(threads)
    if scale != 1.0 or rounds != ROUNDS:
        key["scale"], key["rounds"] = scale, rounds
    path = cache_path(key)
    cached = _read(path, key)
    if cached is not None:
        return cached
    calibration = derive(key, run_micro_benchmarks(threads, scale=scale, rounds=rounds))
    _write(path, calibration)
    return calibration


def store_calibration(threads: int, results: list[MicroResult]) -> HostCalibration:
    """The constants from benchmark results measured elsewhere (`host_micro.run_with`, beside
    the models bench/estimator_host.py times), cached as this host's calibration."""
    calibration = derive(calibration_key(threads), results)
    _write(cache_path(calibration.key), calibration)
    return calibration


def _write(path: Path, calibration: HostCalibration) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(json.dumps(calibration.to_dict(), indent=1) + "\n", encoding="utf-8")
    partial.replace(path)  # atomic: a concurrent reader sees the old file or the whole new one


def _read(path: Path, key: dict[str, Any]) -> HostCalibration | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data["key"] != key:
            return None
        data["micro"] = tuple(data.get("micro", ()))
        return HostCalibration(**data)
    except (OSError, ValueError, KeyError, TypeError):
        return None  # absent, unreadable or from another edgec: measure again


def derive(key: dict[str, Any], results: list[MicroResult]) -> HostCalibration:
    """The constants from benchmark results: the per-call cost first, then per class a fixed
    cost per kernel and a throughput, from its small and its large benchmark."""
    launch = sorted((r for r in results if r.cls == "launch"), key=lambda r: r.kernels)
    short, long = launch[0], launch[-1]
    per_kernel = max(0.0, (long.seconds - short.seconds) / max(1, long.kernels - short.kernels))
    call = max(0.0, short.seconds - short.kernels * per_kernel)

    def point(runs: list[MicroResult], layout: bool) -> tuple[float, float]:
        """(work per kernel, seconds per kernel) over benchmarks; work is bytes for copies."""
        kernels = sum(r.kernels for r in runs)
        work = sum(r.bytes if layout else r.flops for r in runs) / kernels
        seconds = sum(max(r.seconds - call, 0.5 * r.seconds) for r in runs) / kernels
        return work, seconds

    groups: dict[tuple[str, str], dict[bool, list[MicroResult]]] = {}
    for r in results:
        if r.cls not in ("launch", "switch"):
            small = "_s" in r.name and r.cls != "peak"
            groups.setdefault((r.precision, r.cls), {}).setdefault(small, []).append(r)
    rates: dict[str, dict[str, float]] = {}
    fixed: dict[str, dict[str, float]] = {}
    for (precision, cls), sizes in sorted(groups.items()):
        layout = cls == "layout"
        work_l, time_l = point(sizes[False], layout)
        rate, cost = work_l / time_l, per_kernel
        if True in sizes:
            work_s, time_s = point(sizes[True], layout)
            if work_l > work_s and time_l > time_s:
                rate = (work_l - work_s) / (time_l - time_s)
            cost = max(per_kernel, time_s - work_s / rate)
        rates.setdefault(precision, {})[cls] = rate
        fixed.setdefault(precision, {})[cls] = cost
    bandwidth = rates["fp32"].pop("layout")
    peaks = {p: rates[p].pop("peak") for p in rates}
    for precision in rates:
        fixed[precision].pop("peak")
        for cls in _FLOAT_ONLY:
            rates[precision].setdefault(cls, rates["fp32"][cls])
            fixed[precision].setdefault(cls, fixed["fp32"][cls])
        rates[precision]["layout"] = peaks[precision]  # copies compute nothing: bytes count
        fixed[precision].setdefault("layout", fixed["fp32"]["layout"])
        for cls, source in _BORROWED.items():
            rates[precision][cls] = rates[precision][source]
            fixed[precision][cls] = fixed[precision][source]
    switch = _switch_cost(results, call, fixed["fp32"], rates["fp32"], bandwidth)
    return HostCalibration(
        key=key,
        switch_us=round(switch * 1e6, 3),
        call_us=round(call * 1e6, 3),
        fixed_us={
            p: {c: round(v * 1e6, 3) for c, v in sorted(f.items())} for p, f in fixed.items()
        },
        bandwidth_gbs=round(bandwidth / 1e9, 3),
        peak_gflops={p: round(v / 1e9, 3) for p, v in peaks.items()},
        gflops={p: {c: round(v / 1e9, 3) for c, v in sorted(r.items())} for p, r in rates.items()},
        measured_at=time.strftime("%Y-%m-%d %H:%M:%S"),
        micro=tuple(json.loads(json.dumps(dataclasses.asdict(r))) for r in results),  # as read
    )


def _switch_cost(results, call, fixed, rates, bandwidth) -> float:
    """Seconds per kernel the mixed chain (`host_micro._switch_bench`) takes beyond what the
    classes' constants (measured on chains of one op) predict for its kernels."""
    mixed = [r for r in results if r.cls == "switch"]
    if not mixed:
        return 0.0
    r = mixed[0]
    predicted = call + sum(
        fixed[cls] + max(flops / rates[cls], moved / bandwidth) for cls, flops, moved in r.parts
    )
    return max(0.0, (r.seconds - predicted) / max(1, len(r.parts)))
