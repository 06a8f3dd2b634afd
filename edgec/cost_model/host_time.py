"""Time of one kernel on this host, from the micro-benchmarked constants (`host_calibration`).

    t = fixed_us[p][class] + switch_us + max(FLOPs / gflops[p][class], bytes / bandwidth)

`p` is the precision the kernel really runs at in ONNX Runtime: in a QDQ graph only the
kernels ORT runs as integer kernels (`Kernel.int8`, from `ort_qdq`) take the w8a8 constants
and 1-byte elements; the rest of a W8A8 graph runs in float (a conv whose output a HardSwish
reads, LayerNorm, GELU, Softmax, the DequantizeLinear / QuantizeLinear around them) and takes
the fp32 ones. A float graph estimated at w8a8 (before it is quantized) is priced as if all of
it ran on int8, as before.

The class refines the kernel's class where ORT's CPU kernels differ (`host_class`):

    conv1x1    a 1×1 convolution: a GEMM straight on the activation (conv is k×k: im2col first)
    conv_stem  a k×k convolution of fewer than 8 input channels (an image stem,
               `Kernel.narrow_input`): ORT's NCHWc kernel for an unblocked input is slower
    quantize   a stand-alone QuantizeLinear or DequantizeLinear (float ↔ int8 conversion)
    deconv     a ConvTranspose (ORT: a GEMM, then col2im; always in float)
    …_rw       a float conv, 1×1 conv or depthwise conv of a QDQ graph whose weights a
               DequantizeLinear computes at every run (`Kernel.runtime_weights`): ORT cannot
               pre-pack them or use its NCHWc kernels, so they run slower than in a float graph

The same functions count the micro-benchmarks' bytes, so a benchmark and an estimate divide
by the same quantities.
"""

from __future__ import annotations

from collections.abc import Sequence

from edgec.cost_model.hardware import ELEMENT_BYTES
from edgec.cost_model.kernels import Kernel
from edgec.cost_model.roofline import bound

__all__ = ["HOST_PRECISIONS", "HostTimes", "host_class", "kernel_bytes"]

# edgec precision → the benchmarked precision whose rates it runs at in ORT on the CPU
HOST_PRECISIONS = {"fp32": "fp32", "w8a8": "w8a8", "w4a8": "w8a8"}

_QUANTIZE_OPS = frozenset({"QuantizeLinear", "DequantizeLinear"})
_RUNTIME_WEIGHT_CLASSES = ("conv", "conv1x1", "dwconv", "deconv")
# ops ORT's CPU EP has no kernel for: it runs their ONNX function body, HardSwish(x) as
# HardSigmoid(x) then Mul(x, ·): (kernels launched, bytes moved relative to one x → y kernel)
_EXPANDED = {("HardSwish",): (2, 2.5)}
_CONVERSION_BYTES = (4 + 1) / 2  # a Q or DQ reads one element size and writes the other


def host_class(kernel: Kernel) -> str:
    """The calibrated class of `kernel` (see the module docstring)."""
    if kernel.op_types and set(kernel.op_types) <= _QUANTIZE_OPS:
        return "quantize"
    cls = kernel.cls
    if cls == "conv" and kernel.pointwise:
        cls = "conv1x1"
    elif cls == "conv" and kernel.narrow_input and not kernel.runtime_weights:
        cls = "conv_stem"
    if kernel.op_types and kernel.op_types[0] == "ConvTranspose":
        cls = "deconv"
    if kernel.runtime_weights and cls in _RUNTIME_WEIGHT_CLASSES:
        return f"{cls}_rw"
    return cls


def kernel_bytes(kernel: Kernel, precision: str, batch: int = 1) -> float:
    """Bytes `kernel` moves for `batch` images when it runs at `precision` (weights once)."""
    act, weight = ELEMENT_BYTES[precision]
    if host_class(kernel) == "quantize":
        act = _CONVERSION_BYTES
    return kernel.activation_elements * act * batch + kernel.weight_elements * weight


class HostTimes:
    """Kernel times of one graph at one precision on this host (see the module docstring)."""

    def __init__(self, calibration, precision: str, kernels: Sequence[Kernel]) -> None:
        self.calibration = calibration
        self.precision = precision
        self.integer = HOST_PRECISIONS[precision] != "fp32"
        # a QDQ graph says which kernels run on int8; a float graph is priced all-int8
        self.quantized_graph = any(k.int8 for k in kernels)

    def runs_int8(self, kernel: Kernel) -> bool:
        return kernel.int8 if self.quantized_graph else self.integer

    def kernel_time(self, kernel: Kernel, batch: int = 1) -> tuple[float, float, float]:
        """(compute seconds, memory seconds, total seconds) of `kernel` for `batch` images."""
        integer = self.runs_int8(kernel)
        constants = HOST_PRECISIONS[self.precision] if integer else "fp32"
        cls = host_class(kernel)
        compute = kernel.flops * batch / (self.calibration.gflops[constants][cls] * 1e9)
        moved = kernel_bytes(kernel, self.precision if integer else "fp32", batch)
        memory = moved / (self.calibration.bandwidth_gbs * 1e9)
        if not (kernel.flops or moved):
            return 0.0, 0.0, 0.0
        launches, reads = _EXPANDED.get(tuple(kernel.op_types), (1, 1.0))
        fixed = self.calibration.fixed_us[constants][cls] + self.calibration.switch_us
        fixed *= launches * 1e-6
        return compute, reads * memory, fixed + max(compute, reads * memory)

    def ms_and_bound(self, kernel: Kernel, batch: int = 1) -> tuple[float, str]:
        """(milliseconds, what bounds it: "compute" | "memory" | "launch") of `kernel`."""
        compute, memory, seconds = self.kernel_time(kernel, batch)
        return seconds * 1e3, bound(compute, memory, seconds)
