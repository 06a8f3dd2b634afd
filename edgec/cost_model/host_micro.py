"""Micro-benchmarks that calibrate the host's cost model: small ONNX graphs timed in ORT.

Each benchmark is a chain of `repeat` copies of one op at a shape typical of efficient vision
transformers at 224 px (28×28 / 14×14 feature maps, 49–196 tokens, 64–192 channels), run in
ONNX Runtime (CPU EP, ORT_ENABLE_ALL, the session options every edgec session uses) at the
compile's thread count. Its kernels are counted by the same code the estimate uses
(`group_kernels` with `fusion.ORT_CPU`), so what a benchmark measures is exactly the FLOPs and
bytes the estimate will divide by:

    launch      Sigmoid on 16 floats, 16 and 160 times   → per-call cost (µs)
    switch      (1×1 conv → dwconv → Mul → Sigmoid) × 4 on 64×14×14 → per-kernel cost of
                switching between kernels, beyond the classes' own constants
    peak        MatMul 128×256·256×256                   → the unit's matmul throughput
    class       small size                 large size
    conv        3×3 16→16 on 7×7            3×3 32→32 on 28×28, and 3×3 stride 2 16→32→64→128
                                            from 112×112 (a stem / downsampling)
    conv1x1     1×1 32→32 on 7×7            1×1 128→128 on 14×14 and 256→256 on 7×7
    dwconv      3×3, 64 channels, 7×7       3×3, 128 channels, 28×28
    matmul      16×32·32×64 (and back)      196×192·192×384 (and back): token-wise linears
    attention   2 × 16×16·16×16             4 × 196×32·32×196 (and back): Q·Kᵀ, P·V
    norm        LayerNorm over 16×64        LayerNorm over 196×192
    softmax     2×16×16                     4×196×196
    elementwise Add of two 64×4×4           Add of two 128×28×28 activations
    layout      Split + Concat swapping the channel halves of 64×4×4 / 128×28×28
    quantize    QuantizeLinear and DequantizeLinear of 64×4×4 / 128×28×28, side by side
    conv_rw     3×3 16→16 on 7×7            3×3 64 ↔ 256 on 28×28, the  } float convs reading
                                            stride-2 chain above      }
    conv1x1_rw  1×1 32→32 on 7×7            1×1 128 ↔ 512 on 14×14    } DequantizeLinear(int8
    dwconv_rw   3×3, 64 channels, 7×7       3×3, 128 channels, 28×28  } weights) (`host_time`)
    conv_stem   3×3 stride 2, 3→16 of 16×16 and of 224×224 images, each of its own input
                (an RGB stem: fewer input channels than an NCHWc block)
    deconv      ConvTranspose 4×4 stride 2, 16→32 on 4×4 / 64→128 on 14×14 (side by side),
                and as deconv_rw with DequantizeLinear(int8) weights

`w8a8` repeats peak, conv, conv1x1, dwconv, matmul, attention and elementwise as QDQ graphs
(uint8 activations, int8 weights) in which every copy of the op has a DQ on each input and a
Q on its output (the last one too: a chain whose last op wrote the graph's float output ran
that op in float), so that ORT runs each as QLinearConv / QLinearMatMul / QLinearAdd
(`ort_qdq` says so, and a test checks it against ORT's optimized graph).

The benchmarks are timed interleaved, round by round (`runtimes.measure.measure_interleaved`),
so a change in machine load hits all alike; a benchmark's time is, at one thread, the median
CPU time of its calls (`cpu_time`: what the call costs on an idle core, even while other
processes load the machine), at more threads the 10th-percentile wall time (each call lasts
about a millisecond on an idle core; on a shared machine the median is the scheduler's, the
fast calls are the CPU's).
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx_ir as ir
from onnx import TensorProto, helper, numpy_helper

from edgec.cost_model.cpu_time import interleaved_with_cpu_time
from edgec.cost_model.fusion import ORT_CPU
from edgec.cost_model.host_time import host_class, kernel_bytes
from edgec.cost_model.kernels import group_kernels

__all__ = ["MICRO_VERSION", "ROUNDS", "MicroResult", "run_micro_benchmarks", "run_with"]

ROUNDS = 60  # of the first-use calibration (about 3 s at one thread)
MICRO_VERSION = 5  # bump when a benchmark changes: cached calibrations are then re-measured
_CHAIN = 8  # copies of the op per benchmark graph (times `scale` in quick runs)


@dataclasses.dataclass(frozen=True)
class MicroResult:
    """One benchmark: the class it calibrates, what its kernels compute and move, its time."""

    name: str
    cls: str
    precision: str
    kernels: int
    flops: float
    bytes: float
    seconds: float  # one call: median CPU time at 1 thread, else the 10th-percentile wall time
    median_seconds: float  # median wall time
    parts: tuple[tuple[str, float, float], ...] = ()  # (host class, FLOPs, bytes) per kernel


def _graph(nodes, x_shape, y_shape, inits, extra_inputs=()) -> ir.Model:
    """A benchmark graph x → … → y (plus `extra_inputs`)."""
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape), *extra_inputs]
    out = [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)]
    return _model(nodes, inputs, out, inits)


def _model(nodes, inputs, outputs, inits) -> ir.Model:
    """A benchmark graph of the given nodes, inputs, outputs and initializers (opset 18)."""
    graph = helper.make_graph(nodes, "micro", inputs, outputs, initializer=inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    return ir.serde.deserialize_model(proto)


def _weights(rng, shape, name) -> TensorProto:
    fan_in = int(np.prod(shape[1:])) or 1
    data = (rng.standard_normal(shape) / np.sqrt(fan_in)).astype(np.float32)
    return numpy_helper.from_array(data, name)


def _chain(op_nodes: Callable[[int, str, str], list], n: int) -> list:
    """`n` copies of an op, each reading the last one's output: x → … → y."""
    nodes = []
    for i in range(n):
        src = "x" if i == 0 else f"t{i}"
        dst = "y" if i == n - 1 else f"t{i + 1}"
        nodes += op_nodes(i, src, dst)
    return nodes


