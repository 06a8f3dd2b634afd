"""Explicit quantization in the form TensorRT accepts, and a census of what a graph holds.

TensorRT's ONNX parser takes Q/DQ with **symmetric** scales only (zero point 0), int8 on
activations and weights, int4 only block-wise and weight-only, and no int32 `DequantizeLinear`
(ONNX Runtime's quantizer writes biases that way; TensorRT refuses them: "input has type Int32
but must have type FP8, FP4, Int4, Int8, or UInt8"). `to_tensorrt_form` rewrites a QDQ graph
in place into that form:

    bias:        DQ(int32 b, s, 0) → Conv.B        ⇒  float b·s → Conv.B
    asymmetric:  Q(x, s, zp:uint8) → DQ(·, s, zp)  ⇒  Q(x, s', 0:int8) → DQ(·, s', 0:int8),
                 s' = max(|lo|, |hi|) / 127 over the range [lo, hi] the pair could represent
    weights:     DQ(w:uint8|int8 with zp≠0, s, zp) ⇒  DQ(w':int8, s', 0), requantized per axis
    W4A8:        MatMul(DQ(Q(x, s, 0:int8)), DQ(w:int4, block))  ⇒  MatMul(x, DQ(w:int4, block))
                 (int4 weights × int8 activations does not build in TensorRT; it is W4A16)

`census` counts the quantized layers (Conv/ConvTranspose/MatMul/Gemm) by the precision they
really get, which is what the manifest records.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx_ir as ir

LAYERS = ("Conv", "ConvTranspose", "MatMul", "Gemm")
QUANTIZED_TYPES = {ir.DataType.INT8, ir.DataType.UINT8, ir.DataType.INT4, ir.DataType.UINT4}
FOUR_BIT = {ir.DataType.INT4, ir.DataType.UINT4}
_RANGES = {
    ir.DataType.INT8: (-128, 127),
    ir.DataType.UINT8: (0, 255),
    ir.DataType.INT4: (-8, 7),
    ir.DataType.UINT4: (0, 15),
}


def const(value: ir.Value | None) -> np.ndarray | None:
    """The constant behind `value` (initializer or Constant node), else None."""
    if value is None or value.is_graph_input():
        return None
    tensor = ir.convenience.get_const_tensor(value)
    return None if tensor is None else tensor.numpy()


def producer_op(value: ir.Value | None, op_type: str) -> ir.Node | None:
    node = value.producer() if value is not None else None
    return node if node is not None and node.op_type == op_type and node.domain == "" else None


def zero_point(node: ir.Node) -> np.ndarray:
    """A Q/DQ node's zero point (0 when absent)."""
    zp = node.inputs[2] if len(node.inputs) > 2 else None
    array = const(zp)
    return np.zeros((), np.int64) if array is None else array.astype(np.int64)


def quant_type(node: ir.Node) -> ir.DataType | None:
    """The integer type a Q produces or a DQ consumes."""
    if node.op_type == "DequantizeLinear":
        return node.inputs[0].dtype
    zp = node.inputs[2] if len(node.inputs) > 2 else None
    if zp is not None and zp.dtype is not None:
        return zp.dtype
    to = node.attributes.get("output_dtype")
    return ir.DataType(to.as_int()) if to is not None and to.as_int() else ir.DataType.UINT8


def dequantize(node: ir.Node) -> np.ndarray | None:
    """A DQ of constants, evaluated in float32 (per-tensor, per-axis or block-wise)."""
    q, scale = const(node.inputs[0]), const(node.inputs[1])
    if q is None or scale is None:
        return None
    zp = zero_point(node)
    axis = node.attributes.get_int("axis", 1) % max(q.ndim, 1)
    block = node.attributes.get_int("block_size", 0)
    scale, zp = (_expand(a, q.shape, axis, block) for a in (scale.astype(np.float32), zp))
    return ((q.astype(np.int64) - zp) * scale).astype(np.float32)


def _expand(a: np.ndarray, shape: tuple[int, ...], axis: int, block: int) -> np.ndarray:
    if a.ndim == 0 or a.size == 1:
        return a.reshape(())
    if block:
        return np.repeat(a, block, axis=axis)[tuple(slice(0, n) for n in shape)]
    view = [1] * len(shape)
    view[axis] = a.size
    return a.reshape(view)


