"""`quant::activations`: a QuantizeLinear → DequantizeLinear pair on every calibrated tensor.

    before: x ──────────────────────────────────────► Conv
              └─────────────────────────────────────► Softmax
    after:  x ─ QuantizeLinear(s, zp) ─ DequantizeLinear(s, zp) ─► Conv
              └─────────────────────────────────────► Softmax  (sensitive readers keep x)

The tensors are those `quant::calibrate` gave a range (`_policy.RANGE_KEY`); scale and zero
point come from `ranges.activation_qparams`: uint8 asymmetric by default, int8 with zero
point 0 when `symmetric` (TensorRT). docs/quantization.md has the whole form. Tensors that
already feed a QuantizeLinear are skipped, so a second run changes nothing.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx_ir as ir

from edgec.pass_manager import EdgecPass, register_pass
from edgec.passes._graph import Names
from edgec.passes.quant import _policy
from edgec.passes.quant._build import add_initializer
from edgec.passes.quant.ranges import activation_qparams


@register_pass
class QuantizeActivations(EdgecPass):
    id = "quant::activations"

    @dataclasses.dataclass(frozen=True)
    class Options:
        symmetric: bool = False

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        names = Names(model)
        for value in _policy.tensors_to_quantize(model.graph):
            bounds = _policy.read_range(value)
            if bounds is None:
                self.stats["uncalibrated_skipped"] += 1
                continue
            if any(use.node.op_type == "QuantizeLinear" for use in value.uses()):
                continue
            readers = [
                (use.node, use.idx)
                for use in value.uses()
                if use.node.op_type not in _policy.SENSITIVE
            ]
            self.stats["float_readers_kept"] += len(value.uses()) - len(readers)
            self._insert_pair(model, value, readers, bounds, names)
            self.stats["tensors_quantized"] += 1
        return ir.passes.PassResult(model, modified=bool(self.stats["tensors_quantized"]))

    def _insert_pair(self, model, value, readers, bounds, names) -> None:
        scale, zero_point = activation_qparams(*bounds, symmetric=self.options.symmetric)
        zp_dtype = np.int8 if self.options.symmetric else np.uint8
        params = [
            add_initializer(model, names, f"{value.name}_scale", np.array(scale, np.float32)),
            add_initializer(
                model, names, f"{value.name}_zero_point", np.array(zero_point, zp_dtype)
            ),
        ]
        quantized = ir.Value(name=names.fresh(f"{value.name}_quantized"), shape=value.shape)
        quantized.dtype = ir.DataType.INT8 if self.options.symmetric else ir.DataType.UINT8
        restored = ir.Value(name=names.fresh(f"{value.name}_dequantized"), shape=value.shape)
        restored.dtype = ir.DataType.FLOAT
        q = ir.node("QuantizeLinear", [value, *params], outputs=[quantized], name=f"{value.name}_Q")
        dq = ir.node("DequantizeLinear", [quantized, *params], outputs=[restored],
                     name=f"{value.name}_DQ")  # fmt: skip
        producer = value.producer()
        if producer is not None:
            model.graph.insert_after(producer, [q, dq])
        else:
            model.graph.insert_before(next(iter(model.graph)), [q, dq])
        for node, index in readers:
            node.replace_input_with(index, restored)
