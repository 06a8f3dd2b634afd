"""`edgec.estimate(model, device)`: latency of an ONNX graph on a device edgec cannot reach.

The estimate is built from the graph alone and the device's profile, in four steps
(`edgec.cost_model`): group the nodes into the kernels a runtime launches (fusion rules in the
spirit of nn-Meter, extended to attention, LayerNorm, Softmax and GELU), count each kernel's
FLOPs and bytes, time each on the compute unit the device's runtime targets with a roofline
that knows how well each op class uses the unit (calibrated per device on published
measurements), and move the kernels the profile says leave the accelerator to the CPU.

It is an estimate, and says so: every result carries `method = "estimated"` and the error
measured for that device by cross-validation against published measurements
(`expected_error`); devices without published measurements say that their constants are
borrowed or are priors, with the error that goes with that.

The host (a profile whose latency is "measured") is estimated too, for comparison with its
measurement: its kernels follow ONNX Runtime's CPU fusions (`fusion.ORT_CPU`) and its
constants are micro-benchmarked on this CPU at first use and cached (`host_calibration`);
its expected error is what `bench/estimator_host.py` measured across the zoo.
"""

from __future__ import annotations

import dataclasses
import sys
import types
from collections import defaultdict
from pathlib import Path
from typing import Any

import onnx_ir as ir

from edgec.cost_model.calibration import Calibration, calibration_for, host_expected_error
from edgec.cost_model.fusion import ORT_CPU, rules_for
from edgec.cost_model.hardware import ELEMENT_BYTES, Hardware, hardware_for
from edgec.cost_model.host_time import HostTimes
from edgec.cost_model.kernels import Kernel, group_kernels
from edgec.cost_model.placement import match_fallbacks
from edgec.cost_model.roofline import bound, kernel_terms
from edgec.device_profile import DeviceProfile, load_device
from edgec.errors import UserError

__all__ = ["Estimate", "EstimateUnavailable", "estimate"]

# Priors for kernels the profile sends to the CPU: how much slower the CPU is when the profile
# publishes no CPU peak, and the cost of one switch between accelerator and CPU partitions.
CPU_SLOWDOWN_PRIOR = 10.0
PARTITION_SWITCH_US = 100.0


class EstimateUnavailable(UserError):
    """The profile lacks the figures an estimate needs and no calibration supplies them."""


@dataclasses.dataclass
class KernelTime:
    kernel: Kernel
    ms: float
    bound: str  # "compute" | "memory" | "launch"
    unit: str