def _qdq(src: str, name: str) -> list:
    """QuantizeLinear → DequantizeLinear (uint8, zero point 128) of `src`, ending in `name`."""
    return [
        helper.make_node("QuantizeLinear", [src, "a_scale", "a_zero"], [f"{name}_q"]),
        helper.make_node("DequantizeLinear", [f"{name}_q", "a_scale", "a_zero"], [name]),
    ]


def _activation_scale(inits: list) -> None:
    inits += [
        numpy_helper.from_array(np.array(0.05, np.float32), "a_scale"),
        numpy_helper.from_array(np.array(128, np.uint8), "a_zero"),
    ]


def _op_chain(op_nodes: Callable[[int, str, str], list], n: int, inits: list, qdq: bool) -> list:
    """`n` copies of an op (`_chain`); when `qdq`, each reads its activation through
    QuantizeLinear → DequantizeLinear (uint8) and the last output is quantized too, so that
    ORT runs every copy as an integer kernel (`ort_qdq`): x → Q → DQ → op → … → Q → DQ → y."""
    if not qdq:
        return _chain(op_nodes, n)
    _activation_scale(inits)

    def wrapped(i, src, dst):
        return _qdq(src, f"dq{i}") + op_nodes(i, f"dq{i}", "last" if dst == "y" else dst)

    return _chain(wrapped, n) + _qdq("last", "y")


def _int8_weight(inits, w: TensorProto, i: int) -> tuple[list, str]:
    """DequantizeLinear of an int8 copy of `w` (per-tensor scale): (nodes, dequantized name)."""
    data = numpy_helper.to_array(w)
    scale = float(np.abs(data).max() / 127 or 1.0)
    inits += [
        numpy_helper.from_array(np.round(data / scale).astype(np.int8), f"wq{i}"),
        numpy_helper.from_array(np.array(scale, np.float32), f"ws{i}"),
    ]
    return [helper.make_node("DequantizeLinear", [f"wq{i}", f"ws{i}"], [f"wd{i}"])], f"wd{i}"


