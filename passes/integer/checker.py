"""Prove (or refute) that a graph is integer-only between its input quantize and output dequantize.

The integer region is every node of the graph except its *boundary*:

- a `QuantizeLinear` whose data input is a graph input (the input quantize), and
- a `DequantizeLinear` whose output is a graph output (the output dequantize).

Inside the region, every tensor a node reads or writes must have an integer (or bool) element
type, and no node may run in a subgraph (If/Loop/Scan bodies are not checked, so they are
reported). A float tensor is allowed only where the boundary alone touches it: the graph input
a boundary quantize reads, a boundary node's scale, and the graph output a boundary dequantize
writes. Element types come from the graph and from ONNX shape inference; a tensor whose type
stays unknown cannot be proved integer and is reported too.

`check_int_only(model)` returns an `IntOnlyReport`: the boundary nodes, the op histogram of
the region, and every violation (node, op, tensor, element type) — none for an integer-only
graph. It reads any ONNX model (`edgec inspect --int-only MODEL`).
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Any

import onnx
import onnx_ir as ir

_INTEGER_TYPES = {
    onnx.TensorProto.INT4,
    onnx.TensorProto.UINT4,
    onnx.TensorProto.INT8,
    onnx.TensorProto.UINT8,
    onnx.TensorProto.INT16,
    onnx.TensorProto.UINT16,
    onnx.TensorProto.INT32,
    onnx.TensorProto.UINT32,
    onnx.TensorProto.INT64,
    onnx.TensorProto.UINT64,
    onnx.TensorProto.BOOL,
}
_CONTROL_FLOW = {"If", "Loop", "Scan"}


@dataclasses.dataclass(frozen=True)
class Violation:
    node: str
    op: str
    tensor: str
    dtype: str  # element type name, "unknown", or "subgraph"

    def __str__(self) -> str:
        return f"{self.node} ({self.op}): {self.tensor} is {self.dtype}"


@dataclasses.dataclass
class IntOnlyReport:
    quantize: list[str]  # boundary QuantizeLinear nodes
    dequantize: list[str]  # boundary DequantizeLinear nodes
    ops: dict[str, int]  # op histogram of the integer region
    violations: list[Violation]

    @property
    def int_only(self) -> bool:
        return not self.violations

    def to_dict(self) -> dict[str, Any]:
        return {
            "int_only": self.int_only,
            "boundary": {"quantize": self.quantize, "dequantize": self.dequantize},
            "ops": self.ops,
            "violations": [dataclasses.asdict(v) for v in self.violations],
        }

    def text(self) -> str:
        if self.int_only:
            ops = ", ".join(f"{op}×{n}" for op, n in self.ops.items())
            return f"int-only: yes ({sum(self.ops.values())} nodes: {ops})"
        shown = [f"  {v}" for v in self.violations[:40]]
        more = len(self.violations) - len(shown)
        if more:
            shown.append(f"  … and {more} more")
        return f"int-only: no ({len(self.violations)} float tensors/ops):\n" + "\n".join(shown)


def check_int_only(model: ir.Model | onnx.ModelProto) -> IntOnlyReport:
    """The integer-only verdict of `model` (see the module docstring)."""
    proto = ir.to_proto(model) if isinstance(model, ir.Model) else model
    try:
        graph = onnx.shape_inference.infer_shapes(proto, strict_mode=False).graph
    except onnx.shape_inference.InferenceError:  # e.g. an unknown domain: use what is recorded
        graph = proto.graph
    types = _element_types(graph)
    graph_inputs = {v.name for v in graph.input}
    graph_outputs = {v.name for v in graph.output}
    boundary_q = [n for n in graph.node if _is_input_quantize(n, graph_inputs)]
    boundary_dq = [n for n in graph.node if _is_output_dequantize(n, graph_outputs)]
    boundary = {id(n) for n in (*boundary_q, *boundary_dq)}

    ops: collections.Counter[str] = collections.Counter()
    violations: list[Violation] = []
    for index, node in enumerate(graph.node):
        if id(node) in boundary:
            continue
        name = node.name or f"#{index}"
        op = node.op_type if not node.domain else f"{node.domain}::{node.op_type}"
        ops[op] += 1
        if node.op_type in _CONTROL_FLOW or any(
            a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
            for a in node.attribute
        ):
            violations.append(Violation(name, op, "(subgraph)", "subgraph"))
        for tensor in [*node.input, *node.output]:
            if not tensor:
                continue
            elem = types.get(tensor, onnx.TensorProto.UNDEFINED)
            if elem not in _INTEGER_TYPES:
                violations.append(Violation(name, op, tensor, _type_name(elem)))
    return IntOnlyReport(
        quantize=[n.name for n in boundary_q],
        dequantize=[n.name for n in boundary_dq],
        ops=dict(sorted(ops.items())),
        violations=violations,
    )


def _is_input_quantize(node: onnx.NodeProto, graph_inputs: set[str]) -> bool:
    return node.op_type == "QuantizeLinear" and not node.domain and node.input[0] in graph_inputs


def _is_output_dequantize(node: onnx.NodeProto, graph_outputs: set[str]) -> bool:
    return (
        node.op_type == "DequantizeLinear" and not node.domain and node.output[0] in graph_outputs
    )


def _element_types(graph: onnx.GraphProto) -> dict[str, int]:
    types = {}
    for info in [*graph.input, *graph.value_info, *graph.output]:
        if info.type.HasField("tensor_type"):
            types[info.name] = info.type.tensor_type.elem_type
    for tensor in graph.initializer:
        types[tensor.name] = tensor.data_type
    for node in graph.node:  # Constant nodes whose type inference may not have recorded
        if node.op_type == "Constant" and not node.domain:
            for attr in node.attribute:
                if attr.name == "value":
                    types.setdefault(node.output[0], attr.t.data_type)
                elif attr.name in ("value_float", "value_floats"):
                    types.setdefault(node.output[0], onnx.TensorProto.FLOAT)
                elif attr.name in ("value_int", "value_ints"):
                    types.setdefault(node.output[0], onnx.TensorProto.INT64)
    return types


def _type_name(elem: int) -> str:
    if elem == onnx.TensorProto.UNDEFINED:
        return "unknown"
    return onnx.TensorProto.DataType.Name(elem).lower()