@dataclasses.dataclass
class Estimate:
    """An estimated latency: total, per kernel (with the ONNX nodes in each) and per op class."""

    device: str
    precision: str
    batch: int
    hardware: Hardware
    calibration: Calibration
    kernels: list[KernelTime]
    fallbacks: list[dict[str, Any]]
    call_ms: float = 0.0  # fixed cost of one inference call (host: session.run), once per batch

    @property
    def total_ms(self) -> float:
        return sum(k.ms for k in self.kernels) + self.call_ms

    @property
    def by_class(self) -> dict[str, float]:
        totals: dict[str, float] = defaultdict(float)
        for k in self.kernels:
            totals[k.kernel.cls] += k.ms
        if self.call_ms:
            totals["call"] += self.call_ms
        return dict(sorted(totals.items(), key=lambda kv: (-kv[1], kv[0])))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, the form the manifest records under `latency`."""
        error = self.calibration.expected_error
        pct = error.get("median_pct")
        total = self.total_ms
        return {
            "method": "estimated",
            "note": "an estimate from edgec's cost model, not a measurement",
            "device": self.device,
            "precision": self.precision,
            "batch": self.batch,
            "total_ms": round(total, 4),
            "expected_error": dict(error),
            "range_ms": None
            if pct is None
            else [round(total / (1 + pct / 100), 4), round(total * (1 + pct / 100), 4)],
            "unit": {
                "kind": self.hardware.unit_kind,
                "name": self.hardware.unit_name,
                "peak": self.hardware.peak_note,
                "bandwidth_gbs": self.hardware.bandwidth_gbs,
            },
            "calibration": self.calibration.to_dict(),
            "by_class_ms": {k: round(v, 4) for k, v in self.by_class.items()},
            "fallbacks": self.fallbacks,
            "per_kernel": [
                {
                    **k.kernel.to_dict(),
                    "ms": round(k.ms, 5),
                    "bound": k.bound,
                    "unit": k.unit,
                }
                for k in self.kernels
            ],
        }

    def table(self, rows: int = 12) -> str:
        """A terminal table: total with its expected error, op classes, slowest kernels."""
        error = self.calibration.expected_error
        pct = error.get("median_pct")
        spread = f"±{pct:.0f} % median error" if pct is not None else "error unknown"
        lines = [
            f"ESTIMATE (not measured) for {self.device}, {self.precision}, batch {self.batch}: "
            f"{self.total_ms:.3f} ms ({spread}; {error.get('method', self.calibration.how)})",
            f"  unit: {self.hardware.unit_kind} — {self.hardware.unit_name}",
            f"  calibration: {self.calibration.how}",
            "",
            f"  {'op class':<12} {'ms':>9} {'share':>7}",
        ]
        total = self.total_ms or 1.0
        for cls, ms in self.by_class.items():
            lines.append(f"  {cls:<12} {ms:>9.3f} {ms / total:>7.1%}")
        lines += ["", f"  {'slowest kernels':<44} {'class':<11} {'ms':>8} {'bound':<8}"]
        for k in sorted(self.kernels, key=lambda k: -k.ms)[:rows]:
            label = "+".join(dict.fromkeys(k.kernel.op_types))[:28]
            lines.append(
                f"  {k.kernel.name[:15]:<15} {label:<28} {k.kernel.cls:<11} {k.ms:>8.4f} "
                f"{k.bound:<8}{'' if k.unit == self.hardware.unit_kind else ' on ' + k.unit}"
            )
        for f in self.fallbacks:
            extra = f" (+{f['extra_ms']:.3f} ms)" if f.get("extra_ms") is not None else ""
            lines.append(f"  fallback [{f['kind']}] {f['what']}: {len(f['nodes'])} node(s){extra}")
        return "\n".join(lines)


def estimate(
    model: ir.Model | str | Path,
    device: DeviceProfile | str,
    *,
    precision: str | None = None,
    batch: int = 1,
    threads: int | None = None,
) -> Estimate:
    """Estimated latency of `model` (an onnx_ir model or an .onnx path) on `device`.

    `precision` defaults to the device's first (preferred) precision; `batch` scales the
    per-image work (weights are read once per batch and launches happen once); `threads`
    (host only, default the profile's) picks the host calibration to use.
    """
    profile = device if isinstance(device, DeviceProfile) else load_device(device)
    graph = _as_model(model)
    precision = precision or profile.precisions[0]
    if precision not in ELEMENT_BYTES:
        raise UserError(
            f"unknown precision {precision!r}", f"one of {', '.join(sorted(ELEMENT_BYTES))}"
        )
    if batch < 1:
        raise UserError(f"batch must be at least 1, got {batch}")
    if profile.latency == "measured":
        hardware, calibration, measured, call_ms = _host_constants(
            profile, precision, threads or profile.threads
        )
    else:
        hardware = hardware_for(profile, precision)
        calibration = calibration_for(profile.name, hardware.unit_kind)
        measured, call_ms = None, 0.0
    rules = ORT_CPU if profile.latency == "measured" else rules_for(profile.runtime)
    kernels = group_kernels(graph, _unit_batch_dims(graph), rules)
    peak = hardware.peak_tflops or calibration.nominal_tflops
    bandwidth = hardware.bandwidth_gbs or calibration.nominal_bandwidth_gbs
    if peak is None or bandwidth is None:
        missing = "peak throughput" if peak is None else "memory bandwidth"
        raise EstimateUnavailable(
            f"cannot estimate latency on {profile.name}: its profile publishes no {missing} for "
            f"the {hardware.unit_kind} its runtime ({profile.runtime}) uses, and no published "
            "measurements calibrate it",
            f"add a sourced figure to devices/{profile.name}.toml, or measure on the device",
        )
    host = HostTimes(measured, precision, kernels) if measured is not None else None
    times = []
    for k in kernels:
        if host is not None:  # this CPU's micro-benchmarked constants (`cost_model.host_time`)
            times.append(KernelTime(k, *host.ms_and_bound(k, batch), hardware.unit_kind))
            continue
        terms = kernel_terms(
            k, hardware.unit_kind, peak, bandwidth, hardware.activation_bytes,
            hardware.weight_bytes, batch,
        )  # fmt: skip
        seconds = terms.seconds(
            calibration.compute_scale,
            calibration.memory_scale,
            calibration.overhead_us,
            calibration.layout_scale,
            calibration.reduction_launches,
        )
        compute, memory = terms.scaled(
            calibration.compute_scale, calibration.memory_scale, calibration.layout_scale
        )
        times.append(
            KernelTime(k, seconds * 1e3, bound(compute, memory, seconds), hardware.unit_kind)
        )
    fallbacks = _apply_fallbacks(profile, precision, batch, times, bandwidth)
    return Estimate(
        profile.name, precision, batch, hardware, calibration, times, fallbacks, call_ms
    )


def _host_constants(profile: DeviceProfile, precision: str, threads: int):
    """(hardware, calibration, measured constants, call ms) of this host, micro-benchmarked at
    `threads` on first use (`cost_model.host_calibration`)."""
    from edgec.cost_model.host_calibration import HOST_PRECISIONS, cache_dir, host_calibration
    from edgec.device_profile import host_facts

    if precision not in HOST_PRECISIONS:
        raise EstimateUnavailable(
            f"no host estimate at {precision}: ONNX Runtime's CPU kernels were micro-benchmarked "
            f"at {', '.join(HOST_PRECISIONS)} only",
            "estimate at one of those precisions, or measure (edgec profile DIR)",
        )
    measured = host_calibration(threads)
    act, weight = ELEMENT_BYTES[precision]
    peak = measured.peak_gflops[HOST_PRECISIONS[precision]]
    hardware = Hardware(
        unit_kind="cpu",
        unit_name=f"{host_facts()['cpu']}, {threads} thread(s)",
        precision=precision,
        peak_tflops=peak / 1e3,
        peak_note=f"{peak:.1f} GFLOP/s matmul, micro-benchmarked here {measured.measured_at}",
        bandwidth_gbs=measured.bandwidth_gbs,
        activation_bytes=act,
        weight_bytes=weight,
    )
    calibration = Calibration(
        device=profile.name,
        compute_scale=1.0,
        memory_scale=1.0,
        overhead_us=min(measured.fixed_cost_us(precision).values()),
        how=f"micro-benchmarks on this CPU at first use ({measured.measured_at}), cached in "
        f"{cache_dir()}",
        expected_error=host_expected_error(),
    )
    return hardware, calibration, measured, measured.call_us / 1e3


def _apply_fallbacks(profile, precision, batch, times: list[KernelTime], bandwidth) -> list[dict]:
    """Move certain fallbacks to the CPU (in the total); price possible ones (not in it)."""
    kernels = [t.kernel for t in times]
    cpu = hardware_for(profile, "fp32", kind="cpu")
    cpu_calibration = calibration_for("", "cpu")
    report = []
    for match in match_fallbacks(profile, kernels, precision):
        extra = 0.0
        for i in match.kernels:
            t = times[i]
            if cpu.peak_tflops and cpu.bandwidth_gbs:
                terms = kernel_terms(
                    t.kernel, "cpu", cpu.peak_tflops, cpu.bandwidth_gbs, cpu.activation_bytes,
                    cpu.weight_bytes, batch,
                )  # fmt: skip
                on_cpu = 1e3 * terms.seconds(
                    cpu_calibration.compute_scale,
                    cpu_calibration.memory_scale,
                    cpu_calibration.overhead_us,
                )
            else:
                on_cpu = t.ms * CPU_SLOWDOWN_PRIOR
            moved = t.kernel.activation_elements * 4 * batch / (bandwidth * 1e9) * 1e3
            switched = on_cpu + 2 * moved + PARTITION_SWITCH_US / 1e3
            extra += switched - t.ms
            if match.kind == "certain":
                times[i] = KernelTime(t.kernel, switched, "fallback", "cpu")
        report.append(
            {
                "what": match.entry.what,
                "effect": match.entry.effect,
                "source": match.entry.source,
                "kind": match.kind,
                "in_total": match.kind == "certain",
                "nodes": [n for i in match.kernels for n in kernels[i].nodes],
                "extra_ms": None if match.kind == "conversion" else round(extra, 4),
            }
        )
    return report


def _as_model(model: ir.Model | str | Path) -> ir.Model:
    if isinstance(model, ir.Model):
        return model
    path = Path(model)
    if not path.is_file() or path.suffix != ".onnx":
        raise UserError(f"{path} is not an .onnx file", "give an ONNX model or an onnx_ir.Model")
    return ir.load(path)


def _unit_batch_dims(model: ir.Model) -> dict[str, int]:
    """Bind a symbolic leading (batch) dimension of the inputs to 1: estimates are per image."""
    dims = {}
    for value in model.graph.inputs:
        if value.shape is not None and len(value.shape) and not isinstance(value.shape[0], int):
            name = value.shape[0].value
            if name is not None:
                dims[name] = 1
    return dims


class _CallableModule(types.ModuleType):
    """Lets `edgec.estimate(model, device)` call `estimate` although `edgec.estimate` is also
    this module's name (a package attribute and a submodule cannot be told apart)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Estimate:
        return estimate(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
