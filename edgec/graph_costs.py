"""The cost of every main-graph node: its MACs (contractions) or its element operations.

Contraction nodes get a `NodeMacs` (formulas in `edgec.graph_macs`). Other ops of the default
domain are counted apart, as element operations (a proxy for vector work, not FLOPs): one per
output element of an elementwise op or activation (Add, Mul, Relu, Sigmoid, Erf, HardSwish,
QuantizeLinear, Where, Resize, …); one per input element of Softmax, the normalisations,
reductions and global pools; output elements × window size for Max/Average pooling. Data
movement (Reshape, Transpose, Concat, Slice, Gather, Pad, Cast, …) costs nothing; any other
op type, and every op of another domain, is "unmodelled".

Shapes come from the graph first. When a node that needs one lacks it (or when asked, or when
`dims` binds a symbolic dimension), shape inference runs on a copy (`edgec.graph_shapes`) and
every node is costed again. A node whose shapes are still not static is never guessed: its MACs
are None with a reason. If/Loop/Scan nodes whose bodies hold contractions, and calls to
model-local functions that do, are reported the same way (how often a body runs is not static).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping

import onnx_ir as ir

from edgec.graph_macs import (
    DEFAULT_DOMAINS,
    NodeMacs,
    UnknownShape,
    contraction_macs,
    is_contraction,
)
from edgec.graph_shapes import (
    ShapeFn,
    inferred_shapes,
    node_input,
    node_output,
    numel,
    recorded_shape,
)

__all__ = ["NodeCost", "node_costs", "op_name"]


def _ops(names: str) -> frozenset[str]:
    """The op types in a whitespace-separated list (keeps the tables below compact)."""
    return frozenset(names.split())


# One element operation per output element.
_ELEMENTWISE = _ops(
    """
    Abs Acos Acosh Add And Asin Asinh Atan Atanh BitShift BitwiseAnd BitwiseNot BitwiseOr
    BitwiseXor Ceil Celu Clip Cos Cosh DequantizeLinear Div DynamicQuantizeLinear Elu Equal Erf
    Exp Floor Gelu Greater GreaterOrEqual HardSigmoid HardSwish IsInf IsNaN LeakyRelu Less
    LessOrEqual Log Max Mean Min Mish Mod Mul Neg Not Or PRelu Pow QuantizeLinear Reciprocal
    Relu Resize Round Selu Sigmoid Sign Sin Sinh Softplus Softsign Sqrt Sub Sum Swish Tan Tanh
    ThresholdedRelu Upsample Where Xor
    """
)
# One element operation per element of input 0.
_PER_INPUT_ELEMENT = _ops(
    """
    ArgMax ArgMin BatchNormalization CumSum GlobalAveragePool GlobalLpPool GlobalMaxPool
    GroupNormalization Hardmax InstanceNormalization LayerNormalization LogSoftmax
    LpNormalization MeanVarianceNormalization RMSNormalization ReduceL1 ReduceL2 ReduceLogSum
    ReduceLogSumExp ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum ReduceSumSquare Softmax
    """
)
# Output elements × window size.
_WINDOWED_POOLS = frozenset({"AveragePool", "MaxPool", "LpPool"})
# Data movement and shape bookkeeping: no arithmetic worth counting.
_FREE = _ops(
    """
    Cast CastLike Compress Concat Constant ConstantOfShape DepthToSpace Dropout Expand EyeLike
    Flatten Gather GatherElements GatherND Identity NonZero OneHot Optional OptionalGetElement
    OptionalHasElement Pad Range Reshape ReverseSequence ScatterElements ScatterND Shape Size
    Slice SpaceToDepth Split SplitToSequence Squeeze Tile Transpose Trilu Unsqueeze
    """
)
_CONTROL_FLOW = frozenset({"If", "Loop", "Scan"})
_GRAPH_ATTRS = (ir.AttributeType.GRAPH, ir.AttributeType.GRAPHS)


@dataclasses.dataclass
class NodeCost:
    """What one main-graph node costs; `macs_entry` is set for contraction-bearing nodes."""

    op: str
    macs_entry: NodeMacs | None = None
    other: int | None = None
    other_uncounted: bool = False
    unmodelled: bool = False
    shape_missing: bool = False  # a needed shape is unknown: inferring shapes may help


def op_name(node: ir.Node) -> str:
    """``op_type`` for the default domain, else ``domain::op_type``."""
    if node.domain in DEFAULT_DOMAINS:
        return node.op_type
    return f"{node.domain}::{node.op_type}"


def node_costs(
    model: ir.Model, dims: dict[str, int], infer: bool | None
) -> tuple[list[NodeCost], str]:
    """Cost every main-graph node, in graph order; rerun with inferred shapes if needed (and
    allowed). Also returns a line saying where the shapes came from."""
    functions = {key: _calls_contraction(f, model.functions) for key, f in model.functions.items()}

    def cost_all(shape_of: ShapeFn) -> list[NodeCost]:
        return [_node_cost(node, i, shape_of, functions) for i, node in enumerate(model.graph)]

    costs = cost_all(recorded_shape)
    missing = any(c.shape_missing for c in costs)
    if infer is False:
        return costs, "recorded shapes only (inference disabled)"
    if not (infer or dims or missing):
        return costs, "all needed shapes recorded in the graph"
    try:
        inferred = inferred_shapes(model, dims)
    except Exception as err:  # onnx raises several types; a failure must not lose the stats
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return costs, f"recorded shapes; onnx shape inference failed: {first_line}"

    def shape_of(value: ir.Value | None) -> tuple[int, ...] | None:
        recorded = recorded_shape(value)
        if recorded is not None or value is None:
            return recorded
        return inferred.get(value.name or "")

    return cost_all(shape_of), "onnx shape inference (data_prop) on a copy"


def _node_cost(
    node: ir.Node, index: int, shape_of: ShapeFn, functions: Mapping[tuple, bool]
) -> NodeCost:
    op = op_name(node)
    name = node.name or f"{node.op_type}#{index}"
    cost = NodeCost(op)
    default = node.domain in DEFAULT_DOMAINS

    if is_contraction(node):
        try:
            macs, reason = contraction_macs(node, shape_of)
        except UnknownShape as unknown:
            macs, reason, cost.shape_missing = None, str(unknown), True
        cost.macs_entry = NodeMacs(name, op, macs, reason)
        return cost
    if default and node.op_type in _CONTROL_FLOW:
        inner = [
            n
            for g in node.attributes.values()
            if g.type in _GRAPH_ATTRS
            for n in _subgraph_nodes(g)
            if is_contraction(n)
        ]
        if inner:
            cost.macs_entry = NodeMacs(
                name,
                op,
                None,
                f"{len(inner)} contraction node(s) inside its subgraph(s); how often a body "
                "runs is not static",
            )
        return cost
    if functions.get((node.domain, node.op_type, node.overload)):
        cost.macs_entry = NodeMacs(
            name, op, None, "calls a model-local function whose body holds contractions"
        )
        return cost
    if not default:
        cost.unmodelled = True
        return cost

    op_type = node.op_type
    if op_type in _ELEMENTWISE:
        cost.other = numel(shape_of(node_output(node, 0)))
    elif op_type in _PER_INPUT_ELEMENT:
        cost.other = numel(shape_of(node_input(node, 0)))
    elif op_type in _WINDOWED_POOLS:
        out = numel(shape_of(node_output(node, 0)))
        kernel = node.attributes.get_ints("kernel_shape", None)
        cost.other = None if out is None or kernel is None else out * math.prod(kernel)
    elif op_type not in _FREE:
        cost.unmodelled = True
        return cost
    else:
        return cost
    cost.other_uncounted = cost.shape_missing = cost.other is None
    return cost


def _subgraph_nodes(attr: ir.Attr) -> Iterable[ir.Node]:
    graphs = [attr.value] if attr.type == ir.AttributeType.GRAPH else list(attr.value)
    for g in graphs:
        yield from ir.traversal.RecursiveGraphIterator(g)


def _calls_contraction(
    function: ir.Function, functions: Mapping[tuple, ir.Function], _seen: frozenset = frozenset()
) -> bool:
    """Whether a model-local function (or one it calls) contains a contraction node."""
    for node in ir.traversal.RecursiveGraphIterator(function):
        if is_contraction(node):
            return True
        key = (node.domain, node.op_type, node.overload)
        if (
            key in functions
            and key not in _seen
            and _calls_contraction(functions[key], functions, _seen | {function.identifier()})
        ):
            return True
    return False
