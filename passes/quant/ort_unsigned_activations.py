"""`quant::ort_unsigned_activations`: int8 activation Q/DQ pairs → uint8 with zero point + 128.

    before: x ─ QuantizeLinear(s, zp: INT8 z) ─ DequantizeLinear(s, z) ─► Conv
    after:  x ─ QuantizeLinear(s, zp: UINT8 z+128) ─ DequantizeLinear(s, z+128) ─► Conv

The same grid shifted by 128, so the same numbers. ONNX Runtime's x86 kernels want uint8
activations (signed ones fall back to float), and ORT 1.32 fails to load opset-21 graphs with
signed activation Q/DQ at full optimization (toolchain.md §3.4: `QDQS8ToU8Transformer`
"output_dtype INT8 does not match y_zero_point type UINT8"). `quant::activations:symmetric=true`
graphs (the TensorRT form) therefore get this pass on ORT. Weight DQs (no QuantizeLinear
before them) keep int8.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from edgec.pass_manager import EdgecPass, register_pass
from edgec.passes._graph import Names, const_array, drop_if_unused
from edgec.passes.quant._build import add_initializer


@register_pass
class OrtUnsignedActivations(EdgecPass):
    id = "quant::ort_unsigned_activations"

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        names = Names(model)
        shifted: dict[int, ir.Value] = {}
        for q in list(model.graph):
            if q.op_type != "QuantizeLinear" or len(q.inputs) < 3:
                continue
            zp = q.inputs[2]
            array = const_array(zp)
            if array is None or array.dtype != np.int8:
                continue
            if id(zp) not in shifted:
                unsigned = (array.astype(np.int16) + 128).astype(np.uint8)
                shifted[id(zp)] = add_initializer(model, names, f"{zp.name}_u8", unsigned)
            q.replace_input_with(2, shifted[id(zp)])
            q.outputs[0].dtype = ir.DataType.UINT8
            for use in list(q.outputs[0].uses()):
                if use.node.op_type == "DequantizeLinear" and use.node.inputs[2] is zp:
                    use.node.replace_input_with(2, shifted[id(zp)])
            self.stats["pairs_made_unsigned"] += 1
        for old in list(model.graph.initializers.values()):
            if id(old) in shifted:
                drop_if_unused(old)
        return ir.passes.PassResult(model, modified=bool(self.stats["pairs_made_unsigned"]))
