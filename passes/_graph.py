"""Small graph helpers shared by every pass family (private to `edgec.passes`).

Constants are read through `const_array`, which sees initializers and `Constant` nodes but not
an initializer that is also a graph input (the caller may override it, so it is not constant).
`bypass` removes a node whose output equals one of its inputs, keeping graph outputs' names.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import onnx
import onnx.reference
import onnx_ir as ir


def const_array(value: ir.Value | None) -> np.ndarray | None:
    """The constant behind `value` as a numpy array, or None when it is not a constant."""
    if value is None or value.is_graph_input():
        return None
    try:
        tensor = ir.convenience.get_const_tensor(value)
    except ValueError:  # a malformed Constant node: not ours to judge here
        return None
    return None if tensor is None else tensor.numpy()


def dtype_of(value: ir.Value | None) -> ir.DataType | None:
    if value is None:
        return None
    if value.dtype is not None:
        return value.dtype
    array = const_array(value)
    return None if array is None else ir.DataType.from_numpy(array.dtype)


def graphs(model: ir.Model) -> Iterator[ir.Graph]:
    """The main graph and every subgraph below it (If/Loop/Scan bodies), outermost first."""
    yield model.graph
    for node in ir.traversal.RecursiveGraphIterator(model.graph):
        for attr in node.attributes.values():
            if attr.is_ref():
                continue
            if attr.type == ir.AttributeType.GRAPH:
                yield attr.as_graph()
            elif attr.type == ir.AttributeType.GRAPHS:
                yield from attr.as_graphs()


class Names:
    """Hands out value names not yet used in a model (deterministic: hint, hint_1, hint_2…)."""

    def __init__(self, model: ir.Model):
        self._used: set[str] = set()
        for graph in graphs(model):
            self._used.update(v.name for v in graph.inputs if v.name)
            self._used.update(graph.initializers)
            for node in graph:
                self._used.update(v.name for v in node.outputs if v.name)

    def fresh(self, hint: str) -> str:
        name, i = hint, 0
        while name in self._used:
            i += 1
            name = f"{hint}_{i}"
        self._used.add(name)
        return name


def drop_if_unused(value: ir.Value | None) -> bool:
    """Remove an initializer nobody reads any more; True if it was removed."""
    if value is None or not value.is_initializer() or value.uses() or value.is_graph_output():
        return False
    graph = value.graph
    if graph is None or value.name not in graph.initializers or value.is_graph_input():
        return False
    graph.initializers.pop(value.name)
    return True


def bypass(node: ir.Node, source: ir.Value) -> bool:
    """Remove `node`, whose first output equals `source`; False (nothing done) if it must stay.

    Consumers of the output read `source` instead. When the output is a graph output, `source`
    takes over its name, which is only possible when `source` is produced by a node of the same
    graph and is not itself a graph output; otherwise the node stays (like an Identity that
    copies a graph input to a graph output).
    """
    graph = node.graph
    out = node.outputs[0]
    if graph is None or any(o.uses() or o.is_graph_output() for o in node.outputs[1:]):
        return False
    if out.is_graph_output():
        producer = source.producer()
        if producer is None or producer.graph is not graph or source.is_graph_output():
            return False
        name = out.name
        out.replace_all_uses_with(source, replace_graph_outputs=True)
        out.name = None
        source.name = name
    else:
        out.replace_all_uses_with(source)
    if source.shape is None and out.shape is not None:
        source.shape = out.shape
    if source.type is None and out.type is not None:
        source.type = out.type
    operands = [v for v in node.inputs if v is not None]
    graph.remove(node, safe=True)
    for operand in operands:  # e.g. the shape constant of a no-op Reshape
        drop_if_unused(operand)
    return True


def opset_version(model: ir.Model, domain: str = "") -> int:
    return model.opset_imports.get(domain, model.opset_imports.get("ai.onnx", 0))


def evaluate(node: ir.Node, inputs: list[np.ndarray | None], opset: int) -> list[np.ndarray]:
    """Run one ONNX node on numpy inputs with the ONNX reference evaluator."""
    proto = ir.serde.serialize_node(node)
    names = [f"i{k}" if v is not None else "" for k, v in enumerate(inputs)]
    outs = [f"o{k}" for k in range(len(proto.output))]
    del proto.input[:]
    proto.input.extend(names)
    del proto.output[:]
    proto.output.extend(outs)
    graph = onnx.helper.make_graph(
        [proto],
        "evaluate",
        [onnx.helper.make_empty_tensor_value_info(n) for n in names if n],
        [onnx.helper.make_empty_tensor_value_info(n) for n in outs],
    )
    model = onnx.helper.make_model(
        graph, opset_imports=[onnx.helper.make_opsetid(node.domain, opset)]
    )
    feeds = {n: v for n, v in zip(names, inputs, strict=True) if n}
    return list(onnx.reference.ReferenceEvaluator(model).run(None, feeds))
