"""Graph helpers of the speed passes (not a pass); shared ones live in `edgec.passes._graph`."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from edgec.passes._graph import const_array


def attr(node: ir.Node, name: str, default=None):
    a = node.attributes.get(name)
    return default if a is None else a.value


def static_shape(value: ir.Value | None) -> tuple[int, ...] | None:
    """The value's shape as ints when every dimension is known."""
    if value is None or value.shape is None:
        return None
    dims = []
    for d in value.shape:
        if not isinstance(d, int):
            return None
        dims.append(d)
    return tuple(dims)


def producer(value: ir.Value | None, op_type: str) -> ir.Node | None:
    """The ONNX-domain node of `op_type` that produces `value`, else None."""
    if value is None:
        return None
    node = value.producer()
    if node is None or node.op_type != op_type or node.domain not in ("", "ai.onnx"):
        return None
    return node


def only_consumer(value: ir.Value) -> ir.Node | None:
    """The single node that reads `value` (once), when the value is not a graph output."""
    if value.is_graph_output():
        return None
    uses = list(value.uses())
    if len(uses) != 1:
        return None
    return uses[0].node


def new_initializer(graph: ir.Graph, name: str, array: np.ndarray) -> ir.Value:
    """Register `array` as an initializer under a name not yet used in `graph`."""
    taken = set(graph.initializers)
    base, k = name, 0
    while name in taken:
        k += 1
        name = f"{base}_{k}"
    value = ir.val(name, const_value=ir.tensor(np.ascontiguousarray(array), name=name))
    graph.register_initializer(value)
    return value


def is_conv_same_depthwise(node: ir.Node, channels: int | None = None) -> bool:
    """Conv, depthwise (group == C == W.shape[0], one input channel per group), stride 1,
    dilation 1, odd kernel, symmetric 'same' zero padding, constant weights/bias."""
    if node.op_type != "Conv" or node.domain not in ("", "ai.onnx"):
        return False
    w = const_array(node.inputs[1] if len(node.inputs) > 1 else None)
    if w is None or w.ndim != 4 or w.shape[1] != 1:
        return False
    c, _, kh, kw = w.shape
    if attr(node, "group", 1) != c or (channels is not None and channels != c):
        return False
    if len(node.inputs) > 2 and node.inputs[2] is not None and const_array(node.inputs[2]) is None:
        return False
    if attr(node, "auto_pad", "NOTSET") not in ("NOTSET", b"NOTSET"):
        return False
    if kh % 2 == 0 or kw % 2 == 0:
        return False
    if list(attr(node, "strides", [1, 1])) != [1, 1] or list(attr(node, "dilations", [1, 1])) != [
        1,
        1,
    ]:
        return False
    return list(attr(node, "pads", [0, 0, 0, 0])) == [kh // 2, kw // 2, kh // 2, kw // 2]