def _weight_input(inits: list, rng, shape, i: int, qdq: bool) -> tuple[list, str]:
    """A random weight of `shape` for op `i`: an initializer, or DequantizeLinear of its int8
    copy in QDQ graphs. Returns (nodes to add, the name the op reads)."""
    w = _weights(rng, shape, f"w{i}")
    if qdq:
        return _int8_weight(inits, w, i)
    inits.append(w)
    return [], f"w{i}"


def _conv_bench(
    channels, size, kernel, group, n, qdq, rng, runtime_weights=False, expand=1
) -> ir.Model:
    """Convolutions, channels → channels, or alternately expanding and narrowing by `expand`
    (an inverted bottleneck's widths); `runtime_weights`: float ones reading
    DequantizeLinear(int8 weight), as in the float islands of a QDQ graph (ORT dequantizes
    those weights at every run)."""
    inits: list = []
    pad = kernel // 2
    wide = channels * expand
    n += n % 2 if expand > 1 else 0

    def op(i, src, dst):
        out, into = (wide, channels) if i % 2 == 0 else (channels, wide)
        if expand == 1:
            out = into = channels
        shape = (out, into // group, kernel, kernel)
        nodes, name = _weight_input(inits, rng, shape, i, qdq or runtime_weights)
        conv = helper.make_node(
            "Conv", [src, name], [dst], pads=[pad] * 4, group=group, kernel_shape=[kernel] * 2
        )
        return [*nodes, conv]

    shape = [1, channels, size, size]
    return _graph(_op_chain(op, n, inits, qdq), shape, shape, inits)


def _downsample_bench(channels, size, n, qdq, rng, runtime_weights=False) -> ir.Model:
    """`n` 3×3 stride-2 convolutions, each halving the size and doubling the channels (a
    patch-embedding stem or a stage's downsampling: channels@size → 2·channels@size/2 → …)."""
    inits: list = []

    def op(i, src, dst):
        shape = (channels * 2 ** (i + 1), channels * 2**i, 3, 3)
        nodes, name = _weight_input(inits, rng, shape, i, qdq or runtime_weights)
        conv = helper.make_node("Conv", [src, name], [dst], pads=[1] * 4, strides=[2, 2])
        return [*nodes, conv]

    out = [1, channels * 2**n, size // 2**n, size // 2**n]
    return _graph(_op_chain(op, n, inits, qdq), [1, channels, size, size], out, inits)


def _switch_bench(channels, size, cycles, rng) -> ir.Model:
    """A model-like chain: `cycles` × (1×1 conv → depthwise 3×3 → Mul by a second input →
    Sigmoid), kernels of different classes in turn. A chain of one op keeps that op's code and
    data hot; here each kernel follows a different one, as in a model, and what this costs
    beyond the classes' own constants is the per-kernel switch cost."""
    inits: list = []

    def op(i, src, dst):
        inits.append(_weights(rng, (channels, channels, 1, 1), f"p{i}"))
        inits.append(_weights(rng, (channels, 1, 3, 3), f"d{i}"))
        return [
            helper.make_node("Conv", [src, f"p{i}"], [f"c{i}"]),
            helper.make_node("Conv", [f"c{i}", f"d{i}"], [f"w{i}"], pads=[1] * 4, group=channels),
            helper.make_node("Mul", [f"w{i}", "r"], [f"m{i}"]),
            helper.make_node("Sigmoid", [f"m{i}"], [dst]),
        ]

    shape = [1, channels, size, size]
    other = helper.make_tensor_value_info("r", TensorProto.FLOAT, shape)
    return _graph(_chain(op, cycles), shape, shape, inits, [other])


def _stem_bench(channels, size, n, rng) -> ir.Model:
    """`n` image stems: 3×3 stride-2 convolutions of an RGB input (3 channels, fewer than an
    NCHWc block) to `channels`, each of its own input (a model reads its image once, from
    memory) and each read by a GlobalAveragePool (which keeps the NCHWc output blocked, as the
    next conv of a model does, instead of reordering it back to NCHW as a graph output)."""
    inits: list = []
    nodes, inputs, outputs = [], [], []
    for i in range(n):
        weight_nodes, name = _weight_input(inits, rng, (channels, 3, 3, 3), i, False)
        stem = helper.make_node("Conv", [f"x{i}", name], [f"s{i}"], pads=[1] * 4, strides=[2, 2])
        pool = helper.make_node("GlobalAveragePool", [f"s{i}"], [f"y{i}"])
        nodes += [*weight_nodes, stem, pool]
        inputs.append(helper.make_tensor_value_info(f"x{i}", TensorProto.FLOAT, [1, 3, size, size]))
        outputs.append(
            helper.make_tensor_value_info(f"y{i}", TensorProto.FLOAT, [1, channels, 1, 1])
        )
    return _model(nodes, inputs, outputs, inits)


def _deconv_bench(channels, size, n, rng, runtime_weights=False) -> ir.Model:
    """`n` transposed convolutions (4×4, stride 2: a 2× upsampling, channels → 2·channels) of
    one input, side by side (each doubles the size, so they do not chain)."""
    inits: list = []
    nodes, outputs = [], []
    out = [1, 2 * channels, 2 * size, 2 * size]
    for i in range(n):
        shape = (channels, 2 * channels, 4, 4)
        weight_nodes, name = _weight_input(inits, rng, shape, i, runtime_weights)
        upsample = helper.make_node(
            "ConvTranspose", ["x", name], [f"y{i}"], strides=[2, 2], pads=[1] * 4
        )
        nodes += [*weight_nodes, upsample]
        outputs.append(helper.make_tensor_value_info(f"y{i}", TensorProto.FLOAT, out))
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels, size, size])]
    return _model(nodes, inputs, outputs, inits)


