"""Lower a float ONNX graph, node by node, to the integer building blocks of this package.

`Lowering` walks the float graph in order and keeps, for every float tensor, the `QTensor`
that stands for it in the new integer graph. Each op type has one rule (`RULES`). Scales come
from calibrated float ranges (`ranges[name] = (lo, hi)`), symmetric: S = max|range| / (2^(b−1)−1).

Bit widths (I-ViT, models-b.md §3.3): int8 operands of every MatMulInteger / ConvInteger;
16 bits for everything a rule produces (residual stream, normalisation, activations, softmax
logits); 8-bit Shiftmax output (scale 2^−7); int32 accumulators; int8 weights; int32 biases.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import onnx_ir as ir

from edgec.passes._graph import const_array
from edgec.passes.integer import (
    activations,
    arith,
    groupnorm,
    layernorm,
    linear,
    resize,
    shiftgelu,
    shiftmax,
)
from edgec.passes.integer.emit import Emitter, QTensor
from edgec.passes.integer.patterns import Fusion, fusions

OPERAND_BITS = 8
STREAM_BITS = 16
SOFTMAX_MAX_FRACTION = 15  # Shiftmax output scale no finer than 2^−15 (shiftmax.py says why)
PASS_THROUGH = {
    "Reshape", "Transpose", "Slice", "Squeeze", "Unsqueeze", "Flatten", "Gather", "Split",
    "Identity", "Expand", "Pad", "Dropout",
}  # fmt: skip


@dataclasses.dataclass
class Lowering:
    em: Emitter
    ranges: dict[str, tuple[float, float]]
    values: dict[int, QTensor] = dataclasses.field(default_factory=dict)
    absorbed: set[int] = dataclasses.field(default_factory=set)  # bias Adds folded into int32

    def scale(self, value: ir.Value, bits: int = STREAM_BITS) -> float:
        lo, hi = self.ranges[value.name]
        return max(abs(lo), abs(hi), 1e-8) / (2 ** (bits - 1) - 1)

    def q(self, value: ir.Value) -> QTensor:
        return self.values[id(value)]

    def operand(self, value: ir.Value) -> QTensor:
        """value as an int8 operand of an integer matrix product."""
        x = self.q(value)
        if x.bits <= OPERAND_BITS:
            return x
        return arith.requantize(self.em, x, self.scale(value, OPERAND_BITS), OPERAND_BITS)

    def stream(self, value: ir.Value, x: QTensor) -> QTensor:
        """x requantized to value's calibrated 16-bit scale, recorded as value's QTensor."""
        out = arith.requantize(self.em, x, self.scale(value), STREAM_BITS)
        self.values[id(value)] = out
        return out

    def constant(self, array: np.ndarray, bits: int = STREAM_BITS) -> QTensor:
        scale = max(float(np.abs(array).max()), 1e-8) / (2 ** (bits - 1) - 1)
        q = self.em.const(np.round(array / scale), np.int32, hint="const")
        return QTensor(q, scale, bits)

    def input_or_constant(self, value: ir.Value) -> QTensor:
        array = const_array(value)
        return self.constant(array.astype(np.float64)) if array is not None else self.q(value)

    def copy_const(self, value: ir.Value | None) -> ir.Value | None:
        if value is None:
            return None
        array = const_array(value)
        return self.em.const(array, array.dtype.type, hint="arg")


def constant_nodes(graph: ir.Graph) -> set[int]:
    """ids of the nodes that read only constants, directly or through other such nodes (the
    pass folds them before lowering, whatever their size: e.g. a resized position table)."""
    constant: set[int] = set()
    for node in graph:
        if all(
            v is None or const_array(v) is not None or id(v.producer()) in constant
            for v in node.inputs
        ) and not any(o.is_graph_output() for o in node.outputs):
            constant.add(id(node))
    return constant


def unsupported_ops(graph: ir.Graph) -> dict[str, list[str]]:
    """Op type → node names of the float ops this lowering has no integer form for."""
    absorbed = {id(n) for f in fusions(graph).values() for n in f.nodes} | constant_nodes(graph)
    missing: dict[str, list[str]] = {}
    for node in graph:
        if id(node) in absorbed:
            continue
        if node.op_type not in RULES and node.op_type not in PASS_THROUGH:
            missing.setdefault(node.op_type, []).append(node.name or "?")
        elif node.op_type in _CHECKS and (why := _CHECKS[node.op_type](node)):
            missing.setdefault(f"{node.op_type} ({why})", []).append(node.name or "?")
    return missing


def lower_graph(low: Lowering, graph: ir.Graph) -> None:
    """Emit the integer form of every node of `graph` (inputs already in `low.values`)."""
    fused = fusions(graph)
    absorbed = {id(n) for f in fused.values() for n in f.nodes}
    for node in graph:
        if id(node) in fused:
            fusion = fused[id(node)]
            _FUSED[fusion.kind](low, fusion)
        elif id(node) in absorbed or const_array(node.outputs[0]) is not None:
            continue
        elif node.op_type in PASS_THROUGH:
            _pass_through(low, node)
        else:
            RULES[node.op_type](low, node)


def _pass_through(low: Lowering, node: ir.Node) -> None:
    x = low.q(node.inputs[0])
    rest = [low.copy_const(v) for v in node.inputs[1:]]
    attrs = {k: a.value for k, a in node.attributes.items()}
    if node.op_type == "Pad" and len(rest) > 1 and rest[1] is not None:
        rest[1] = low.em.const(0, np.int32, hint="pad_value")
    outs = low.em.tape.op_multi_out(
        node.op_type,
        [x.value, *rest],
        attrs or None,
        num_outputs=len(node.outputs),
        name=low.em.name(node.op_type),
    )
    for old, new in zip(node.outputs, outs, strict=True):
        low.values[id(old)] = QTensor(new, x.scale, x.bits)


def _weight_rule(low: Lowering, node: ir.Node, weight: np.ndarray, bias, conv) -> None:
    out = node.outputs[0]
    consumers = out.uses()
    bias_add = None
    if bias is None and len(consumers) == 1 and not out.is_graph_output():
        user = consumers[0].node
        other = [v for v in user.inputs if v is not out]
        if user.op_type == "Add" and len(other) == 1:
            b = const_array(other[0])
            channels = weight.shape[0 if conv else 1]
            if b is not None and b.size == channels and b.shape[-1] == b.size:
                bias, bias_add = b.astype(np.float64), user
    target = bias_add.outputs[0] if bias_add is not None else out
    x = low.operand(node.inputs[0])
    result = linear.linear(low.em, x, weight, bias, low.scale(target), STREAM_BITS, conv)
    low.values[id(target)] = result
    if bias_add is not None:
        low.absorbed.add(id(bias_add))


def _conv(low: Lowering, node: ir.Node) -> None:
    weight = const_array(node.inputs[1]).astype(np.float64)
    bias = const_array(node.inputs[2]) if len(node.inputs) > 2 else None
    conv = {
        k: a.value
        for k, a in node.attributes.items()
        if k in ("group", "pads", "strides", "dilations", "kernel_shape", "auto_pad")
    }
    _weight_rule(low, node, weight, None if bias is None else bias.astype(np.float64), conv)


def _matmul(low: Lowering, node: ir.Node) -> None:
    weight = const_array(node.inputs[1])
    if weight is not None:
        _weight_rule(low, node, weight.astype(np.float64), None, None)
        return
    a, b = low.operand(node.inputs[0]), low.operand(node.inputs[1])
    out = node.outputs[0]
    low.values[id(out)] = linear.matmul(low.em, a, b, low.scale(out), STREAM_BITS)


def _gemm(low: Lowering, node: ir.Node) -> None:
    attrs = {k: a.value for k, a in node.attributes.items()}
    weight = const_array(node.inputs[1]).astype(np.float64) * attrs.get("alpha", 1.0)
    if attrs.get("transB", 0):
        weight = weight.T
    bias = const_array(node.inputs[2]) if len(node.inputs) > 2 else None
    if bias is not None:
        bias = bias.astype(np.float64).reshape(-1) * attrs.get("beta", 1.0)
    _weight_rule(low, node, weight, bias, None)


def _add_sub(low: Lowering, node: ir.Node) -> None:
    if id(node) in low.absorbed:
        return
    a, b = (low.input_or_constant(v) for v in node.inputs)
    if node.op_type == "Sub":
        b = QTensor(b.value, -b.scale, b.bits)
    out = node.outputs[0]
    low.values[id(out)] = arith.add(low.em, a, b, low.scale(out), STREAM_BITS)


def _mul(low: Lowering, node: ir.Node) -> None:
    out = node.outputs[0]
    arrays = [const_array(v) for v in node.inputs]
    for k, array in enumerate(arrays):
        if array is not None and array.size == 1 and float(array.reshape(-1)[0]) > 0:
            x = low.q(node.inputs[1 - k])
            low.values[id(out)] = QTensor(x.value, x.scale * float(array.reshape(-1)[0]), x.bits)
            return
    a, b = (low.input_or_constant(v) for v in node.inputs)
    product = arith.multiply(low.em, a, b, 63)
    low.stream(out, product)


def _div(low: Lowering, node: ir.Node) -> None:
    divisor = const_array(node.inputs[1])
    x = low.q(node.inputs[0])
    low.values[id(node.outputs[0])] = QTensor(x.value, x.scale / float(divisor), x.bits)


def _softmax(low: Lowering, node: ir.Node) -> None:
    x = low.q(node.inputs[0])
    axis = node.attributes["axis"].value if "axis" in node.attributes else -1
    length = node.inputs[0].shape[axis]
    # the finest power-of-two output scale that holds the calibrated maximum probability
    fraction = math.floor(math.log2(1 / low.scale(node.outputs[0], OPERAND_BITS)))
    fraction = min(max(fraction, OPERAND_BITS - 1), SOFTMAX_MAX_FRACTION)
    low.values[id(node.outputs[0])] = shiftmax.shiftmax(
        low.em, x, axis, length, OPERAND_BITS, fraction=fraction
    )


def _layernorm(low: Lowering, node: ir.Node) -> None:
    x_value = node.inputs[0]
    axis = node.attributes["axis"].value if "axis" in node.attributes else -1
    rank = len(x_value.shape)
    axes = list(range(axis % rank, rank))
    count = math.prod(x_value.shape[a] for a in axes)
    gamma = const_array(node.inputs[1]).astype(np.float64)
    beta = const_array(node.inputs[2]) if len(node.inputs) > 2 else None
    beta = np.zeros_like(gamma) if beta is None else beta.astype(np.float64)
    out = node.outputs[0]
    low.values[id(out)] = layernorm.layernorm(
        low.em, low.q(x_value), axes, count, gamma, beta, low.scale(out), STREAM_BITS
    )


def _gelu(low: Lowering, fusion: Fusion) -> None:
    low.stream(fusion.output, shiftgelu.shiftgelu(low.em, low.q(fusion.x)))


def _groupnorm(low: Lowering, fusion: Fusion) -> None:
    p, out = fusion.params, fusion.output
    low.values[id(out)] = groupnorm.groupnorm(
        low.em, low.q(fusion.x), p["shape"], p["groups"], p["gamma"], p["beta"],
        low.scale(out), STREAM_BITS,
    )  # fmt: skip


def _l2norm(low: Lowering, fusion: Fusion) -> None:
    x = low.q(fusion.x)
    low.values[id(fusion.output)] = layernorm.l2_normalised(low.em, x, fusion.params["axis"])


def _instancenorm(low: Lowering, node: ir.Node) -> None:
    x_value, out = node.inputs[0], node.outputs[0]
    scale, bias = (const_array(v).astype(np.float64).reshape(-1) for v in node.inputs[1:3])
    shape = tuple(x_value.shape.dims)
    low.values[id(out)] = groupnorm.groupnorm(
        low.em, low.q(x_value), shape, shape[1], scale, bias, low.scale(out), STREAM_BITS
    )


def _batchnorm(low: Lowering, node: ir.Node) -> None:
    gamma, beta, mean, var = (const_array(v).astype(np.float64) for v in node.inputs[1:5])
    eps = node.attributes["epsilon"].value if "epsilon" in node.attributes else 1e-5
    a = gamma / np.sqrt(var + eps)
    shape = [-1] + [1] * (len(node.inputs[0].shape) - 2)
    x, out = low.q(node.inputs[0]), node.outputs[0]
    # x·a + (β − μ·a) = a·(x + (β − μ·a)/a): the per-channel affine of I-LayerNorm
    low.values[id(out)] = layernorm.affine(
        low.em, x, a.reshape(shape), (beta - mean * a).reshape(shape), low.scale(out), STREAM_BITS
    )


def _relu(low: Lowering, node: ir.Node) -> None:
    low.values[id(node.outputs[0])] = activations.relu(low.em, low.q(node.inputs[0]))


def _clip(low: Lowering, node: ir.Node) -> None:
    bounds = [const_array(v) if v is not None else None for v in node.inputs[1:3]]
    low_, high = (None if b is None else float(b) for b in [*bounds, None, None][:2])
    x = activations.clip(low.em, low.q(node.inputs[0]), low_, high)
    value = low.em.cast(x.value, arith.INT32)
    low.values[id(node.outputs[0])] = QTensor(value, x.scale, x.bits)


def _hardswish(low: Lowering, node: ir.Node) -> None:
    low.stream(node.outputs[0], activations.hardswish(low.em, low.q(node.inputs[0])))


def _hardsigmoid(low: Lowering, node: ir.Node) -> None:
    low.stream(node.outputs[0], activations.hardsigmoid(low.em, low.q(node.inputs[0])))


def _sigmoid(low: Lowering, node: ir.Node) -> None:
    low.values[id(node.outputs[0])] = shiftgelu.sigmoid(low.em, low.q(node.inputs[0]))


def _mean(low: Lowering, node: ir.Node) -> None:
    x_value = node.inputs[0]
    rank = len(x_value.shape)
    if node.op_type == "GlobalAveragePool":
        axes = list(range(2, rank))
        keep = 1
    else:
        axes_value = node.inputs[1] if len(node.inputs) > 1 else None
        found = const_array(axes_value) if axes_value is not None else None
        axes = sorted(int(a) % rank for a in (found if found is not None else range(rank)))
        keep = node.attributes["keepdims"].value if "keepdims" in node.attributes else 1
    count = math.prod(x_value.shape[a] for a in axes)
    x = low.q(x_value)
    total = low.em.op("ReduceSum", [low.em.to_int64(x.value), low.em.axes(axes)], keepdims=keep)
    low.stream(
        node.outputs[0], QTensor(total, x.scale / count, x.bits + math.ceil(math.log2(count)))
    )


def _concat(low: Lowering, node: ir.Node) -> None:
    out = node.outputs[0]
    scale = low.scale(out)
    parts = [
        arith.requantize(low.em, low.input_or_constant(v), scale, STREAM_BITS).value
        for v in node.inputs
    ]
    axis = node.attributes["axis"].value
    low.values[id(out)] = QTensor(low.em.op("Concat", parts, axis=axis), scale, STREAM_BITS)


def _resize(low: Lowering, node: ir.Node) -> None:
    out = node.outputs[0]
    if _attribute(node, "mode", "nearest") == "linear":
        in_shape, out_shape = tuple(node.inputs[0].shape.dims), tuple(out.shape.dims)
        low.values[id(out)] = resize.bilinear(
            low.em, low.q(node.inputs[0]), in_shape, out_shape, _resize_scales(node),
            _attribute(node, "coordinate_transformation_mode", "half_pixel"),
        )  # fmt: skip
        return
    attrs = {
        k: a.value
        for k, a in node.attributes.items()
        if k in ("mode", "coordinate_transformation_mode", "nearest_mode")
    }
    sizes = low.em.const(np.array(out.shape.dims, np.int64), hint="sizes")
    x = low.q(node.inputs[0])
    resized = low.em.op("Resize", [x.value, None, None, sizes], **attrs)
    low.values[id(out)] = QTensor(resized, x.scale, x.bits)


def _attribute(node: ir.Node, name: str, default):
    return node.attributes[name].value if name in node.attributes else default


def _resize_scales(node: ir.Node) -> tuple[float, ...]:
    """ONNX Resize's per-axis scales: the `scales` input, else output size / input size."""
    given = const_array(node.inputs[2]) if len(node.inputs) > 2 else None
    if given is not None and given.size:
        return tuple(float(s) for s in given.reshape(-1))
    ins, outs = node.inputs[0].shape.dims, node.outputs[0].shape.dims
    return tuple(o / i for i, o in zip(ins, outs, strict=True))


