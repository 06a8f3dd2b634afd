"""Which nodes of a QDQ graph ONNX Runtime's CPU execution provider runs on int8.

ORT's QDQ transformers (onnxruntime/core/optimizer/qdq_transformer/selectors_actions) replace a
node group DQ → op → Q by one integer kernel (QLinearConv, QLinearMatMul, QLinearAdd,
QLinearConcat, QLinearGlobalAveragePool, … or the op itself on int8 with its DQ and Q dropped,
for data movement) only when the group is complete:

* **inputs** — every input of Conv, MatMul, Gemm, Add, Mul, Concat and Where is a
  DequantizeLinear output (weights included; a float constant bias of Conv or Gemm is allowed:
  ORT's BiasQuantization quantizes it to int32 first); for the single-input ops (pools,
  Sigmoid, Softmax, Transpose, Reshape, …) the data input is;
* **outputs** — every reader of every output is a QuantizeLinear (a Relu or Clip between the op
  and its only Q is dropped as redundant), and no output is a graph output; MatMul and Gemm
  may instead have no Q at all (MatMulIntegerToFloat, QGemm with a float output);
* ORT first moves Qs backwards and DQs forwards across data movement (Transpose, Reshape,
  Squeeze, Unsqueeze, Slice, MaxPool) where each step has a single reader
  (QDQPropagationTransformer): Conv → Transpose → Q is a QLinearConv and an int8 Transpose.

Anything else runs in float: a Conv whose output is also read by a Div or goes to a HardSwish
is a float Conv, its DQ inputs are kernels of their own — weight DQs included, which ORT does
not constant-fold (it keeps DQs for its QDQ fusions), so they run at every inference.

Before (ONNX nodes):

    DQ(x) → Conv(DQ(w)) → Q → DQ → Conv(DQ(w2)) → HardSwish

After (what ORT runs): ``QLinearConv``, then ``DequantizeLinear``, ``DequantizeLinear(w2)``,
float ``Conv``, ``HardSwish``: `int8_nodes` returns the first Conv only.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

__all__ = ["from_constants", "int8_nodes"]

_EVERY_INPUT = frozenset({"Conv", "MatMul", "Gemm", "Add", "Mul", "Concat", "Where"})
_FLOAT_OUTPUT_ALLOWED = frozenset({"MatMul", "Gemm"})
_FLOAT_BIAS_ALLOWED = frozenset({"Conv", "Gemm"})  # ORT's BiasQuantization makes it int32 first
_REDUNDANT_AFTER = frozenset({"Relu", "Clip"})
# data movement ORT's QDQPropagationTransformer moves Q backwards and DQ forwards across
_PROPAGATES = frozenset({"MaxPool", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Slice"})


def int8_nodes(graph: ir.Graph, qlinear_ops: frozenset[str]) -> set[ir.Node]:
    """The nodes of `graph` whose op (one of `qlinear_ops`) ORT runs as an integer kernel."""
    outputs = set(graph.outputs)
    return {
        node
        for node in graph
        if node.domain in ("", "ai.onnx")
        and node.op_type in qlinear_ops
        and _inputs_dequantized(node)
        and _outputs_quantized(node, outputs)
    }


def _dequantized(value: ir.Value | None) -> bool:
    """`value` reaches its readers through a DequantizeLinear, once ORT has propagated Q and DQ
    across data movement (QDQPropagationTransformer)."""
    producer = value.producer() if value is not None else None
    if producer is None:
        return False
    if producer.op_type == "DequantizeLinear":
        return True
    source = producer.inputs[0] if producer.inputs else None
    if producer.op_type in _PROPAGATES and source is not None and len(source.uses()) == 1:
        return _dequantized(source)  # DQ → Transpose: the DQ moves after the Transpose
    uses = value.uses()  # X → Transpose → Q: the Q moves before the Transpose, a DQ after it
    return (
        len(uses) == 1
        and uses[0].node.op_type in _PROPAGATES
        and uses[0].idx == 0
        and _quantized_next(uses[0].node.outputs[0])
    )


def _quantized_next(value: ir.Value) -> bool:
    """The only reader of `value` is a QuantizeLinear, possibly after data movement that has
    one reader at each step (where ORT propagates that Q backwards)."""
    uses = value.uses()
    if value.is_graph_output() or len(uses) != 1:
        return False
    reader = uses[0].node
    if reader.op_type == "QuantizeLinear":
        return True
    return reader.op_type in _PROPAGATES and uses[0].idx == 0 and _quantized_next(reader.outputs[0])


def _inputs_dequantized(node: ir.Node) -> bool:
    inputs = [v for v in node.inputs if v is not None]
    if node.op_type in _FLOAT_BIAS_ALLOWED and len(node.inputs) > 2 and _constant_input(node, 2):
        inputs = [v for v in node.inputs[:2] if v is not None]  # ORT quantizes the bias itself
    if not inputs:
        return False
    if node.op_type in _EVERY_INPUT:
        return all(_dequantized(v) for v in inputs)
    return _dequantized(inputs[0])


def _constant_input(node: ir.Node, index: int) -> bool:
    return from_constants(node.inputs[index])


def from_constants(value: ir.Value | None, depth: int = 0) -> bool:
    """`value` is a constant, or computed from constants only (ORT folds it before the QDQ
    fusions; a DequantizeLinear it never folds)."""
    if value is None or value.const_value is not None or value.is_initializer():
        return value is not None
    producer = value.producer()
    if producer is None or producer.op_type == "DequantizeLinear" or depth > 8:
        return False
    return all(v is None or from_constants(v, depth + 1) for v in producer.inputs)


def _constant(value: ir.Value | None) -> np.ndarray | None:
    if value is None:
        return None
    if value.const_value is None and value.producer() is not None:
        if value.producer().op_type != "Constant":
            return None
        value = value.producer().attributes["value"]
    tensor = value.const_value if isinstance(value, ir.Value) else value.value
    return None if tensor is None else tensor.numpy()


def _made_redundant(clip: ir.Node, q: ir.Node) -> bool:
    """ORT's IsClipMadeRedundantByQ: the Q's representable range lies inside Relu's [0, ∞) or
    Clip's [min, max], so the clip changes no quantized value."""
    if q.op_type != "QuantizeLinear" or len(q.inputs) < 2:
        return False
    scale, zero = _constant(q.inputs[1]), _constant(q.inputs[2] if len(q.inputs) > 2 else None)
    if scale is None or scale.size != 1:
        return False
    dtype = zero.dtype if zero is not None else np.dtype(np.uint8)
    if dtype.kind not in "iu" or (zero is not None and zero.size != 1):
        return False
    zero_point = int(zero.reshape(())) if zero is not None else 0
    info = np.iinfo(dtype)
    low = float(scale.reshape(())) * (info.min - zero_point)
    high = float(scale.reshape(())) * (info.max - zero_point)
    if clip.op_type == "Relu":
        return low >= 0.0
    clip_low, clip_high = (_constant(v) for v in [*clip.inputs[1:3], None, None][:2])
    return (clip_low is None or float(clip_low.reshape(())) <= low) and (
        clip_high is None or high <= float(clip_high.reshape(()))
    )


def _outputs_quantized(node: ir.Node, graph_outputs: set[ir.Value]) -> bool:
    values = list(node.outputs)
    uses = [use for value in values for use in value.uses()]
    if node.op_type not in _REDUNDANT_AFTER and len(values) == 1 and len(uses) == 1:
        after = uses[0].node
        if after.op_type in _REDUNDANT_AFTER and values[0] not in graph_outputs:
            values = list(after.outputs)  # op → Relu/Clip → Q: the group ends at that Q …
            uses = [use for value in values for use in value.uses()]
            if len(uses) != 1 or not _made_redundant(after, uses[0].node):
                return False  # … and only when the Q's range makes the Relu/Clip a no-op
    if all(_quantized_next(value) for value in values):
        return True  # one Q per output (ORT's rule), possibly after propagation
    quantized = [use for use in uses if use.node.op_type == "QuantizeLinear"]
    if not quantized:
        return node.op_type in _FLOAT_OUTPUT_ALLOWED
    return len(quantized) == len(uses) and not any(v in graph_outputs for v in values)
