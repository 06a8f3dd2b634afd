"""`quant::ort_widen_int4`: int4 block weights in a form ONNX Runtime widens to int8 at load.

    before: W_q4 (INT4) ─ DequantizeLinear(block_scale, axis=r, block_size=B) ─► Conv
    after:  W_q4 (INT4, blocked shape) ─ Cast(INT32) ─ Mul(Cast(k: UINT4 → INT32)) ─ Reshape
              ─ Cast(INT8) ─ DequantizeLinear(s [O], zp INT8 0, axis=out) ─► Conv

`block_scale = s·k` (docs/quantization.md), so `W_q4·k` is the int8 weight on the
per-channel scale `s` and the two graphs compute the same weight. Every node of the widening
has constant inputs, so ONNX Runtime folds it into one int8 initializer when the session
loads, and the DQ → Conv → Q unit becomes an integer kernel (QLinearConv), as in W8A8; a
blocked DequantizeLinear is never folded and runs on every inference. The file keeps the
4-bit weights (stored viewed as `[.., nb, B, ..]`, the same bytes, so `k` with a 1 in the
block's place broadcasts over each block) and 4-bit multipliers.
"""

from __future__ import annotations

import json

import ml_dtypes
import numpy as np
import onnx_ir as ir

from edgec.pass_manager import EdgecPass, register_pass
from edgec.passes._graph import Names, const_array, drop_if_unused
from edgec.passes.quant._build import add_initializer
from edgec.passes.quant.weights import CHANNEL_SCALE_KEY, output_axis_of_dq


@register_pass
class OrtWidenInt4(EdgecPass):
    id = "quant::ort_widen_int4"

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        names = Names(model)
        for dq in list(model.graph):
            if dq.op_type != "DequantizeLinear" or CHANNEL_SCALE_KEY not in dq.metadata_props:
                continue
            if "block_size" not in dq.attributes:
                continue
            self._widen(model, dq, names)
            self.stats["weights_widened"] += 1
        return ir.passes.PassResult(model, modified=bool(self.stats["weights_widened"]))

    def _widen(self, model: ir.Model, dq: ir.Node, names: Names) -> None:
        q4_value, scale_value = dq.inputs[0], dq.inputs[1]
        q4, block_scale = const_array(q4_value), const_array(scale_value)
        red_axis = dq.attributes["axis"].as_int()
        block = dq.attributes["block_size"].as_int()
        out_axis = output_axis_of_dq(dq)
        channel = np.asarray(json.loads(dq.metadata_props[CHANNEL_SCALE_KEY]), np.float32)
        shape = [1] * q4.ndim
        shape[out_axis] = -1
        k = np.round(block_scale / channel.reshape(shape)).astype(np.uint8)
        # [.., R, ..] viewed as [.., nb, B, ..] so k (nb on axis r) broadcasts over each block
        nb = k.shape[red_axis]
        blocked_shape = [*q4.shape[:red_axis], nb, block, *q4.shape[red_axis + 1 :]]
        k_shape = [*k.shape[:red_axis], nb, 1, *k.shape[red_axis + 1 :]]
        k = k.reshape(k_shape)

        base = q4_value.name.removesuffix("_q4")
        blocked = q4.reshape(blocked_shape).astype(ml_dtypes.int4)
        q4_blocked = add_initializer(model, names, f"{base}_q4_blocked", blocked)
        k_value = add_initializer(model, names, f"{base}_k4", k.astype(ml_dtypes.uint4))
        shape_out = add_initializer(model, names, f"{base}_shape", np.array(q4.shape, np.int64))
        nodes = [
            ir.node("Cast", [q4_blocked], {"to": ir.DataType.INT32}),
            ir.node("Cast", [k_value], {"to": ir.DataType.INT32}),
        ]
        nodes.append(ir.node("Mul", [nodes[0].outputs[0], nodes[1].outputs[0]]))
        nodes.append(ir.node("Reshape", [nodes[2].outputs[0], shape_out]))
        nodes.append(ir.node("Cast", [nodes[3].outputs[0]], {"to": ir.DataType.INT8}))
        shapes = [blocked_shape, k.shape, blocked_shape, q4.shape, q4.shape]
        for i, (node, shape) in enumerate(zip(nodes, shapes, strict=True)):
            out = node.outputs[0]
            out.name = names.fresh(f"{base}_widen{i}")
            out.dtype = ir.DataType.INT8 if node is nodes[-1] else ir.DataType.INT32
            out.shape = ir.Shape(shape)
        scale = add_initializer(model, names, f"{base}_channel_scale", channel)
        zero = add_initializer(model, names, f"{base}_zero_point", np.zeros(len(channel), np.int8))
        model.graph.insert_before(dq, nodes)
        dq.replace_input_with(0, nodes[-1].outputs[0])
        drop_if_unused(q4_value)
        dq.replace_input_with(1, scale)
        dq.resize_inputs(3)
        dq.replace_input_with(2, zero)
        dq.attributes.pop("block_size")
        dq.attributes["axis"] = ir.AttrInt64("axis", out_axis)
        del dq.metadata_props[CHANNEL_SCALE_KEY]
        drop_if_unused(scale_value)
