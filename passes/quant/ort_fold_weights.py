"""`quant::ort_fold_weights`: weights of layers ORT runs in float, in a form ORT folds at load.

    before: W_q (INT8) ─ DequantizeLinear(s [O], zp 0, axis=0) ─► Conv ─ HardSwish
    after:  W_q (INT8) ─ Cast(FLOAT) ─ Mul(s as [O, 1, 1, 1]) ──► Conv ─ HardSwish
            (the Conv carries edgec.quant.float_kernel = why ORT runs it in float)

ONNX Runtime runs a weight layer as an integer kernel (QLinearConv, QLinearMatMul, QGemm, …)
only when its QDQ group is complete — the rule `edgec.cost_model.ort_qdq.int8_nodes` models,
with ORT's integer ops (`fusion.ORT_CPU.qlinear_ops`). Every other weight layer runs a float
kernel: one whose input has no Q/DQ pair (`quant::ort_slow_int8`, `quant::ort_float_attention`,
the accuracy budget), a Conv whose output goes to a HardSwish (kept float) or to a Q *and* a
Div, and a ConvTranspose (ORT has no integer one). ORT never constant-folds a
DequantizeLinear (it keeps them for its QDQ fusions), so such a layer's weight DQ would run on
every inference and keep the float Conv off its NCHWc kernel; `Cast` and `Mul` of constants it
folds into one float initializer when the session loads. The same numbers (`q·s`, zero point 0:
weights are symmetric), 8 (or 4, widened) bits in the file, float at run time: the layer record
says `w8a32`/`w4a32`, and why (`_policy.FLOAT_KERNEL_KEY`, unless the layer was kept float on
purpose). A weight DQ stays when it is shared with a layer ORT runs on int8, or when ORT
would quantize the folded weight again (`_requantized_by_ort`). Runs on ORT targets after
`quant::ort_gemm_split_bias` and `quant::ort_widen_int4` (they shape the QDQ groups); a second
run finds no such DQ and changes nothing.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from edgec.cost_model.fusion import ORT_CPU
from edgec.cost_model.ort_qdq import from_constants, int8_nodes
from edgec.pass_manager import EdgecPass, register_pass
from edgec.passes._graph import Names, const_array, drop_if_unused
from edgec.passes.quant import _policy
from edgec.passes.quant._build import add_initializer


@register_pass
class OrtFoldWeights(EdgecPass):
    id = "quant::ort_fold_weights"

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        names = Names(model)
        integer = int8_nodes(model.graph, ORT_CPU.qlinear_ops)
        for dq in list(model.graph):
            layers = _float_layers_of_weight(dq, integer)
            if not layers:
                continue
            self._fold(model, dq, const_array(dq.inputs[1]), names)
            self.stats["weights_folded"] += 1
            for layer in layers:
                marks = layer.metadata_props
                if _policy.KEEP_FLOAT_KEY in marks or _policy.FLOAT_ACTIVATIONS_KEY in marks:
                    continue  # kept float on purpose: the record gives that reason
                marks[_policy.FLOAT_KERNEL_KEY] = _why_float(layer)
                self.stats[f"{layer.op_type}_float_kernel"] += 1
        return ir.passes.PassResult(model, modified=bool(self.stats["weights_folded"]))

    def _fold(self, model: ir.Model, dq: ir.Node, scale: np.ndarray, names: Names) -> None:
        weight = dq.outputs[0]
        rank = len(weight.shape)
        axis = dq.attributes["axis"].as_int() if "axis" in dq.attributes else 1
        shape = [1] * rank
        if scale.ndim == 1:
            shape[axis % rank] = -1
        scale_value = add_initializer(
            model, names, f"{weight.name}_scale", scale.reshape(shape).astype(np.float32)
        )
        cast = ir.node("Cast", [dq.inputs[0]], {"to": ir.DataType.FLOAT})
        cast.outputs[0].name = names.fresh(f"{weight.name}_float_q")
        cast.outputs[0].dtype = ir.DataType.FLOAT
        cast.outputs[0].shape = weight.shape
        mul = ir.node("Mul", [cast.outputs[0], scale_value], name=dq.name)
        model.graph.insert_before(dq, [cast, mul])
        old_inputs = list(dq.inputs[1:])
        weight.replace_all_uses_with(mul.outputs[0])
        mul.outputs[0].name, weight.name = weight.name, names.fresh(f"{weight.name}_old")
        mul.outputs[0].dtype, mul.outputs[0].shape = ir.DataType.FLOAT, weight.shape
        model.graph.remove(dq, safe=True)
        for value in old_inputs:
            drop_if_unused(value)


def _float_layers_of_weight(dq: ir.Node, integer: set[ir.Node]) -> list[ir.Node]:
    """The layers `dq` is the weight of, when ORT runs all of them in float; else []."""
    if dq.op_type != "DequantizeLinear" or "block_size" in dq.attributes:
        return []
    zero = const_array(dq.inputs[2]) if len(dq.inputs) > 2 else None
    if const_array(dq.inputs[1]) is None or (zero is not None and zero.any()):
        return []
    if not from_constants(dq.inputs[0]) or dq.outputs[0].is_graph_output():
        return []  # an activation's DQ, not a weight's
    uses = dq.outputs[0].uses()
    layers = [use.node for use in uses if use.idx == 1 and use.node.op_type in _policy.WEIGHT_OPS]
    if not uses or len(layers) != len(uses):
        return []
    if any(layer in integer or _requantized_by_ort(layer) for layer in layers):
        return []
    return layers


def _requantized_by_ort(layer: ir.Node) -> bool:
    """ORT's WeightBiasQuantization (measured on ORT 1.32) turns a float Conv, ConvTranspose or
    Gemm weight back into a per-tensor int8 weight behind a DQ of its own when the layer reads
    a DQ with one scale and its output goes, directly or after a Relu/Clip, to one
    QuantizeLinear — a folded weight there would come back coarser and still run every
    inference (a ConvTranspose between two pairs), so its per-channel DQ stays."""
    if layer.op_type not in ("Conv", "ConvTranspose", "Gemm"):
        return False
    dq = layer.inputs[0].producer()
    scale = (
        const_array(dq.inputs[1]) if dq is not None and dq.op_type == "DequantizeLinear" else None
    )
    if scale is None or scale.size != 1:
        return False
    output = _policy.after_activation(layer.outputs[0])
    uses = output.uses()
    return (
        not output.is_graph_output() and len(uses) == 1 and uses[0].node.op_type == "QuantizeLinear"
    )


def _why_float(layer: ir.Node) -> str:
    """Why ORT cannot run `layer` (whose input may be quantized) as an integer kernel."""
    if layer.op_type not in ORT_CPU.qlinear_ops:
        return f"ORT has no integer {layer.op_type} kernel: float {layer.op_type}"
    output = _policy.after_activation(layer.outputs[0])
    readers = sorted({use.node.op_type for use in output.uses()})
    if output.is_graph_output():
        readers.append("the graph output")
    if readers == ["QuantizeLinear"]:
        return f"ORT's QDQ group around this {layer.op_type} is incomplete: float {layer.op_type}"
    return (
        f"output read by {', '.join(readers) or 'nothing'}, not by one QuantizeLinear: "
        f"ORT runs a float {layer.op_type}"
    )