def _linear_bench(tokens, width, n, qdq, rng, widen: bool = True) -> ir.Model:
    """Token-wise linear layers (MatMul by a weight): width → width, or alternately widening
    and narrowing (width ↔ 2·width)."""
    inits: list = []

    def op(i, src, dst):
        shape = (width, 2 * width) if i % 2 == 0 else (2 * width, width)
        nodes, name = _weight_input(inits, rng, shape if widen else (width, width), i, qdq)
        return [*nodes, helper.make_node("MatMul", [src, name], [dst])]

    n += n % 2
    return _graph(_op_chain(op, n, inits, qdq), [tokens, width], [tokens, width], inits)


def _attention_bench(heads, tokens, dim, n, qdq) -> ir.Model:
    """Q·Kᵀ-shaped products of two activations: t ← (t·kᵀ)·k/… alternating [T,T] and [T,d]
    (in QDQ graphs, QLinearMatMul of two uint8 activations)."""
    k = helper.make_tensor_value_info("k", TensorProto.FLOAT, [heads, tokens, dim])
    kt = helper.make_tensor_value_info("kt", TensorProto.FLOAT, [heads, dim, tokens])
    n += n % 2
    inits: list = []
    others = _qdq("k", "kd") + _qdq("kt", "ktd") if qdq else []
    k_name, kt_name = ("kd", "ktd") if qdq else ("k", "kt")

    def op(i, src, dst):
        return [helper.make_node("MatMul", [src, kt_name if i % 2 == 0 else k_name], [dst])]

    shape = [heads, tokens, dim]
    nodes = _op_chain(op, n, inits, qdq)
    return _graph(others + nodes, shape, shape, inits, [k, kt])


def _unary_bench(op_type, shape, n, **attrs) -> ir.Model:
    nodes = _chain(lambda i, s, d: [helper.make_node(op_type, [s], [d], **attrs)], n)
    return _graph(nodes, shape, shape, [])


