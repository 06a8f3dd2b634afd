"""`cleanup::fold_constants`: evaluate nodes whose inputs are all constants, with a size cap."""

from __future__ import annotations

import dataclasses

import onnx_ir as ir
from onnx_ir.passes.common import LiftConstantsToInitializersPass
from onnxscript.optimizer import fold_constants_ir

from edgec.pass_manager import EdgecPass, register_pass
from edgec.passes._graph import graphs


@dataclasses.dataclass(frozen=True)
class FoldConstantsOptions:
    """Size caps, in elements (not bytes), so folding never bloats the model.

    input_size_limit: a node with a constant input larger than this is left alone, unless it
        is the only reader of that input (then folding it cannot grow the model).
    output_size_limit: a folded result larger than this is kept only when it replaces inputs
        at least as large that nothing else reads.
    shape_inference: run ONNX node-level shape inference while folding, so chains such as
        Shape → Gather → Concat → Reshape fold in one run.
    lift_constants: turn the `Constant` nodes left after folding into initializers, so
        every constant of the graph is an initializer (one place for later passes to look).
    """

    input_size_limit: int = 8192
    output_size_limit: int = 512 * 512
    shape_inference: bool = True
    lift_constants: bool = True


@register_pass
class FoldConstantsPass(EdgecPass):
    """Replace every node whose inputs are all constant by an initializer holding its result.

    Wraps the constant folder of `onnxscript.optimizer`, which also does partial evaluation
    (`Shape` of a static shape, `Size`, `Cast`/`Identity` of a known value…). Nodes with a graph
    input, a random op, control flow and Quantize/DequantizeLinear are never folded. Folding
    is deterministic: results are evaluated with the ONNX reference evaluator and named after
    the value they replace.

    Before::

        <float[2] scale = {2.0, 4.0}, int64[1] axes = {0}>
        s = Unsqueeze(scale, axes)      # [1, 2]
        r = Reciprocal(s)
        y = Mul(x, r)

    After::

        <float[1, 2] r = {0.5, 0.25}>
        y = Mul(x, r)

    Nodes that fed only folded nodes (typically `Constant`) are removed too; dead code that
    was there before is left to `cleanup::remove_dead`.

    Stats: `folded` (nodes gone: replaced by a constant, or orphaned by folding, of which
    `orphans_removed`), `initializers_added`, `elements_added` (elements in new
    initializers), `nodes_added` (nodes created by partial evaluation), `values_annotated`
    (values whose dtype/shape the folder's shape inference filled in), `lifted` (Constant
    nodes turned into initializers; their initializers count in `initializers_added`).
    """

    id = "cleanup::fold_constants"
    Options = FoldConstantsOptions

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        before_nodes = _nodes(model)
        read = {n for n in before_nodes if any(o.uses() for o in n.outputs)}
        before_inits = {v for g in graphs(model) for v in g.initializers.values()}
        before_types = _annotations(before_nodes)
        result = fold_constants_ir(
            model,
            onnx_shape_inference=self.options.shape_inference,
            input_size_limit=self.options.input_size_limit,
            output_size_limit=self.options.output_size_limit,
        )
        orphans = _remove_orphans(model, read)
        lifted = 0
        if self.options.lift_constants:
            constants = sum(1 for n in _nodes(model) if n.op_type == "Constant")
            LiftConstantsToInitializersPass(lift_all_constants=True, size_limit=0)(model)
            lifted = constants - sum(1 for n in _nodes(model) if n.op_type == "Constant")
        after_nodes = _nodes(model)
        new_inits = [
            v
            for g in graphs(model)
            for v in g.initializers.values()
            if v not in before_inits and v.const_value is not None
        ]
        folded = len(before_nodes - after_nodes) - lifted
        added = len(after_nodes - before_nodes)
        annotated = sum(
            1 for v, a in _annotations(after_nodes & before_nodes).items() if before_types[v] != a
        )
        for key, count in (
            ("folded", folded),
            ("orphans_removed", orphans),
            ("nodes_added", added),
            ("initializers_added", len(new_inits)),
            ("elements_added", sum(v.const_value.size for v in new_inits)),
            ("values_annotated", annotated),
            ("lifted", lifted),
        ):
            if count:
                self.stats[key] += count
        modified = bool(result.modified or folded or lifted or added or new_inits or annotated)
        return ir.passes.PassResult(model, modified=modified)


def _nodes(model: ir.Model) -> set[ir.Node]:
    nodes = set(ir.traversal.RecursiveGraphIterator(model.graph))
    for function in model.functions.values():
        nodes.update(function)
    return nodes


def _annotations(nodes: set[ir.Node]) -> dict[ir.Value, tuple]:
    """Each output's (type, shape), to notice what the folder's shape inference filled in."""
    return {
        v: (v.type, None if v.shape is None else tuple(str(d) for d in v.shape))
        for n in nodes
        for v in n.outputs
    }


def _remove_orphans(model: ir.Model, read: set[ir.Node]) -> int:
    """Remove nodes whose outputs were read before folding and are read by nobody now.

    Only what folding orphaned goes (e.g. the Constant feeding a folded node); dead code that
    was already there is left to `cleanup::remove_dead`.
    """
    removed = 0
    for graph_like in [*graphs(model), *model.functions.values()]:
        for node in reversed(list(graph_like)):
            if node in read and not any(o.uses() or o.is_graph_output() for o in node.outputs):
                graph_like.remove(node, safe=True)
                removed += 1
    return removed
