"""`quant::ort_gemm_split_bias`: a quantized Gemm's C becomes an Add after it where ORT needs it.

    before: DQ(a) ─┐
            DQ(b) ─┴─ Gemm(·, ·, C) ─► Q …         C: an activation or a 2-D constant
    after:  DQ(a) ─┐                                (e.g. token-major attention's bias
            DQ(b) ─┴─ Gemm(·, ·) ─ Add(·, C) ─► Q …  table, or the cascade input)

ONNX Runtime 1.32 fuses DQ → Gemm into its integer `QGemm` only with no C, or with a
per-column constant C when the output is quantized (measured: an activation or 2-D C, or any
C with a float output such as a classifier head, leaves a float Gemm); without C it runs QGemm
with a float output and the Add in float. `beta` moves onto the Add as a Mul
when it is not 1. The same sum, rounded in float32 in a different order (≤ 1 ulp-level
differences). Runs on ORT targets after `quant::activations`; a second run finds no Gemm
with such a C and changes nothing.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from edgec.pass_manager import EdgecPass, register_pass
from edgec.passes._graph import Names, const_array
from edgec.passes.quant._build import add_initializer


@register_pass
class OrtGemmSplitBias(EdgecPass):
    id = "quant::ort_gemm_split_bias"

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        names = Names(model)
        for gemm in list(model.graph):
            if gemm.op_type != "Gemm" or len(gemm.inputs) < 3 or gemm.inputs[2] is None:
                continue
            if not all(_dequantized(v) for v in gemm.inputs[:2]):
                continue
            bias = gemm.inputs[2]
            array = const_array(bias)
            quantized_out = [u.node.op_type for u in gemm.outputs[0].uses()] == ["QuantizeLinear"]
            if array is not None and array.ndim <= 1 and quantized_out:
                continue  # QGemm takes a per-column bias when its output is quantized
            self._split(model, gemm, bias, names)
            self.stats["biases_split"] += 1
        return ir.passes.PassResult(model, modified=bool(self.stats["biases_split"]))

    def _split(self, model: ir.Model, gemm: ir.Node, bias: ir.Value, names: Names) -> None:
        out = gemm.outputs[0]
        product = ir.Value(name=names.fresh(f"{out.name}_product"), shape=out.shape)
        product.dtype = out.dtype
        beta = gemm.attributes.pop("beta", None)
        nodes = []
        if beta is not None and beta.as_float() != 1.0:
            factor = add_initializer(
                model, names, f"{out.name}_beta", np.array(beta.as_float(), np.float32)
            )
            nodes.append(ir.node("Mul", [bias, factor]))
            nodes[-1].outputs[0].name = names.fresh(f"{out.name}_scaled_bias")
            bias = nodes[-1].outputs[0]
        gemm.resize_inputs(2)
        out.replace_all_uses_with(product, replace_graph_outputs=True)  # readers move first
        add = ir.node("Add", [out, bias], outputs=[product], name=f"{gemm.name}_bias")
        name = out.name
        out.name, product.name = names.fresh(f"{name}_product"), name
        model.graph.insert_after(gemm, [*nodes, add])


def _dequantized(value: ir.Value | None) -> bool:
    producer = value.producer() if value is not None else None
    return producer is not None and producer.op_type == "DequantizeLinear"
