"""speed::global_pool — ReduceMean over the spatial axes of a 4-D map becomes GlobalAveragePool.

Before (X[N,C,H,W], axes = {2, 3} in any order or sign, keepdims = 1)::

    X ─ ReduceMean(axes = [2, 3], keepdims = 1) ─ Y[N,C,1,1]

after::

    X ─ GlobalAveragePool ─ Y[N,C,1,1]

Same sum and division by H·W. ORT runs GlobalAveragePool in its blocked NCHWc layout, so the
SE blocks and the head stop leaving that layout (no ReorderOutput before the mean). Only a
constant axes input (or attribute) naming exactly the two spatial axes of a rank-4 input, with
keepdims 1 and noop_with_empty_axes 0, is rewritten.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from edgec.pass_manager import EdgecPass, register_pass
from edgec.passes._graph import const_array, drop_if_unused
from edgec.passes.speed._util import attr


def _spatial_mean(node: ir.Node) -> bool:
    if node.op_type != "ReduceMean" or node.domain not in ("", "ai.onnx"):
        return False
    x = node.inputs[0]
    if x is None or x.shape is None or len(x.shape) != 4:
        return False
    if attr(node, "keepdims", 1) != 1 or attr(node, "noop_with_empty_axes", 0) != 0:
        return False
    if len(node.inputs) > 1 and node.inputs[1] is not None:
        axes = const_array(node.inputs[1])
        if axes is None:
            return False
    else:
        axes = attr(node, "axes")
        if axes is None:
            return False
    axes = sorted(int(a) % 4 for a in np.asarray(axes).reshape(-1))
    return axes == [2, 3]


@register_pass
class GlobalPool(EdgecPass):
    """Rewrite spatial ReduceMean (keepdims) on 4-D maps into GlobalAveragePool."""

    id = "speed::global_pool"

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        graph = model.graph
        modified = False
        for node in list(graph):
            if node.graph is not graph or not _spatial_mean(node):
                continue
            consts = [v for v in node.inputs[1:] if v is not None and v.is_initializer()]
            new = ir.node("GlobalAveragePool", [node.inputs[0]])
            old_out, out = node.outputs[0], new.outputs[0]
            out.shape, out.type = old_out.shape, old_out.type
            graph.insert_before(node, new)
            was_output, name = old_out.is_graph_output(), old_out.name
            ir.convenience.replace_all_uses_with(old_out, out, replace_graph_outputs=True)
            graph.remove(node, safe=True)
            if was_output:
                old_out.name = None
                out.name = name
            for value in consts:
                drop_if_unused(value)
            self.stats["means_rewritten"] += 1
            modified = True
        return ir.passes.PassResult(model, modified)