def _resize_check(node: ir.Node) -> str | None:
    mode = _attribute(node, "mode", "nearest")
    shapes = [node.inputs[0].shape, node.outputs[0].shape]
    if any(s is None or not s.is_static() for s in shapes):
        return "input or output size unknown"
    if mode == "nearest":
        return None
    transform = _attribute(node, "coordinate_transformation_mode", "half_pixel")
    if mode != "linear":
        return f"mode {mode}: only nearest and bilinear resizing have integer forms"
    if len(shapes[0]) != 4 or shapes[0].dims[:2] != shapes[1].dims[:2]:
        return "linear: only the last two axes of a 4-D tensor may change"
    if transform not in resize.TRANSFORMS:
        return f"linear with {transform}: one of {', '.join(resize.TRANSFORMS)} lowers"
    if _attribute(node, "antialias", 0) and any(
        o < i for i, o in zip(shapes[0].dims, shapes[1].dims, strict=True)
    ):
        return "antialiased downsampling"
    return None


def _mul_div_check(node: ir.Node) -> str | None:
    if node.op_type == "Div" and (
        (d := const_array(node.inputs[1])) is None or d.size != 1 or float(d) <= 0
    ):
        return "only division by a positive constant"
    return None


RULES = {
    "Conv": _conv,
    "MatMul": _matmul,
    "Gemm": _gemm,
    "Add": _add_sub,
    "Sub": _add_sub,
    "Mul": _mul,
    "Div": _div,
    "Softmax": _softmax,
    "LayerNormalization": _layernorm,
    "BatchNormalization": _batchnorm,
    "Relu": _relu,
    "Clip": _clip,
    "HardSwish": _hardswish,
    "HardSigmoid": _hardsigmoid,
    "Sigmoid": _sigmoid,
    "ReduceMean": _mean,
    "GlobalAveragePool": _mean,
    "Concat": _concat,
    "Resize": _resize,
    "InstanceNormalization": _instancenorm,
}
_FUSED = {"gelu": _gelu, "groupnorm": _groupnorm, "l2norm": _l2norm}


def _hardsigmoid_check(node: ir.Node) -> str | None:
    alpha = node.attributes["alpha"].value if "alpha" in node.attributes else 0.2
    beta = node.attributes["beta"].value if "beta" in node.attributes else 0.5
    if not (math.isclose(alpha, 1 / 6, rel_tol=1e-5) and math.isclose(beta, 0.5)):
        return f"alpha {alpha}, beta {beta}: only relu6(x + 3) / 6"
    return None


def _instancenorm_check(node: ir.Node) -> str | None:
    shape = node.inputs[0].shape
    if shape is None or not shape.is_static():
        return "input size unknown"
    if any(const_array(v) is None for v in node.inputs[1:3]):
        return "scale and bias must be constants"
    return None


_CHECKS = {
    "Resize": _resize_check,
    "Div": _mul_div_check,
    "HardSigmoid": _hardsigmoid_check,
    "InstanceNormalization": _instancenorm_check,
}
