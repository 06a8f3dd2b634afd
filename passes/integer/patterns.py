"""Float subgraphs that lower as one integer op: GELU exported as its erf formula.

    x ─ Div(√2) ─ Erf ─ Add(1) ─ Mul(0.5) ─ Mul(x) ─► gelu        (or 0.5 applied to x first)

`gelu_roots(graph)` maps the node that writes `gelu` to the pattern's nodes, the Div first.
"""

from __future__ import annotations

import math

import onnx_ir as ir

from edgec.passes._graph import const_array


def _scalar(value: ir.Value | None, expected: float) -> bool:
    array = const_array(value)
    return (
        array is not None and array.size == 1 and math.isclose(float(array), expected, rel_tol=1e-4)
    )


def _other(node: ir.Node, value: ir.Value) -> ir.Value | None:
    rest = [v for v in node.inputs if v is not value]
    return rest[0] if len(rest) == 1 else None


def _only_user(value: ir.Value, op_type: str) -> ir.Node | None:
    uses = value.uses()
    if len(uses) != 1 or value.is_graph_output() or uses[0].node.op_type != op_type:
        return None
    return uses[0].node


def _gelu_from_erf(erf: ir.Node) -> list[ir.Node] | None:
    div = erf.inputs[0].producer()
    if div is None:
        return None
    if (div.op_type == "Div" and _scalar(div.inputs[1], math.sqrt(2))) or (
        div.op_type == "Mul" and _scalar(_other(div, div.inputs[0]), 1 / math.sqrt(2))
    ):
        x = div.inputs[0]
    else:
        return None
    add = _only_user(erf.outputs[0], "Add")
    if add is None or not _scalar(_other(add, erf.outputs[0]), 1.0):
        return None
    nodes, current, half, seen_x = [div, erf, add], add.outputs[0], False, False
    while not (half and seen_x):
        mul = _only_user(current, "Mul")
        if mul is None:
            return None
        other = _other(mul, current)
        producer = other.producer() if other is not None else None
        if _scalar(other, 0.5) and not half:
            half = True
        elif other is x and not seen_x:
            seen_x = True
        elif (
            producer is not None
            and producer.op_type == "Mul"
            and x in producer.inputs
            and _scalar(_other(producer, x), 0.5)
            and len(other.uses()) == 1
        ):
            half = seen_x = True
            nodes.append(producer)
        else:
            return None
        nodes.append(mul)
        current = mul.outputs[0]
    return nodes


def gelu_roots(graph: ir.Graph) -> dict[int, list[ir.Node]]:
    """id(last node of a GELU pattern) → the pattern's nodes (the Div/Mul reading x first)."""
    roots = {}
    for node in graph:
        if node.op_type == "Erf" and (nodes := _gelu_from_erf(node)) is not None:
            roots[id(nodes[-1])] = nodes
    return roots
