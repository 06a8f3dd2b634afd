"""Which activation tensors are quantized, and how ranges travel between the quant passes.

The rules are docs/quantization.md's ("Which tensors get a pair"): inputs and outputs of the
integer-capable ops, the pair after a Relu/Clip that follows one, data-movement ops sharing
their input's range, and tensors that only feed precision-sensitive ops (Softmax,
normalisations, GELU…, also through elementwise ops with a constant operand) left float.

`quant::calibrate` writes each chosen tensor's range into the value's `metadata_props`
(`RANGE_KEY`, JSON `[lo, hi]`), `quant::activations` reads it. Per-value metadata never
reaches an emitted file (the ORT backend strips it).
"""

from __future__ import annotations

import json
from collections.abc import Collection

import onnx_ir as ir

from edgec.passes._graph import const_array

RANGE_KEY = "edgec.quant.range"
KEEP_FLOAT_KEY = "edgec.quant.keep_float"  # on a node: `--accuracy-budget` left it float
WEIGHT_BITS_KEY = "edgec.quant.weight_bits"  # on a node: `--accuracy-budget` wants 8-bit weights
# on a node: its int8 kernel is slower than float (`quant::ort_slow_int8`): float activations,
# weights still stored quantized (the value says why)
FLOAT_ACTIVATIONS_KEY = "edgec.quant.float_activations"
# on a node: ORT runs it with a float kernel though its QDQ form says int8 (its QDQ group is
# incomplete, `quant::ort_fold_weights`); its weight is folded to float at load (value: why)
FLOAT_KERNEL_KEY = "edgec.quant.float_kernel"
# on a node: a model output layer, whose weights `quant::weights` keeps at 8 bits in W4A8
# (the value says why)
OUTPUT_LAYER_KEY = "edgec.quant.output_layer"
# on a weight layer: its input's mean per channel on the calibration data (JSON list), for the
# bias correction of `quant::weights` (`bias_correction.py`)
INPUT_MEAN_KEY = "edgec.quant.input_mean"

QUANT_OPS = {"Conv", "ConvTranspose", "Gemm", "MatMul", "Add", "Concat"}
WEIGHT_OPS = {"Conv", "ConvTranspose", "Gemm", "MatMul"}
ACTIVATIONS = {"Relu", "Clip"}
DATA_MOVEMENT = {
    "Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "Split", "Slice", "MaxPool",
}  # fmt: skip
SENSITIVE = {
    "Softmax", "LayerNormalization", "GroupNormalization", "InstanceNormalization", "Gelu",
    "Erf", "Sigmoid", "HardSigmoid", "HardSwish", "Div", "Pow", "Sqrt", "ReduceMean",
    "BatchNormalization", "Tanh", "Exp", "Log",
}  # fmt: skip
_ELEMENTWISE = {"Add", "Sub", "Mul", "Div"}
_QDQ = {"QuantizeLinear", "DequantizeLinear"}


def is_float(value: ir.Value | None) -> bool:
    return value is not None and value.dtype == ir.DataType.FLOAT


def is_constant(value: ir.Value | None) -> bool:
    """A constant, or a weight already behind a DequantizeLinear of a constant."""
    if value is None:
        return False
    producer = value.producer()
    if producer is not None and producer.op_type == "DequantizeLinear":
        return const_array(producer.inputs[0]) is not None
    return const_array(value) is not None


def is_quantized_node(node: ir.Node) -> bool:
    """An op whose float activations are quantized (not left float by the accuracy budget)."""
    marks = node.metadata_props
    if node.op_type not in QUANT_OPS or KEEP_FLOAT_KEY in marks or FLOAT_ACTIVATIONS_KEY in marks:
        return False
    if node.op_type in ("Add", "Concat"):  # an integer kernel needs every operand quantized
        return all(is_float(v) and not is_constant(v) for v in node.inputs)
    if node.op_type in WEIGHT_OPS - {"MatMul"}:
        return is_float(node.inputs[0]) and not is_constant(node.inputs[0])
    return any(is_float(v) and not is_constant(v) for v in node.inputs[:2])


def is_sensitive(value: ir.Value) -> bool:
    """True when every reader of `value` needs it in float (directly or via a constant op)."""
    uses = [use.node for use in value.uses()]
    if not uses or value.is_graph_output():
        return False
    for node in uses:
        if node.op_type in SENSITIVE:
            continue
        through_constant = node.op_type in _ELEMENTWISE and any(map(is_constant, node.inputs))
        if through_constant and is_sensitive(node.outputs[0]):
            continue
        return False
    return True


def after_activation(value: ir.Value, activations: Collection[str] = ACTIVATIONS) -> ir.Value:
    """`value`, or the output of the chain of `activations` (Relu/Clip) that is its only reader."""
    while len(value.uses()) == 1 and not value.is_graph_output():
        node = value.uses()[0].node
        if node.op_type not in activations or node.inputs[0] is not value:
            break
        value = node.outputs[0]
    return value


def tensors_to_quantize(graph: ir.Graph) -> list[ir.Value]:
    """The activation tensors that get a Q → DQ pair, in graph order (no duplicates)."""
    chosen: dict[int, ir.Value] = {}
    for node in graph:
        if not is_quantized_node(node):
            continue
        operands = node.inputs if node.op_type in ("Add", "Concat") else node.inputs[:2]
        candidates = [v for v in operands if is_float(v) and not is_constant(v)]
        candidates.append(after_activation(node.outputs[0]))
        for value in candidates:
            if value.is_graph_output() or is_sensitive(value) or not value.uses():
                continue
            if value.producer() is not None and value.producer().op_type in _QDQ:
                continue  # already quantized
            chosen.setdefault(id(value), value)
    order = {id(v): i for i, v in enumerate(_graph_values(graph))}
    return sorted(chosen.values(), key=lambda v: order.get(id(v), -1))


def range_source(value: ir.Value) -> ir.Value | None:
    """The tensor whose range `value` shares (data-movement output → its data input)."""
    node = value.producer()
    if node is None or node.op_type not in DATA_MOVEMENT or not node.inputs:
        return None
    source = node.inputs[0]
    return source if is_float(source) else None


def read_range(value: ir.Value) -> tuple[float, float] | None:
    text = value.metadata_props.get(RANGE_KEY)
    if text is None:
        return None
    lo, hi = json.loads(text)
    return float(lo), float(hi)


def write_range(value: ir.Value, lo: float, hi: float) -> None:
    value.metadata_props[RANGE_KEY] = json.dumps([float(lo), float(hi)])


def _graph_values(graph: ir.Graph) -> list[ir.Value]:
    values = list(graph.inputs)
    for node in graph:
        values.extend(node.outputs)
    return values
