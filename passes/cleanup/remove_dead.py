"""`cleanup::remove_dead`: drop nodes, initializers, functions and opsets nothing uses."""

from __future__ import annotations

import onnx_ir as ir
from onnx_ir.passes.common import (
    RemoveUnusedFunctionsPass,
    RemoveUnusedNodesPass,
    RemoveUnusedOpsetsPass,
)

from edgec.pass_manager import EdgecPass, register_pass
from edgec.passes._graph import graphs


@register_pass
class RemoveDeadPass(EdgecPass):
    """Dead-code elimination; the model's inputs and outputs (its signature) never change.

    Runs the `onnx_ir` common passes in dependency order: unused nodes and initializers
    first (which also trims unused optional outputs and trailing empty inputs), then local
    functions no node calls, then opset imports no node or function uses (the default domain
    is always kept).

    Before::

        <float[4] w = {...}, float[8] unused_w = {...}>
        a = Mul(x, w)
        b = Relu(x)          # b is read by nobody
        y = Add(a, x)        # graph output

    After::

        <float[4] w = {...}>
        a = Mul(x, w)
        y = Add(a, x)

    Stats: how many were removed of `nodes` (graph and subgraphs), `initializers`,
    `functions`, `function_nodes` (inside functions, bodies of removed functions included),
    `opsets` (model imports), `function_opsets` (likewise), and `node_slots` (unused
    optional outputs and trailing empty inputs trimmed).
    """

    id = "cleanup::remove_dead"

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        before, slots_before = _census(model)
        RemoveUnusedNodesPass()(model)
        RemoveUnusedFunctionsPass()(model)
        RemoveUnusedOpsetsPass()(model)
        after, slots_after = _census(model)
        # Count from the model itself rather than trusting the sub-passes' flags: trimming an
        # unused optional output changes a node but is not reported by onnx_ir.
        for key in before:
            if before[key] != after[key]:
                self.stats[key] += before[key] - after[key]
        trimmed = sum(slots_before[n] - k for n, k in slots_after.items())
        if trimmed:
            self.stats["node_slots"] += trimmed
        return ir.passes.PassResult(model, modified=before != after or bool(trimmed))


def _census(model: ir.Model) -> tuple[dict[str, int], dict[ir.Node, int]]:
    """Counts of what this pass may remove, and each node's number of input/output slots."""
    nodes = list(ir.traversal.RecursiveGraphIterator(model.graph))
    function_nodes = [n for f in model.functions.values() for n in f]
    counts = {
        "nodes": len(nodes),
        "initializers": sum(len(g.initializers) for g in graphs(model)),
        "functions": len(model.functions),
        "function_nodes": len(function_nodes),
        "opsets": len(model.opset_imports),
        "function_opsets": sum(len(f.opset_imports) for f in model.functions.values()),
    }
    return counts, {n: len(n.inputs) + len(n.outputs) for n in nodes + function_nodes}