def to_tensorrt_form(model: ir.Model) -> dict[str, int]:
    """Rewrite `model` in place into TensorRT's QDQ form; returns what was changed."""
    stats = Counter(
        bias_dequantize_folded=0,
        activation_pairs_made_symmetric=0,
        weights_requantized_symmetric=0,
        activation_qdq_dropped_for_int4=0,
    )
    graph = model.graph
    for node in list(graph):
        if node.op_type == "DequantizeLinear" and node.inputs[0].dtype == ir.DataType.INT32:
            stats["bias_dequantize_folded"] += _fold(graph, node)
    for node in list(graph):
        if node.op_type == "QuantizeLinear" and _asymmetric(node):
            stats["activation_pairs_made_symmetric"] += _symmetric_pair(graph, node)
    for node in list(graph):
        weight = node.op_type == "DequantizeLinear" and const(node.inputs[0]) is not None
        if weight and _asymmetric(node):
            stats["weights_requantized_symmetric"] += _requantize_weight(graph, node)
    for node in list(graph):
        if node.op_type in ("MatMul", "Gemm"):
            stats["activation_qdq_dropped_for_int4"] += _weight_only(graph, node)
    return dict(stats)


def _asymmetric(node: ir.Node) -> bool:
    return bool(np.any(zero_point(node) != 0)) or quant_type(node) in (
        ir.DataType.UINT8,
        ir.DataType.UINT4,
    )


def _fold(graph: ir.Graph, node: ir.Node) -> int:
    array = dequantize(node)
    if array is None:
        return 0
    _replace_with_constant(graph, node, array)
    return 1


def _replace_with_constant(graph: ir.Graph, node: ir.Node, array: np.ndarray) -> None:
    out, inputs = node.outputs[0], list(node.inputs)
    value = _initializer(graph, f"{out.name}_folded", array)
    ir.convenience.replace_all_uses_with(out, value)
    for i, o in enumerate(graph.outputs):
        if o is out:
            graph.outputs[i] = value
    graph.remove(node, safe=True)
    for input_value in inputs:
        _drop_if_unused(graph, input_value)


def _initializer(graph: ir.Graph, name: str, array: np.ndarray, dtype=None) -> ir.Value:
    base, n = name, 0
    while name in graph.initializers:
        n += 1
        name = f"{base}_{n}"
    tensor = ir.tensor(array, dtype=dtype)
    value = ir.Value(
        name=name, type=ir.TensorType(tensor.dtype), shape=tensor.shape, const_value=tensor
    )
    graph.register_initializer(value)
    return value


def _symmetric_pair(graph: ir.Graph, q: ir.Node) -> int:
    """Q(x, s, zp) → its DQs as one symmetric int8 (or int4) pair covering the same range."""
    scale = const(q.inputs[1])
    consumers = [use.node for use in q.outputs[0].uses()]
    if scale is None or not consumers or any(c.op_type != "DequantizeLinear" for c in consumers):
        return 0
    lo_q, hi_q = _RANGES[quant_type(q)]
    zp = zero_point(q)
    bound = np.maximum(np.abs((lo_q - zp) * scale), np.abs((hi_q - zp) * scale))
    target = ir.DataType.INT4 if quant_type(q) in FOUR_BIT else ir.DataType.INT8
    levels = _RANGES[target][1]
    new_scale = np.where(bound > 0, bound / levels, scale).astype(scale.dtype)
    base = q.outputs[0].name or "q"
    s_value = _initializer(graph, f"{base}_sym_scale", new_scale)
    zp_value = _initializer(graph, f"{base}_sym_zero_point", np.zeros(zp.shape, np.int8), target)
    for node in (q, *consumers):
        old = list(node.inputs[1:3])
        node.replace_input_with(1, s_value)
        if len(node.inputs) > 2:
            node.replace_input_with(2, zp_value)
        else:
            node.resize_inputs(3)
            node.replace_input_with(2, zp_value)
        for value in old:
            _drop_if_unused(graph, value)
    q.outputs[0].dtype = target
    if "output_dtype" in q.attributes:
        q.attributes.pop("output_dtype")
    return 1


