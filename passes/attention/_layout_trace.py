"""Follow a value through pure layout ops and say where each of its elements comes from.

Reshape, Transpose, Split, Slice, Gather, Squeeze, Unsqueeze, Flatten and Identity with
constant parameters only move or select elements, so running them on an index tensor
(`arange` of the source's size) instead of data tells, exactly, which source element every
output element is. `trace_back` walks from a value up to the first node that computes
something (the *source*), also passing scalar `Mul`/`Div` by constants (their factor is
returned, the layout is unchanged). `trace_forward` walks down a chain of single-reader layout
ops. Each op is evaluated with the ONNX reference evaluator, so its semantics are ONNX's own.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx_ir as ir

from edgec.passes._graph import const_array, evaluate
from edgec.passes.attention._explain import NoMatch
from edgec.passes.speed._util import only_consumer, static_shape

_ONNX = ("", "ai.onnx")
MOVING = frozenset({"Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten", "Identity"})
SELECTING = frozenset({"Split", "Slice", "Gather"})


@dataclasses.dataclass
class Traced:
    """`value`'s elements as flat indices into `source` (same shape as `value`)."""

    source: ir.Value
    index: np.ndarray
    scale: float
    nodes: list[ir.Node]


def _is_layout(node: ir.Node, ops: frozenset[str]) -> bool:
    return (
        node.domain in _ONNX
        and node.op_type in ops
        and node.inputs[0] is not None
        and all(const_array(v) is not None for v in node.inputs[1:] if v is not None)
    )


def scalar_factor(node: ir.Node) -> tuple[float, ir.Value] | None:
    """`Mul(x, c)`, `Mul(c, x)` or `Div(x, c)` with a one-element constant c → (factor, x)."""
    if node.domain not in _ONNX or node.op_type not in ("Mul", "Div") or len(node.inputs) != 2:
        return None
    pairs = [node.inputs] if node.op_type == "Div" else [node.inputs, node.inputs[::-1]]
    for x, c in pairs:
        arr = const_array(c)
        if arr is not None and arr.size == 1 and const_array(x) is None:
            f = float(arr.reshape(()))
            return (1.0 / f if node.op_type == "Div" else f), x
    return None


def _apply(node: ir.Node, index: np.ndarray, output: int, opset: int) -> np.ndarray:
    operands = [index] + [const_array(v) if v is not None else None for v in node.inputs[1:]]
    return np.asarray(evaluate(node, operands, opset)[output])


def trace_back(value: ir.Value, opset: int) -> Traced:
    """Walk up from `value` through layout ops and scalar scalings to its source."""
    path: list[tuple[ir.Node, int]] = []
    scale, current = 1.0, value
    while (node := current.producer()) is not None:
        if _is_layout(node, MOVING | SELECTING):
            path.append((node, list(node.outputs).index(current)))
            current = node.inputs[0]
            continue
        factor = scalar_factor(node)
        if factor is None:
            break
        scale *= factor[0]
        path.append((node, -1))
        current = factor[1]
    shape = static_shape(current)
    if shape is None:
        raise NoMatch(f"the shape of {current.name!r} is not static (run cleanup::infer_shapes)")
    index = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)
    for node, output in reversed(path):
        if output >= 0:
            index = _apply(node, index, output, opset)
    return Traced(current, index, scale, [node for node, _ in path])


def trace_forward(value: ir.Value, opset: int) -> list[tuple[ir.Value, np.ndarray, list[ir.Node]]]:
    """`value` and every value below it along single-reader moving layout ops, each with
    its elements as flat indices into `value` and the nodes passed to get there."""
    shape = static_shape(value)
    if shape is None:
        raise NoMatch(f"the shape of {value.name!r} is not static (run cleanup::infer_shapes)")
    index = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)
    chain = [(value, index, [])]
    while (node := only_consumer(value)) is not None and _is_layout(node, MOVING):
        if node.inputs[0] is not value:
            break
        index = _apply(node, index, 0, opset)
        value = node.outputs[0]
        chain.append((value, index, [*chain[-1][2], node]))
    return chain
