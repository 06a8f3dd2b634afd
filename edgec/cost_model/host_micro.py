"""Micro-benchmarks that calibrate the host's cost model: small ONNX graphs timed in ORT.

Each benchmark is a chain of `repeat` copies of one op at a shape typical of efficient vision
transformers at 224 px (28×28 / 14×14 feature maps, 49–196 tokens, 64–192 channels), run in
ONNX Runtime (CPU EP, ORT_ENABLE_ALL, the session options every edgec session uses) at the
compile's thread count. Its kernels are counted by the same code the estimate uses
(`group_kernels` with `fusion.ORT_CPU`), so what a benchmark measures is exactly the FLOPs and
bytes the estimate will divide by:

    launch      Sigmoid on 16 floats, 16 and 160 times   → per-call cost (µs)
    peak        MatMul 128×256·256×256                   → the unit's matmul throughput
    class       small size                 large size
    conv        1×1 32→32 on 7×7            3×3 32→32 on 28×28 and 1×1 128→128 on 14×14
    dwconv      3×3, 64 channels, 7×7       3×3, 128 channels, 28×28
    matmul      16×32·32×64 (and back)      196×192·192×384 (and back): token-wise linears
    attention   2 × 16×16·16×16             4 × 196×32·32×196 (and back): Q·Kᵀ, P·V
    norm        LayerNorm over 16×64        LayerNorm over 196×192
    softmax     2×16×16                     4×196×196
    elementwise Add of two 64×4×4           Add of two 128×28×28 activations
    layout      Split + Concat swapping the channel halves of 64×4×4 / 128×28×28

`w8a8` repeats peak, conv, dwconv and matmul as QDQ graphs (uint8 activations, int8 weights),
which ORT runs as QLinearConv / QLinearMatMul. The benchmarks are timed interleaved, round by
round (`runtimes.measure.measure_interleaved`), so a change in machine load hits all alike; a
benchmark's time is, at one thread, the median CPU time of its calls (`cpu_time`: what the
call costs on an idle core, even while other processes load the machine), at more threads the
10th-percentile wall time (each call lasts about a millisecond on an idle core; on a shared
machine the median is the scheduler's, the fast calls are the CPU's).
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx_ir as ir
from onnx import TensorProto, helper, numpy_helper

from edgec.cost_model.cpu_time import interleaved_with_cpu_time
from edgec.cost_model.fusion import ORT_CPU
from edgec.cost_model.hardware import ELEMENT_BYTES
from edgec.cost_model.kernels import group_kernels

__all__ = ["MICRO_VERSION", "MicroResult", "run_micro_benchmarks"]

MICRO_VERSION = 2  # bump when a benchmark changes: cached calibrations are then re-measured
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


def _graph(nodes, x_shape, y_shape, inits, extra_inputs=()) -> ir.Model:
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape), *extra_inputs]
    out = [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)]
    graph = helper.make_graph(nodes, "micro", inputs, out, initializer=inits)
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


def _quantized(op_nodes, inits, qdq: bool):
    """Wrap each op's activation input in QuantizeLinear → DequantizeLinear (uint8) when `qdq`,
    and read its weights through DequantizeLinear of int8 initializers."""
    if not qdq:
        return op_nodes
    inits += [
        numpy_helper.from_array(np.array(0.05, np.float32), "a_scale"),
        numpy_helper.from_array(np.array(128, np.uint8), "a_zero"),
    ]

    def wrapped(i, src, dst):
        nodes = [
            helper.make_node("QuantizeLinear", [src, "a_scale", "a_zero"], [f"q{i}"]),
            helper.make_node("DequantizeLinear", [f"q{i}", "a_scale", "a_zero"], [f"dq{i}"]),
        ]
        return nodes + op_nodes(i, f"dq{i}", dst)

    return wrapped


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


def _conv_bench(channels, size, kernel, group, n, qdq, rng) -> ir.Model:
    inits: list = []
    pad = kernel // 2

    def op(i, src, dst):
        shape = (channels, channels // group, kernel, kernel)
        nodes, name = _weight_input(inits, rng, shape, i, qdq)
        conv = helper.make_node(
            "Conv", [src, name], [dst], pads=[pad] * 4, group=group, kernel_shape=[kernel] * 2
        )
        return [*nodes, conv]

    shape = [1, channels, size, size]
    nodes = _chain(_quantized(op, inits, qdq), n)
    return _graph(nodes, shape, shape, inits)


def _linear_bench(tokens, width, n, qdq, rng, widen: bool = True) -> ir.Model:
    """Token-wise linear layers (MatMul by a weight): width → width, or alternately widening
    and narrowing (width ↔ 2·width)."""
    inits: list = []

    def op(i, src, dst):
        shape = (width, 2 * width) if i % 2 == 0 else (2 * width, width)
        nodes, name = _weight_input(inits, rng, shape if widen else (width, width), i, qdq)
        return [*nodes, helper.make_node("MatMul", [src, name], [dst])]

    n += n % 2
    nodes = _chain(_quantized(op, inits, qdq), n)
    return _graph(nodes, [tokens, width], [tokens, width], inits)


def _attention_bench(heads, tokens, dim, n, rng) -> ir.Model:
    """Q·Kᵀ-shaped products of two activations: t ← (t·kᵀ)·k/… alternating [T,T] and [T,d]."""
    k = helper.make_tensor_value_info("k", TensorProto.FLOAT, [heads, tokens, dim])
    kt = helper.make_tensor_value_info("kt", TensorProto.FLOAT, [heads, dim, tokens])
    n += n % 2

    def op(i, src, dst):
        return [helper.make_node("MatMul", [src, "kt" if i % 2 == 0 else "k"], [dst])]

    shape = [heads, tokens, dim]
    return _graph(_chain(op, n), shape, shape, [], [k, kt])


def _unary_bench(op_type, shape, n, **attrs) -> ir.Model:
    nodes = _chain(lambda i, s, d: [helper.make_node(op_type, [s], [d], **attrs)], n)
    return _graph(nodes, shape, shape, [])


def _norm_bench(tokens, width, n, rng) -> ir.Model:
    inits = [_weights(rng, (width,), "g"), _weights(rng, (width,), "b")]
    nodes = _chain(
        lambda i, s, d: [helper.make_node("LayerNormalization", [s, "g", "b"], [d], axis=-1)], n
    )
    return _graph(nodes, [tokens, width], [tokens, width], inits)


def _add_bench(shape, n) -> ir.Model:
    other = helper.make_tensor_value_info("r", TensorProto.FLOAT, shape)
    nodes = _chain(lambda i, s, d: [helper.make_node("Add", [s, "r"], [d])], n)
    return _graph(nodes, shape, shape, [], [other])


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

    rng = np.random.default_rng(0)
    benches = [
        ("launch_s", "launch", "fp32", lambda: _unary_bench("Sigmoid", [1, 16], 2 * n)),
        ("launch_l", "launch", "fp32", lambda: _unary_bench("Sigmoid", [1, 16], 20 * n)),
        ("attention_s", "attention", "fp32", lambda: _attention_bench(2, 16, 16, n, rng)),
        ("attention_l", "attention", "fp32", lambda: _attention_bench(4, s(196), 32, half, rng)),
        ("norm_s", "norm", "fp32", lambda: _norm_bench(16, 64, n, rng)),
        ("norm_l", "norm", "fp32", lambda: _norm_bench(s(196), 192, n, rng)),
        ("softmax_s", "softmax", "fp32", lambda: _unary_bench("Softmax", [2, 16, 16], n)),
        ("softmax_l", "softmax", "fp32", lambda: _unary_bench("Softmax", [4, s(196), s(196)], n)),
        ("elementwise_s", "elementwise", "fp32", lambda: _add_bench([1, 64, 4, 4], n)),
        ("elementwise_l", "elementwise", "fp32", lambda: _add_bench([1, 128, s(28), s(28)], n)),
        ("layout_s", "layout", "fp32", lambda: _swap_bench(64, 4, n)),
        ("layout_l", "layout", "fp32", lambda: _swap_bench(128, s(28), n)),
    ]
    for precision, qdq in (("fp32", False), ("w8a8", True)):
        benches += [
            (f"peak_{precision}", "peak", precision,
             lambda q=qdq: _linear_bench(s(128), 256, half, q, rng, widen=False)),
            (f"conv_s_{precision}", "conv", precision,
             lambda q=qdq: _conv_bench(32, 7, 1, 1, n, q, rng)),
            (f"conv3x3_l_{precision}", "conv", precision,
             lambda q=qdq: _conv_bench(32, s(28), 3, 1, half, q, rng)),
            (f"conv1x1_l_{precision}", "conv", precision,
             lambda q=qdq: _conv_bench(128, s(14), 1, 1, n, q, rng)),
            (f"dwconv_s_{precision}", "dwconv", precision,
             lambda q=qdq: _conv_bench(64, 7, 3, 64, n, q, rng)),
            (f"dwconv_l_{precision}", "dwconv", precision,
             lambda q=qdq: _conv_bench(128, s(28), 3, 128, n, q, rng)),
            (f"matmul_s_{precision}", "matmul", precision,
             lambda q=qdq: _linear_bench(16, 32, n, q, rng)),
            (f"matmul_l_{precision}", "matmul", precision,
             lambda q=qdq: _linear_bench(s(196), 192, 2, q, rng)),
        ]  # fmt: skip
    return benches


def run_micro_benchmarks(
    threads: int, *, scale: float = 1.0, rounds: int = 20
) -> list[MicroResult]:
    """Time every benchmark in ONNX Runtime at `threads`, interleaved (`rounds` rounds of 3
    calls each); `scale` < 1 shrinks them (tests)."""
    from edgec.runtimes import ort

    benches = _benchmarks(scale)
    models, calls = {}, {}
    with tempfile.TemporaryDirectory(prefix="edgec-micro-") as tmp:
        for name, _, _, build in benches:
            models[name] = build()
            path = Path(tmp) / f"{name}.onnx"
            ir.save(models[name], path)
            runner = ort.load(path, threads=threads)
            calls[name] = runner.bound(runner.example_feeds())
        wall, cpu = interleaved_with_cpu_time(
            calls, rounds=rounds, per_round=3, warmup=2, threads=threads
        )
    results = []
    for name, cls, precision, _ in benches:
        kernels = group_kernels(models[name], rules=ORT_CPU)
        act, weight = ELEMENT_BYTES[precision]
        results.append(
            MicroResult(
                name=name,
                cls=cls,
                precision=precision,
                kernels=sum(1 for k in kernels if k.flops or k.activation_elements),
                flops=float(sum(k.flops for k in kernels)),
                bytes=float(
                    sum(k.activation_elements * act + k.weight_elements * weight for k in kernels)
                ),
                seconds=cpu[name] if threads == 1 else wall[name].p10_ms / 1e3,
                median_seconds=wall[name].p50_ms / 1e3,
            )
        )
    return results