def _requantize_weight(graph: ir.Graph, dq: ir.Node) -> int:
    """A constant weight DQ with a zero point (or unsigned storage) → symmetric signed."""
    weight = dequantize(dq)
    if weight is None:
        return 0
    four_bit = dq.inputs[0].dtype in FOUR_BIT
    target = ir.DataType.INT4 if four_bit else ir.DataType.INT8
    levels = _RANGES[target][1]
    scale = const(dq.inputs[1])
    axis = dq.attributes.get_int("axis", 1) % max(weight.ndim, 1)
    block = dq.attributes.get_int("block_size", 0)
    new_scale = _max_abs(weight, scale.shape, axis, block) / levels
    new_scale = np.where(new_scale > 0, new_scale, 1.0).astype(scale.dtype)
    q = np.clip(np.rint(weight / _expand(new_scale, weight.shape, axis, block)), -levels, levels)
    old = list(dq.inputs)
    base = dq.outputs[0].name or "w"
    dq.replace_input_with(0, _initializer(graph, f"{base}_sym", q.astype(np.int8), target))
    dq.replace_input_with(1, _initializer(graph, f"{base}_sym_scale", new_scale))
    zp = _initializer(graph, f"{base}_sym_zero_point", np.zeros(scale.shape, np.int8), target)
    if len(dq.inputs) < 3:
        dq.resize_inputs(3)
    dq.replace_input_with(2, zp)
    for value in old:
        _drop_if_unused(graph, value)
    return 1


def _max_abs(w: np.ndarray, shape: tuple[int, ...], axis: int, block: int) -> np.ndarray:
    """max|w| reduced to the scale's shape (per tensor, per axis or per block along `axis`)."""
    a = np.abs(w)
    if len(shape) == 0 or int(np.prod(shape)) == 1:
        return np.asarray(a.max()).reshape(shape)
    if block:
        pad = -w.shape[axis] % block
        widths = [(0, 0)] * w.ndim
        widths[axis] = (0, pad)
        a = np.pad(a, widths)
        split = [*a.shape[:axis], a.shape[axis] // block, block, *a.shape[axis + 1 :]]
        return a.reshape(split).max(axis=axis + 1)
    others = tuple(i for i in range(w.ndim) if i != axis)
    return a.max(axis=others).reshape(shape)


def _weight_only(graph: ir.Graph, layer: ir.Node) -> int:
    """MatMul/Gemm of an int4 weight DQ: its activation input loses its int8 Q/DQ pair."""
    weight_dq = producer_op(layer.inputs[1], "DequantizeLinear")
    if weight_dq is None or weight_dq.inputs[0].dtype not in FOUR_BIT:
        return 0
    act_dq = producer_op(layer.inputs[0], "DequantizeLinear")
    act_q = producer_op(act_dq.inputs[0], "QuantizeLinear") if act_dq is not None else None
    if act_q is None:
        return 0
    layer.replace_input_with(0, act_q.inputs[0])
    for node in (act_dq, act_q):
        if not any(u for o in node.outputs for u in o.uses()):
            inputs = list(node.inputs)
            graph.remove(node, safe=True)
            for value in inputs:
                _drop_if_unused(graph, value)
    return 1


def _drop_if_unused(graph: ir.Graph, value: ir.Value | None) -> None:
    if value is None or value.uses() or value.is_graph_output():
        return
    if value.name in graph.initializers:
        graph.initializers.pop(value.name)


def census(model: ir.Model) -> dict[str, int]:
    """Conv/ConvTranspose/MatMul/Gemm layers by what they compute in TensorRT.

    `w8a8`: int8 weight DQ and an int8 Q/DQ activation; `w4a16`: int4 block weight DQ and a
    float activation; `w4a8`: int4 weights and an int8 activation (TensorRT cannot build
    it; `to_tensorrt_form` leaves none); `w8a16`: an int8 weight DQ with a float activation
    (weight-only int8, which TensorRT runs in float); `float`: float weights. Every
    QuantizeLinear is counted as `activation_qdq`.
    """
    counts = Counter(w8a8=0, w4a16=0, w4a8=0, w8a16=0, float=0, activation_qdq=0)
    for node in model.graph:
        if node.op_type == "QuantizeLinear":
            counts["activation_qdq"] += 1
        if node.op_type not in LAYERS or len(node.inputs) < 2:
            continue
        weight_dq = producer_op(node.inputs[1], "DequantizeLinear")
        act_dq = producer_op(node.inputs[0], "DequantizeLinear")
        if weight_dq is None:
            counts["float"] += 1
        elif weight_dq.inputs[0].dtype in FOUR_BIT:
            counts["w4a8" if act_dq is not None else "w4a16"] += 1
        else:
            counts["w8a8" if act_dq is not None else "w8a16"] += 1
    return dict(counts)
