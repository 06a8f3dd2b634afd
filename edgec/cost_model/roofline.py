"""Time of one kernel on one compute unit: a roofline with per-op-class efficiency.

    t = max(compute_scale · FLOPs / (peak · efficiency[class]),
            memory_scale · bytes / bandwidth) + overhead

`EFFICIENCY` is the share of the unit's peak a kernel class reaches (engineering priors: dense
convolutions and matmuls use the matrix engines well, depthwise convolutions and vector work —
norms, softmax, activations, copies — run on a small part of the chip; on GPUs the peak is the
tensor-core figure, which vector work never touches). `OVERHEAD_US` is the fixed cost of
launching one kernel. Per device, `compute_scale`, `memory_scale` and `overhead_us` are fitted
to published measurements (`edgec.cost_model.fit`) and stored in
devices/latency_calibration.json; the priors below are only their starting point.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from edgec.cost_model.kernels import Kernel

__all__ = ["EFFICIENCY", "OVERHEAD_US", "Terms", "kernel_terms"]

_VECTOR = {"gpu": 0.02, "npu": 0.03, "cpu": 0.15, "dla": 0.03}
_MATRIX = {
    "gpu": {"conv": 0.45, "dwconv": 0.03, "matmul": 0.45, "attention": 0.2},
    "npu": {"conv": 0.5, "dwconv": 0.05, "matmul": 0.35, "attention": 0.15},
    "cpu": {"conv": 0.6, "dwconv": 0.25, "matmul": 0.6, "attention": 0.35},
    "dla": {"conv": 0.5, "dwconv": 0.05, "matmul": 0.3, "attention": 0.1},
}
EFFICIENCY = {
    kind: {
        **{c: _VECTOR[kind] for c in ("norm", "softmax", "elementwise", "pool", "layout", "other")},
        **matrix,
    }
    for kind, matrix in _MATRIX.items()
}
OVERHEAD_US = {"gpu": 5.0, "npu": 20.0, "cpu": 2.0, "dla": 20.0}


@dataclasses.dataclass(frozen=True)
class Terms:
    """A kernel's unscaled roofline terms in seconds (for a whole batch), and whether it runs."""

    compute_s: float
    memory_s: float
    launches: int

    def seconds(self, compute_scale: float, memory_scale: float, overhead_us: float) -> float:
        return (
            max(compute_scale * self.compute_s, memory_scale * self.memory_s)
            + overhead_us * 1e-6 * self.launches
        )


def kernel_terms(
    kernel: Kernel,
    unit_kind: str,
    peak_tflops: float,
    bandwidth_gbs: float,
    activation_bytes: float,
    weight_bytes: float,
    batch: int = 1,
    efficiency: Mapping[str, float] | None = None,
) -> Terms:
    """Compute and memory time of `kernel` for `batch` images (weights read once per batch).

    `efficiency` (class → share of peak) replaces the priors where it was measured (the host's
    micro-benchmarks, `host_calibration`)."""
    table = efficiency or EFFICIENCY.get(unit_kind, EFFICIENCY["cpu"])
    efficiency_of_class = table[kernel.cls]
    flops = kernel.flops * batch
    moved = kernel.activation_elements * activation_bytes * batch
    moved += kernel.weight_elements * weight_bytes
    launches = 1 if (flops or moved) else 0
    return Terms(
        flops / (peak_tflops * 1e12 * efficiency_of_class), moved / (bandwidth_gbs * 1e9), launches
    )
