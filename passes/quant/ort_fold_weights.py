"""`quant::ort_fold_weights`: weights of float-activation layers in a form ORT folds at load.

    before: W_q (INT8) ─ DequantizeLinear(s [O], zp 0, axis=0) ─► Conv(x float)
    after:  W_q (INT8) ─ Cast(FLOAT) ─ Mul(s as [O, 1, 1, 1]) ──► Conv(x float)

A layer `quant::ort_slow_int8` or `quant::ort_float_attention` marked
(`_policy.FLOAT_ACTIVATIONS_KEY`) runs in float: its
activations have no Q/DQ pair, but its weight is still stored quantized. ONNX Runtime never
constant-folds a DequantizeLinear (it keeps them for its QDQ fusions), so such a weight DQ
would run on every inference and keep the float Conv off its NCHWc kernel; `Cast` and `Mul`
of constants it folds into one float initializer when the session loads. The same numbers
(`q·s`, zero point 0: weights are symmetric), 8 (or 4, widened) bits in the file, float at
run time: the layer record says `w8a32`/`w4a32`. Runs on ORT targets after
`quant::ort_widen_int4`; a second run finds no such DQ and changes nothing.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from edgec.pass_manager import EdgecPass, register_pass
from edgec.passes._graph import Names, const_array, drop_if_unused
from edgec.passes.quant import _policy
from edgec.passes.quant._build import add_initializer


@register_pass
class OrtFoldWeights(EdgecPass):
    id = "quant::ort_fold_weights"

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        names = Names(model)
        for node in list(model.graph):
            if _policy.FLOAT_ACTIVATIONS_KEY not in node.metadata_props or len(node.inputs) < 2:
                continue
            dq = node.inputs[1].producer()
            if dq is None or dq.op_type != "DequantizeLinear" or "block_size" in dq.attributes:
                continue
            zero = const_array(dq.inputs[2]) if len(dq.inputs) > 2 else None
            scale = const_array(dq.inputs[1])
            if scale is None or (zero is not None and zero.any()):
                continue
            self._fold(model, dq, scale, names)
            self.stats["weights_folded"] += 1
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
