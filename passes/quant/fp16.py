"""`quant::fp16`: float32 weights and activations → float16; graph inputs/outputs stay float32.

    before: x (f32) ─► Conv(W f32) ─► LayerNorm(γ f32) ─► y (f32)
    after:  x (f32) ─ Cast(f16) ─► Conv(W f16) ─► LayerNorm(γ f16) ─ Cast(f32) ─► y (f32)

Every float32 initializer and Constant becomes float16 (values clipped to ±65504), every
float32 value is retyped, `Cast(to=FLOAT)` becomes `Cast(to=FLOAT16)`. Inputs that ONNX
defines as float32 only stay float32 (Resize's roi and scales). On ONNX Runtime's CPU EP many
ops have no float16 kernel and run in float32 between Casts ORT inserts;
`runtimes.ort_support.float16_fallbacks` lists them for the manifest. A graph without
float32 values is left alone, so a second run changes nothing.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from edgec.pass_manager import EdgecPass, register_pass
from edgec.passes._graph import Names

# (op_type, input index) that must stay float32 whatever the graph's precision
_FLOAT32_ONLY = {("Resize", 1), ("Resize", 2), ("Upsample", 1)}
_F32, _F16 = ir.DataType.FLOAT, ir.DataType.FLOAT16
_F16_MAX = float(np.finfo(np.float16).max)


@register_pass
class Float16(EdgecPass):
    id = "quant::fp16"

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        graph = model.graph
        pinned = {
            id(node.inputs[i])
            for node in graph
            for op, i in _FLOAT32_ONLY
            if node.op_type == op and len(node.inputs) > i and node.inputs[i] is not None
        }
        for value in list(graph.initializers.values()):
            if value.dtype == _F32 and id(value) not in pinned:
                value.const_value = _half(value.const_value)
                value.dtype = _F16
                self.stats["initializers"] += 1
        for node in graph:
            self._node(node, pinned)
        names = Names(model)
        for value in list(graph.inputs):
            if value.dtype == _F32 and not value.is_initializer() and not _edge_cast(value):
                self._cast_input(graph, value, names)
        for i, value in enumerate(list(graph.outputs)):
            if value.dtype == _F16:
                graph.outputs[i] = self._cast_output(graph, value, names)
        return ir.passes.PassResult(model, modified=any(self.stats.values()))

    def _node(self, node: ir.Node, pinned: set[int]) -> None:
        if node.op_type == "Cast" and node.outputs[0].is_graph_output():
            return  # the edge cast back to float32
        if node.op_type == "ConstantOfShape" and "value" not in node.attributes:
            zero = ir.Tensor(np.zeros(1, np.float32))  # ONNX's default fill: float32 0
            node.attributes["value"] = ir.AttrTensor("value", zero)
        if node.op_type in ("Constant", "ConstantOfShape") and "value" in node.attributes:
            tensor = node.attributes["value"].as_tensor()
            if tensor.dtype == _F32 and id(node.outputs[0]) not in pinned:
                node.attributes["value"] = ir.AttrTensor("value", _half(tensor))
                self.stats["constants"] += 1
        if node.op_type == "Cast" and node.attributes["to"].as_int() == _F32:
            node.attributes["to"] = ir.AttrInt64("to", _F16)
            self.stats["casts_retargeted"] += 1
        for out in node.outputs:
            if out.dtype == _F32 and id(out) not in pinned:
                out.dtype = _F16
                self.stats["values"] += 1

    def _cast_input(self, graph: ir.Graph, value: ir.Value, names: Names) -> None:
        readers = [(u.node, u.idx) for u in value.uses()]
        cast = ir.node("Cast", [value], {"to": _F16})
        half = cast.outputs[0]
        half.name, half.dtype, half.shape = names.fresh(f"{value.name}_fp16"), _F16, value.shape
        graph.insert_before(next(iter(graph)), cast)
        for node, index in readers:
            node.replace_input_with(index, half)
        self.stats["edge_casts"] += 1

    def _cast_output(self, graph: ir.Graph, value: ir.Value, names: Names) -> ir.Value:
        name = value.name
        value.name = names.fresh(f"{name}_fp16")
        cast = ir.node("Cast", [value], {"to": _F32})
        full = cast.outputs[0]
        full.name, full.dtype, full.shape = name, _F32, value.shape
        graph.append(cast)
        self.stats["edge_casts"] += 1
        return full


def _edge_cast(value: ir.Value) -> bool:
    """True when `value` (a graph input) is only read by Casts to float16: already done."""
    uses = value.uses()
    return bool(uses) and all(
        u.node.op_type == "Cast" and u.node.attributes["to"].as_int() == _F16 for u in uses
    )


def _half(tensor: ir.TensorProtocol) -> ir.Tensor:
    array = np.clip(tensor.numpy(), -_F16_MAX, _F16_MAX).astype(np.float16)
    return ir.Tensor(array, name=tensor.name)