def _norm_bench(tokens, width, n, rng) -> ir.Model:
    inits = [_weights(rng, (width,), "g"), _weights(rng, (width,), "b")]
    nodes = _chain(
        lambda i, s, d: [helper.make_node("LayerNormalization", [s, "g", "b"], [d], axis=-1)], n
    )
    return _graph(nodes, [tokens, width], [tokens, width], inits)


def _add_bench(shape, n, qdq: bool = False) -> ir.Model:
    """Adds of a second activation (in QDQ graphs, QLinearAdd of two uint8 tensors)."""
    other = helper.make_tensor_value_info("r", TensorProto.FLOAT, shape)
    inits: list = []
    r = "rd" if qdq else "r"
    nodes = _op_chain(lambda i, s, d: [helper.make_node("Add", [s, r], [d])], n, inits, qdq)
    return _graph((_qdq("r", "rd") if qdq else []) + nodes, shape, shape, inits, [other])


def _conversion_bench(shape, n) -> ir.Model:
    """`n` QuantizeLinear of a float input and `n` DequantizeLinear of a uint8 input, each with
    a scale of its own (side by side: ORT removes Q → DQ → Q chains), all graph outputs."""
    inits, nodes, outputs = [], [], []
    for i in range(n):
        inits += [
            numpy_helper.from_array(np.array(0.05 + 0.001 * i, np.float32), f"s{i}"),
            numpy_helper.from_array(np.array(128, np.uint8), f"z{i}"),
        ]
        nodes += [
            helper.make_node("QuantizeLinear", ["x", f"s{i}", f"z{i}"], [f"q{i}"]),
            helper.make_node("DequantizeLinear", ["xq", f"s{i}", f"z{i}"], [f"d{i}"]),
        ]
        outputs += [
            helper.make_tensor_value_info(f"q{i}", TensorProto.UINT8, shape),
            helper.make_tensor_value_info(f"d{i}", TensorProto.FLOAT, shape),
        ]
    inputs = [
        helper.make_tensor_value_info("x", TensorProto.FLOAT, shape),
        helper.make_tensor_value_info("xq", TensorProto.UINT8, shape),
    ]
    return _model(nodes, inputs, outputs, inits)


def _swap_bench(channels, size, n) -> ir.Model:
    """Split the channels in two halves and Concat them swapped (copies ORT cannot remove;
    consecutive Transposes it would cancel)."""

    def op(i, src, dst):
        return [
            helper.make_node("Split", [src], [f"a{i}", f"b{i}"], axis=1, num_outputs=2),
            helper.make_node("Concat", [f"b{i}", f"a{i}"], [dst], axis=1),
        ]

    shape = [1, channels, size, size]
    return _graph(_chain(op, n), shape, shape, [])


