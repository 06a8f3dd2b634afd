"""Time of one kernel on one compute unit: a roofline with per-op-class efficiency.

    t = max(compute_scale · FLOPs / (peak · efficiency[class]),
            memory_scale · bytes / bandwidth) + overhead

with `layout_scale` in place of `memory_scale` for layout kernels (Transpose, Concat, Slice, …:
copies that compute nothing). A copy's bytes move at the bandwidth of its access pattern, not
the memory's: on some accelerators a transpose of a token layout is a strided gather many
times slower than a streaming conv (EfficientViT-M's observation that reshapes bound these
models' speed), on others it is nearly free; so it is a constant of its own, fitted per device.

A kernel that reduces whole axes (a global pool or Reduce*: `Kernel.reduces`) costs
`reduction_launches` launches instead of one. On a unit that runs a graph as one tiled,
layer-fused program (a Neural Engine, a Hexagon NPU) such a reduction is a barrier: no output
exists before the whole input does, so the pipeline drains and refills around it, and a
squeeze-excite block (pool → FC → FC → gate) stalls the tiles of the map it gates. The
published NPU measurements show it (Galaxy S24: MobileNetV3-Small, with ten such reductions
and a fifth of MobileNetV2's MACs, takes as long as MobileNetV2, while MobileNetV2 at w8a8
takes half its fp16 time, so the cost is not a large launch overhead of every kernel). It is
fitted per device like the other constants (`fit`); 1 is no extra cost.

`EFFICIENCY` is the share of the unit's peak a kernel class reaches (engineering priors: dense
convolutions and matmuls use the matrix engines well, depthwise convolutions and vector work —
norms, softmax, activations, copies — run on a small part of the chip; on GPUs the peak is the
tensor-core figure, which vector work never touches). `OVERHEAD_US` is the fixed cost of
launching one kernel. Per device, `compute_scale`, `memory_scale`, `overhead_us`,
`layout_scale` and (on NPUs) `reduction_launches` are fitted to published measurements
(`edgec.cost_model.fit`) and stored in devices/latency_calibration.json; the priors below are
only their starting point.
"""

from __future__ import annotations

import dataclasses

from edgec.cost_model.kernels import Kernel

__all__ = ["EFFICIENCY", "OVERHEAD_US", "Terms", "bound", "kernel_terms"]

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
    layout: bool = False  # a copy: its bytes scale with `layout_scale` (module docstring)
    reductions: int = 0  # 1: it reduces whole axes; it costs `reduction_launches` launches

    def scaled(
        self, compute_scale: float, memory_scale: float, layout_scale: float | None = None
    ) -> tuple[float, float]:
        """(compute, memory) seconds under the given scales; `layout_scale` None: copies use
        `memory_scale`."""
        moved = layout_scale if self.layout and layout_scale is not None else memory_scale
        return compute_scale * self.compute_s, moved * self.memory_s

    def seconds(
        self,
        compute_scale: float,
        memory_scale: float,
        overhead_us: float,
        layout_scale: float | None = None,
        reduction_launches: float = 1.0,
    ) -> float:
        """Time under the given constants (see `scaled`)."""
        launches = self.launches + (reduction_launches - 1.0) * self.reductions
        return max(self.scaled(compute_scale, memory_scale, layout_scale)) + (
            overhead_us * 1e-6 * launches
        )


def bound(compute_s: float, memory_s: float, total_s: float) -> str:
    """What bounds a kernel: "launch" when its fixed cost is most of its time, else the larger
    of its compute and memory terms."""
    if max(compute_s, memory_s) < total_s / 2:
        return "launch"
    return "compute" if compute_s >= memory_s else "memory"


def kernel_terms(
    kernel: Kernel,
    unit_kind: str,
    peak_tflops: float,
    bandwidth_gbs: float,
    activation_bytes: float,
    weight_bytes: float,
    batch: int = 1,
) -> Terms:
    """Compute and memory time of `kernel` for `batch` images (weights read once per batch).
    (The host, whose constants are measured, is timed by `host_time` instead.)"""
    efficiency_of_class = EFFICIENCY.get(unit_kind, EFFICIENCY["cpu"])[kernel.cls]
    flops = kernel.flops * batch
    moved = kernel.activation_elements * activation_bytes * batch
    moved += kernel.weight_elements * weight_bytes
    launches = 1 if (flops or moved) else 0
    return Terms(
        flops / (peak_tflops * 1e12 * efficiency_of_class),
        moved / (bandwidth_gbs * 1e9),
        launches,
        kernel.cls == "layout",
        launches if kernel.reduces else 0,
    )