def _benchmarks(scale: float) -> list[tuple[str, str, str, Callable[[], ir.Model]]]:
    """(name, class, precision, graph builder) of every benchmark; `scale` shrinks them.

    Every class is benchmarked at a small and a large size (name suffix `_s`, `_l`), so that
    its fixed cost per kernel and its throughput can both be read off."""
    n = max(2, round(_CHAIN * scale))
    half = max(2, n // 2)

    def s(v: int) -> int:  # a spatial or token size, shrunk with the scale
        return max(4, round(v * min(1.0, scale)))

    stem = max(8, s(112) // 8 * 8)  # halved three times by the downsampling chains

    rng = np.random.default_rng(0)
    benches = [
        ("launch_s", "launch", "fp32", lambda: _unary_bench("Sigmoid", [1, 16], 2 * n)),
        ("launch_l", "launch", "fp32", lambda: _unary_bench("Sigmoid", [1, 16], 20 * n)),
        ("switch", "switch", "fp32", lambda: _switch_bench(64, s(14), max(2, n // 2), rng)),
        ("norm_s", "norm", "fp32", lambda: _norm_bench(16, 64, n, rng)),
        ("norm_l", "norm", "fp32", lambda: _norm_bench(s(196), 192, n, rng)),
        ("softmax_s", "softmax", "fp32", lambda: _unary_bench("Softmax", [2, 16, 16], n)),
        ("softmax_l", "softmax", "fp32", lambda: _unary_bench("Softmax", [4, s(196), s(196)], n)),
        ("quantize_s", "quantize", "fp32", lambda: _conversion_bench([1, 64, 4, 4], n)),
        ("quantize_l", "quantize", "fp32", lambda: _conversion_bench([1, 128, s(28), s(28)], n)),
        ("layout_s", "layout", "fp32", lambda: _swap_bench(64, 4, n)),
        ("layout_l", "layout", "fp32", lambda: _swap_bench(128, s(28), n)),
        ("conv3x3_rw_s", "conv_rw", "fp32",
         lambda: _conv_bench(16, 7, 3, 1, n, False, rng, runtime_weights=True)),
        ("conv3x3_rw_l", "conv_rw", "fp32",
         lambda: _conv_bench(64, s(28), 3, 1, 2, False, rng, runtime_weights=True, expand=4)),
        ("conv3x3_rw_down_l", "conv_rw", "fp32",
         lambda: _downsample_bench(16, stem, 3, False, rng, runtime_weights=True)),
        ("conv1x1_rw_s", "conv1x1_rw", "fp32",
         lambda: _conv_bench(32, 7, 1, 1, n, False, rng, runtime_weights=True)),
        ("conv1x1_rw_l", "conv1x1_rw", "fp32",
         lambda: _conv_bench(128, s(14), 1, 1, n, False, rng, runtime_weights=True, expand=4)),
        ("stem3x3_s", "conv_stem", "fp32", lambda: _stem_bench(16, 16, n, rng)),
        ("stem3x3_l", "conv_stem", "fp32", lambda: _stem_bench(16, 2 * stem, 2, rng)),
        ("deconv_s", "deconv", "fp32", lambda: _deconv_bench(16, 4, n, rng)),
        ("deconv_l", "deconv", "fp32", lambda: _deconv_bench(64, s(14), half, rng)),
        ("deconv_rw_s", "deconv_rw", "fp32", lambda: _deconv_bench(16, 4, n, rng, True)),
        ("deconv_rw_l", "deconv_rw", "fp32", lambda: _deconv_bench(64, s(14), half, rng, True)),
        ("dwconv_rw_s", "dwconv_rw", "fp32",
         lambda: _conv_bench(64, 7, 3, 64, n, False, rng, runtime_weights=True)),
        ("dwconv_rw_l", "dwconv_rw", "fp32",
         lambda: _conv_bench(128, s(28), 3, 128, n, False, rng, runtime_weights=True)),
    ]  # fmt: skip
    for precision, qdq in (("fp32", False), ("w8a8", True)):
        benches += [
            (f"peak_{precision}", "peak", precision,
             lambda q=qdq: _linear_bench(s(128), 256, half, q, rng, widen=False)),
            (f"conv3x3_s_{precision}", "conv", precision,
             lambda q=qdq: _conv_bench(16, 7, 3, 1, n, q, rng)),
            (f"conv3x3_l_{precision}", "conv", precision,
             lambda q=qdq: _conv_bench(32, s(28), 3, 1, half, q, rng)),
            (f"conv3x3_down_l_{precision}", "conv", precision,
             lambda q=qdq: _downsample_bench(16, stem, 3, q, rng)),
            (f"conv1x1_s_{precision}", "conv1x1", precision,
             lambda q=qdq: _conv_bench(32, 7, 1, 1, n, q, rng)),
            (f"conv1x1_l_{precision}", "conv1x1", precision,
             lambda q=qdq: _conv_bench(128, s(14), 1, 1, n, q, rng)),
            (f"conv1x1_wide_l_{precision}", "conv1x1", precision,
             lambda q=qdq: _conv_bench(256, s(7), 1, 1, n, q, rng)),
            (f"dwconv_s_{precision}", "dwconv", precision,
             lambda q=qdq: _conv_bench(64, 7, 3, 64, n, q, rng)),
            (f"dwconv_l_{precision}", "dwconv", precision,
             lambda q=qdq: _conv_bench(128, s(28), 3, 128, n, q, rng)),
            (f"matmul_s_{precision}", "matmul", precision,
             lambda q=qdq: _linear_bench(16, 32, n, q, rng)),
            (f"matmul_l_{precision}", "matmul", precision,
             lambda q=qdq: _linear_bench(s(196), 192, 2, q, rng)),
            (f"attention_s_{precision}", "attention", precision,
             lambda q=qdq: _attention_bench(2, 16, 16, n, q)),
            (f"attention_l_{precision}", "attention", precision,
             lambda q=qdq: _attention_bench(4, s(196), 32, half, q)),
            (f"elementwise_s_{precision}", "elementwise", precision,
             lambda q=qdq: _add_bench([1, 64, 4, 4], n, q)),
            (f"elementwise_l_{precision}", "elementwise", precision,
             lambda q=qdq: _add_bench([1, 128, s(28), s(28)], n, q)),
        ]  # fmt: skip
    return benches


def run_micro_benchmarks(
    threads: int, *, scale: float = 1.0, rounds: int = ROUNDS
) -> list[MicroResult]:
    """Time every benchmark in ONNX Runtime at `threads`, interleaved: `rounds` rounds of one
    call each, so that every timed call follows another benchmark's, as a model's kernel
    follows another kernel (with its own data hot from a call just before, a benchmark ran
    ~10 % faster than the same kernels in models, and its mixed-chain `switch` cost, a
    difference of such times, swung between 0 and 4 µs from one calibration to the next:
    EfficientViT-M0's estimate between 2.8 and 5.1 ms); `scale` < 1 shrinks them (tests)."""
    results, _, _ = run_with(threads, {}, scale=scale, rounds=rounds, per_round=1, warmup=2)
    return results


def run_with(
    threads: int,
    others: dict[str, Callable[[], object]],
    *,
    scale: float = 1.0,
    rounds: int = 20,
    per_round: int = 3,
    warmup: int = 2,
) -> tuple[list[MicroResult], dict[str, Any], dict[str, float]]:
    """The benchmarks and `others` (tag → call, e.g. whole models) timed in the same
    interleaved rounds, so that both see the same machine: a CPU whose other core (or SMT
    sibling) is busy runs a call slower even in CPU time, and load changes within minutes.
    Returns (benchmark results, wall-time stats of `others`, their median CPU seconds)."""
    from edgec.runtimes import ort

    benches = _benchmarks(scale)
    if set(others) & {name for name, *_ in benches}:
        raise ValueError("a tag of `others` is also a benchmark's name")
    models, calls = {}, dict(others)
    with tempfile.TemporaryDirectory(prefix="edgec-micro-") as tmp:
        for name, _, _, build in benches:
            models[name] = build()
            path = Path(tmp) / f"{name}.onnx"
            ir.save(models[name], path)
            runner = ort.load(path, threads=threads)
            calls[name] = runner.bound(runner.example_feeds())
        wall, cpu = interleaved_with_cpu_time(
            calls, rounds=rounds, per_round=per_round, warmup=warmup, threads=threads
        )
    results = []
    for name, cls, precision, _ in benches:
        kernels = group_kernels(models[name], rules=ORT_CPU)
        at = {id(k): precision if k.int8 else "fp32" for k in kernels}
        parts = tuple(
            (host_class(k), float(k.flops), float(kernel_bytes(k, at[id(k)])))
            for k in kernels
            if k.flops or k.activation_elements
        )
        results.append(
            MicroResult(
                name=name,
                cls=cls,
                precision=precision,
                kernels=sum(1 for k in kernels if k.flops or k.activation_elements),
                flops=float(sum(k.flops for k in kernels)),
                bytes=float(sum(kernel_bytes(k, precision if k.int8 else "fp32") for k in kernels)),
                seconds=cpu[name] if threads == 1 else wall[name].p10_ms / 1e3,
                median_seconds=wall[name].p50_ms / 1e3,
                parts=parts,
            )
        )
    return results, {t: wall[t] for t in others}, {t: cpu[t] for t in others}
