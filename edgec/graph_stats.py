"""Static statistics of an ONNX graph: what `edgec inspect` prints and the manifest records.

`graph_stats(model)` reads an `onnx_ir.Model` without changing it and returns a `GraphStats`:
opset imports, graph inputs and outputs, an op histogram, the parameter count and size, and the
multiply-accumulate count per node and in total. `format_stats(stats)` renders it for a terminal;
`GraphStats.to_dict()` is the JSON form.

What is counted (the conventions the numbers mean):

* **MACs** are the multiply-accumulates of the contraction ops only, the convention of the
  papers' "FLOPs" columns and of `torch.utils.flop_counter` (FLOPs / 2):

  =====================================  ===================================================
  Conv, ConvInteger, QLinearConv         |Y| · C_in/group · kH · kW   = |Y| · prod(W.shape[1:])
  ConvTranspose                          |X| · C_out/group · kH · kW  = |X| · prod(W.shape[1:])
  MatMul, MatMulInteger, QLinearMatMul   batch · M · K · N, batch dims broadcast numpy-style,
                                         1-D operands promoted as the ONNX spec says
  Gemm                                   M · K · N (transA / transB respected)
  com.microsoft MatMulNBits              |A| / K · K · N
  =====================================  ===================================================

  Bias additions, Gemm's alpha/beta and everything else are not MACs.
* **Other ops** are counted apart, as element operations (a proxy for vector work, not FLOPs):
  one per output element of an elementwise op or activation (Add, Mul, Relu, Sigmoid, Erf,
  HardSwish, QuantizeLinear, Where, Resize, …); one per input element of Softmax, the
  normalisations, reductions and global pools; output elements × window size for Max/Average
  pooling. Data movement (Reshape, Transpose, Concat, Slice, Gather, Pad, Cast, …) costs
  nothing; op types this module does not know are listed in `GraphStats.unmodelled_ops`.
* **Parameters** are the elements of every initializer (main graph and subgraphs) and of every
  Constant node's value whose data type is floating point or an integer type other than
  int64/uint64. int64/uint64 tensors (shapes, axes, Gather indices such as EfficientViT's
  `attention_bias_idxs`) and bool/string/complex constants are reported as
  `excluded_elements`. Each tensor is counted once however many nodes use it. Parameter bytes
  are `ceil(elements · bit width / 8)` per tensor (int4 packs two to a byte).

Shapes are the static shapes recorded on the graph's values. When a MAC or other-op node lacks
one, `onnx.shape_inference.infer_shapes(..., data_prop=True)` runs on a proto copy of the model
(large weights replaced by typed graph inputs so the copy stays small) and the node is counted
again with the inferred shapes. A node whose shapes are still not static is never guessed: its
MACs are `None`, it is listed in `GraphStats.uncounted` with the reason, and the totals say how
many nodes they leave out. A symbolic dimension (e.g. a dynamic batch) can be bound with
`dims={"batch": 1}`. Nodes inside If/Loop/Scan bodies and calls to model-local functions are
reported as uncounted rather than guessed (how often a body runs is not static).
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import onnx
import onnx_ir as ir

__all__ = [
    "GraphStats",
    "NodeMacs",
    "TensorInfo",
    "format_stats",
    "graph_stats",
    "per_node_macs",
]

MACS_CONVENTION = (
    "multiply-accumulates of Conv/ConvTranspose/MatMul/Gemm (and their integer, QLinear and "
    "MatMulNBits forms) from static shapes; bias adds, elementwise ops, Softmax, norms and "
    "pooling are counted apart as other_ops (element operations)"
)
PARAMS_CONVENTION = (
    "elements of initializers and Constant values of floating-point or integer type other "
    "than int64/uint64 (shape and index tensors), each tensor counted once"
)

_DEFAULT_DOMAINS = ("", "ai.onnx")

# Contraction ops of the default domain -> input positions of (x, weight) and (A, B).
_CONV_OPS = {"Conv": (0, 1), "ConvInteger": (0, 1), "QLinearConv": (0, 3)}  # (x, w) input index
_MATMUL_OPS = {"MatMul": (0, 1), "MatMulInteger": (0, 1), "QLinearMatMul": (0, 3)}  # (a, b)

# Other ops (element operations).
_ELEMENTWISE = frozenset({
    "Abs", "Acos", "Acosh", "Add", "And", "Asin", "Asinh", "Atan", "Atanh", "BitShift",
    "BitwiseAnd", "BitwiseNot", "BitwiseOr", "BitwiseXor", "Ceil", "Celu", "Clip", "Cos",
    "Cosh", "DequantizeLinear", "Div", "DynamicQuantizeLinear", "Elu", "Equal", "Erf", "Exp",
    "Floor", "Gelu", "Greater", "GreaterOrEqual", "HardSigmoid", "HardSwish", "IsInf", "IsNaN",
    "LeakyRelu", "Less", "LessOrEqual", "Log", "Max", "Mean", "Min", "Mish", "Mod", "Mul",
    "Neg", "Not", "Or", "PRelu", "Pow", "QuantizeLinear", "Reciprocal", "Relu", "Resize",
    "Round", "Selu", "Sigmoid", "Sign", "Sin", "Sinh", "Softplus", "Softsign", "Sqrt", "Sub",
    "Sum", "Swish", "Tan", "Tanh", "ThresholdedRelu", "Upsample", "Where", "Xor"
})
_PER_INPUT_ELEMENT = frozenset({
    "ArgMax", "ArgMin", "BatchNormalization", "CumSum", "GlobalAveragePool", "GlobalLpPool",
    "GlobalMaxPool", "GroupNormalization", "Hardmax", "InstanceNormalization",
    "LayerNormalization", "LogSoftmax", "LpNormalization", "MeanVarianceNormalization",
    "RMSNormalization", "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax",
    "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSum", "ReduceSumSquare", "Softmax"
})
_WINDOWED_POOLS = frozenset({"AveragePool", "MaxPool", "LpPool"})
# Data movement and shape bookkeeping: no arithmetic worth counting.
_FREE = frozenset({
    "Cast", "CastLike", "Compress", "Concat", "Constant", "ConstantOfShape", "DepthToSpace",
    "Dropout", "Expand", "EyeLike", "Flatten", "Gather", "GatherElements", "GatherND",
    "Identity", "NonZero", "OneHot", "Optional", "OptionalGetElement", "OptionalHasElement",
    "Pad", "Range", "Reshape", "ReverseSequence", "ScatterElements", "ScatterND", "Shape",
    "Size", "Slice", "SpaceToDepth", "Split", "SplitToSequence", "Squeeze", "Tile",
    "Transpose", "Trilu", "Unsqueeze"
})
_CONTROL_FLOW = frozenset({"If", "Loop", "Scan"})

_DTYPE_NAMES = {
    ir.DataType.FLOAT: "float32",
    ir.DataType.DOUBLE: "float64",
    ir.DataType.FLOAT16: "float16",
    ir.DataType.BFLOAT16: "bfloat16",
}

ShapeFn = Callable[["ir.Value | None"], "tuple[int, ...] | None"]


# ---------------------------------------------------------------------------------------------
# Result types


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    """A graph input or output: name, element type, and shape (symbolic dims as strings,
    an unknown dim as "?", an unknown rank as None)."""

    name: str
    dtype: str
    shape: tuple[int | str, ...] | None

    def to_dict(self) -> dict[str, Any]:
        shape = None if self.shape is None else list(self.shape)
        return {"name": self.name, "dtype": self.dtype, "shape": shape}


@dataclasses.dataclass(frozen=True)
class NodeMacs:
    """One contraction node. `macs` is None when it could not be counted; `reason` says why."""

    name: str
    op_type: str
    macs: int | None
    reason: str | None = None


@dataclasses.dataclass(frozen=True)
class GraphStats:
    """Static statistics of one model; see the module docstring for what each number counts."""

    graph_name: str | None
    producer: str | None
    ir_version: int
    opset_imports: dict[str, int]
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    node_count: int
    subgraph_node_count: int
    op_histogram: dict[str, int]
    parameter_count: int
    parameter_bytes: int
    parameter_tensors: int
    parameters_by_dtype: dict[str, int]
    excluded_elements: int
    macs: int
    macs_by_op: dict[str, int]
    mac_nodes: tuple[NodeMacs, ...]
    other_ops: int
    other_ops_uncounted_nodes: int
    unmodelled_ops: dict[str, int]
    shape_inference: str
    dims: dict[str, int]

    @property
    def uncounted(self) -> tuple[NodeMacs, ...]:
        """Contraction nodes whose MACs are not in `macs` (shape unknown, inside a subgraph…)."""
        return tuple(n for n in self.mac_nodes if n.macs is None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, stable in key order (for the manifest)."""
        return {
            "graph_name": self.graph_name,
            "producer": self.producer,
            "ir_version": self.ir_version,
            "opset_imports": dict(self.opset_imports),
            "inputs": [t.to_dict() for t in self.inputs],
            "outputs": [t.to_dict() for t in self.outputs],
            "node_count": self.node_count,
            "subgraph_node_count": self.subgraph_node_count,
            "op_histogram": dict(self.op_histogram),
            "parameters": {
                "count": self.parameter_count,
                "bytes": self.parameter_bytes,
                "tensors": self.parameter_tensors,
                "by_dtype": dict(self.parameters_by_dtype),
                "excluded_elements": self.excluded_elements,
                "convention": PARAMS_CONVENTION,
            },
            "macs": {
                "total": self.macs,
                "by_op": dict(self.macs_by_op),
                "counted_nodes": len(self.mac_nodes) - len(self.uncounted),
                "uncounted_nodes": len(self.uncounted),
                "uncounted": [{"name": n.name, "op_type": n.op_type, "reason": n.reason}
                              for n in self.uncounted],
                "per_node": [[n.name, n.op_type, n.macs] for n in self.mac_nodes],
                "convention": MACS_CONVENTION,
            },
            "other_ops": {
                "total": self.other_ops,
                "uncounted_nodes": self.other_ops_uncounted_nodes,
                "unmodelled_ops": dict(self.unmodelled_ops),
            },
            "shape_inference": self.shape_inference,
            "dims": dict(self.dims),
        }


# ---------------------------------------------------------------------------------------------
# Public entry points


def graph_stats(
    model: ir.Model,
    *,
    dims: Mapping[str, int] | None = None,
    infer_shapes: bool | None = None,
) -> GraphStats:
    """Statistics of `model` (not modified).

    Args:
        model: the model to describe.
        dims: values for symbolic input dimensions, e.g. ``{"batch": 1}``; binding any forces
            shape inference on a copy.
        infer_shapes: True always runs ONNX shape inference on a copy, False never does; None
            (default) runs it only when some node's shapes are missing from the graph.
    """
    dims = dict(dims or {})
    graph = model.graph
    costs, inference = _node_costs(model, dims, infer_shapes)

    mac_nodes = tuple(c.macs_entry for c in costs if c.macs_entry is not None)
    macs_by_op: Counter[str] = Counter()
    for n in mac_nodes:
        if n.macs is not None:
            macs_by_op[n.op_type] += n.macs
    unmodelled = Counter(c.op for c in costs if c.unmodelled)

    all_nodes = list(ir.traversal.RecursiveGraphIterator(graph))
    histogram = Counter(_op_name(n) for n in all_nodes)
    params = _parameters(model)

    producer = " ".join(p for p in (model.producer_name, model.producer_version) if p) or None
    initializer_names = set(graph.initializers)
    return GraphStats(
        graph_name=graph.name,
        producer=producer,
        ir_version=model.ir_version,
        opset_imports=_opsets(graph.opset_imports),
        inputs=tuple(_tensor_info(v) for v in graph.inputs if v.name not in initializer_names),
        outputs=tuple(_tensor_info(v) for v in graph.outputs),
        node_count=len(all_nodes),
        subgraph_node_count=len(all_nodes) - len(graph),
        op_histogram=_sorted_counts(histogram),
        parameter_count=params.count,
        parameter_bytes=params.nbytes,
        parameter_tensors=params.tensors,
        parameters_by_dtype=_sorted_counts(params.by_dtype),
        excluded_elements=params.excluded,
        macs=sum(macs_by_op.values()),
        macs_by_op=_sorted_counts(macs_by_op),
        mac_nodes=mac_nodes,
        other_ops=sum(c.other or 0 for c in costs),
        other_ops_uncounted_nodes=sum(1 for c in costs if c.other_uncounted),
        unmodelled_ops=_sorted_counts(unmodelled),
        shape_inference=inference,
        dims=dims,
    )


def per_node_macs(
    model: ir.Model,
    *,
    dims: Mapping[str, int] | None = None,
    infer_shapes: bool | None = None,
) -> list[tuple[str, str, int | None]]:
    """``(node_name, op_type, macs)`` for every contraction node of the main graph, in graph
    order; `macs` is None where the node could not be counted (see `GraphStats.uncounted`).
    Unnamed nodes are called ``<op_type>#<index in the graph>``."""
    costs, _ = _node_costs(model, dict(dims or {}), infer_shapes)
    return [(c.macs_entry.name, c.macs_entry.op_type, c.macs_entry.macs)
            for c in costs if c.macs_entry is not None]


def format_stats(stats: GraphStats, *, top: int = 10, max_listed: int = 20) -> str:
    """A readable text report: summary lines, the op histogram with MACs per op type, the
    `top` heaviest nodes, and the nodes the MAC total leaves out (the first `max_listed`)."""
    lines: list[str] = []
    opsets = ", ".join(f"{d} {v}" for d, v in stats.opset_imports.items())
    head = [f"ir {stats.ir_version}", f"opsets {opsets}"]
    if stats.producer:
        head.insert(0, f"producer {stats.producer}")
    lines.append(f"graph    {stats.graph_name or '(unnamed)'}  ({' · '.join(head)})")
    for title, infos in (("inputs", stats.inputs), ("outputs", stats.outputs)):
        for i, t in enumerate(infos):
            shape = "?" if t.shape is None else "[" + ", ".join(str(d) for d in t.shape) + "]"
            lines.append(f"{title if i == 0 else '':<8} {t.name}  {t.dtype} {shape}")
    sub = f", {stats.subgraph_node_count} in subgraphs" if stats.subgraph_node_count else ""
    lines.append(f"nodes    {stats.node_count:,} ({len(stats.op_histogram)} op types{sub})")
    by_dtype = ", ".join(f"{d} {n:,}" for d, n in stats.parameters_by_dtype.items())
    lines.append(
        f"params   {stats.parameter_count:,} ({_human(stats.parameter_count)}) in "
        f"{stats.parameter_tensors} tensors, {_human_bytes(stats.parameter_bytes)}"
        + (f"  [{by_dtype}]" if by_dtype else "")
    )
    if stats.excluded_elements:
        lines.append(f"         not counted: {stats.excluded_elements:,} int64/bool constant "
                     "elements (shapes, indices)")
    n_unc = len(stats.uncounted)
    counted = f"all {len(stats.mac_nodes)} contraction nodes counted" if not n_unc else (
        f"{len(stats.mac_nodes) - n_unc} of {len(stats.mac_nodes)} contraction nodes counted, "
        f"{n_unc} NOT counted (see below)")
    lines.append(f"MACs     {stats.macs:,} ({_human(stats.macs)}); {counted}")
    other = f"other    {stats.other_ops:,} ({_human(stats.other_ops)}) element ops"
    if stats.other_ops_uncounted_nodes:
        other += f"; {stats.other_ops_uncounted_nodes} nodes not counted (shape unknown)"
    lines.append(other)
    if stats.unmodelled_ops:
        lines.append("         no cost model for: "
                     + ", ".join(f"{op} ×{n}" for op, n in stats.unmodelled_ops.items()))
    if stats.dims:
        lines.append("dims     " + ", ".join(f"{k}={v}" for k, v in stats.dims.items()))
    lines.append(f"shapes   {stats.shape_inference}")

    if stats.op_histogram:
        width = max(len(op) for op in stats.op_histogram)
        lines += ["", f"{'op':<{width}}  {'count':>6}  {'MACs':>9}  {'share':>6}"]
        for op, count in stats.op_histogram.items():
            row = f"{op:<{width}}  {count:>6}"
            if op in stats.macs_by_op:
                macs = stats.macs_by_op[op]
                row += f"  {_human(macs):>9}  {_share(macs, stats.macs):>6}"
            lines.append(row)

    heaviest = sorted((n for n in stats.mac_nodes if n.macs), key=lambda n: -n.macs)[:top]
    if heaviest:
        width = max(len(n.name) for n in heaviest)
        lines += ["", f"top {len(heaviest)} nodes by MACs"]
        lines += [f"  {n.name:<{width}}  {n.op_type:<13} {_human(n.macs):>9}  "
                  f"{_share(n.macs, stats.macs):>6}" for n in heaviest]
    if stats.uncounted:
        lines += ["", f"MACs not counted for {n_unc} nodes:"]
        lines += [f"  {n.name} ({n.op_type}): {n.reason}" for n in stats.uncounted[:max_listed]]
        if n_unc > max_listed:
            lines.append(f"  … and {n_unc - max_listed} more (GraphStats.uncounted lists all)")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Per-node costs


@dataclasses.dataclass
class _Cost:
    op: str
    macs_entry: NodeMacs | None = None
    other: int | None = None
    other_uncounted: bool = False
    unmodelled: bool = False
    shape_missing: bool = False  # a needed shape is unknown: inferring shapes may help


def _node_costs(
    model: ir.Model, dims: dict[str, int], infer: bool | None
) -> tuple[list[_Cost], str]:
    """Cost every main-graph node; rerun with inferred shapes if needed (and allowed)."""
    functions = {key: _calls_contraction(f, model.functions) for key, f in model.functions.items()}

    def cost_all(shape_of: ShapeFn) -> list[_Cost]:
        return [_node_cost(node, i, shape_of, functions) for i, node in enumerate(model.graph)]

    costs = cost_all(_recorded_shape)
    missing = any(c.shape_missing for c in costs)
    if infer is False:
        return costs, "recorded shapes only (inference disabled)"
    if not (infer or dims or missing):
        return costs, "all needed shapes recorded in the graph"
    try:
        inferred = _inferred_shapes(model, dims)
    except Exception as err:  # onnx raises several types; a failure must not lose the stats
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return costs, f"recorded shapes; onnx shape inference failed: {first_line}"

    def shape_of(value: ir.Value | None) -> tuple[int, ...] | None:
        recorded = _recorded_shape(value)
        if recorded is not None or value is None:
            return recorded
        return inferred.get(value.name or "")

    return cost_all(shape_of), "onnx shape inference (data_prop) on a copy"


def _node_cost(
    node: ir.Node, index: int, shape_of: ShapeFn, functions: Mapping[tuple, bool]
) -> _Cost:
    op = _op_name(node)
    name = node.name or f"{node.op_type}#{index}"
    cost = _Cost(op)
    default = node.domain in _DEFAULT_DOMAINS

    if _is_contraction(node):
        try:
            macs, reason = _contraction_macs(node, shape_of)
        except _Unknown as unknown:
            macs, reason, cost.shape_missing = None, str(unknown), True
        cost.macs_entry = NodeMacs(name, op, macs, reason)
        return cost
    if default and node.op_type in _CONTROL_FLOW:
        inner = [n for g in node.attributes.values() if g.type in _GRAPH_ATTRS
                 for n in _subgraph_nodes(g) if _is_contraction(n)]
        if inner:
            cost.macs_entry = NodeMacs(
                name, op, None,
                f"{len(inner)} contraction node(s) inside its subgraph(s); how often a body "
                "runs is not static")
        return cost
    if functions.get((node.domain, node.op_type, node.overload)):
        cost.macs_entry = NodeMacs(name, op, None,
                                   "calls a model-local function whose body holds contractions")
        return cost
    if not default:
        cost.unmodelled = True
        return cost

    op_type = node.op_type
    if op_type in _ELEMENTWISE:
        cost.other = _numel(shape_of(_output(node, 0)))
    elif op_type in _PER_INPUT_ELEMENT:
        cost.other = _numel(shape_of(_input(node, 0)))
    elif op_type in _WINDOWED_POOLS:
        out = _numel(shape_of(_output(node, 0)))
        kernel = node.attributes.get_ints("kernel_shape", None)
        cost.other = None if out is None or kernel is None else out * math.prod(kernel)
    elif op_type not in _FREE:
        cost.unmodelled = True
        return cost
    else:
        return cost
    cost.other_uncounted = cost.shape_missing = cost.other is None
    return cost


def _is_contraction(node: ir.Node) -> bool:
    if node.domain in _DEFAULT_DOMAINS:
        return node.op_type in _CONV_OPS or node.op_type in _MATMUL_OPS or node.op_type in (
            "ConvTranspose", "Gemm")
    return node.domain == "com.microsoft" and node.op_type == "MatMulNBits"


def _contraction_macs(node: ir.Node, shape_of: ShapeFn) -> tuple[int | None, str | None]:
    """MACs of one contraction node, or (None, reason); raises _Unknown for a missing shape."""
    op = node.op_type

    def need(value: ir.Value | None, what: str) -> tuple[int, ...]:
        shape = shape_of(value)
        if shape is None:
            label = value.name if value is not None and value.name else "?"
            raise _Unknown(f"shape of {what} {label!r} unknown or not static")
        return shape

    if node.domain == "com.microsoft":  # MatMulNBits: A [..., K] times packed B [N, K]
        a = need(_input(node, 0), "input A")
        k, n = node.attributes.get_int("K", None), node.attributes.get_int("N", None)
        if k is None or n is None or not a:
            return None, "MatMulNBits without K/N attributes or with a scalar input"
        return math.prod(a[:-1]) * k * n, None
    if op in _CONV_OPS:
        _, w_idx = _CONV_OPS[op]
        w = need(_input(node, w_idx), "weight")
        y = need(_output(node, 0), "output")
        return math.prod(y) * math.prod(w[1:]), None
    if op == "ConvTranspose":
        x = need(_input(node, 0), "input")
        w = need(_input(node, 1), "weight")
        return math.prod(x) * math.prod(w[1:]), None
    if op in _MATMUL_OPS:
        a_idx, b_idx = _MATMUL_OPS[op]
        a, b = need(_input(node, a_idx), "input A"), need(_input(node, b_idx), "input B")
        if not a or not b:
            return None, "MatMul with a scalar operand (invalid ONNX)"
        return _matmul_macs(a, b), None
    # Gemm
    a = need(_input(node, 0), "input A")
    b = need(_input(node, 1), "input B")
    if len(a) != 2 or len(b) != 2:
        return None, f"Gemm operands are not 2-D ({list(a)}, {list(b)})"
    m, k = (a[1], a[0]) if node.attributes.get_int("transA", 0) else a
    n = b[0] if node.attributes.get_int("transB", 0) else b[1]
    return m * k * n, None


def _matmul_macs(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    """batch · M · K · N of numpy-style matmul (1-D operands promoted, batch dims broadcast)."""
    m = a[-2] if len(a) >= 2 else 1
    k = a[-1]
    n = b[-1] if len(b) >= 2 else 1
    batch_a, batch_b = a[:-2], b[:-2]
    rank = max(len(batch_a), len(batch_b))
    batch_a = (1,) * (rank - len(batch_a)) + batch_a
    batch_b = (1,) * (rank - len(batch_b)) + batch_b
    batch = math.prod(y if x == 1 else x for x, y in zip(batch_a, batch_b, strict=True))
    return batch * m * k * n


class _Unknown(Exception):
    """A shape the count needs is not known."""


_GRAPH_ATTRS = (ir.AttributeType.GRAPH, ir.AttributeType.GRAPHS)


def _subgraph_nodes(attr: ir.Attr) -> Iterable[ir.Node]:
    graphs = [attr.value] if attr.type == ir.AttributeType.GRAPH else list(attr.value)
    for g in graphs:
        yield from ir.traversal.RecursiveGraphIterator(g)


def _calls_contraction(function: ir.Function, functions: Mapping[tuple, ir.Function],
                       _seen: frozenset = frozenset()) -> bool:
    """Whether a model-local function (or one it calls) contains a contraction node."""
    for node in ir.traversal.RecursiveGraphIterator(function):
        if _is_contraction(node):
            return True
        key = (node.domain, node.op_type, node.overload)
        if key in functions and key not in _seen and _calls_contraction(
                functions[key], functions, _seen | {function.identifier()}):
            return True
    return False


# ---------------------------------------------------------------------------------------------
# Shapes


def _recorded_shape(value: ir.Value | None) -> tuple[int, ...] | None:
    """The value's static shape as recorded on the graph (constants: their tensor's shape)."""
    if value is None:
        return None
    if value.const_value is not None:
        return tuple(value.const_value.shape)
    return _static(value.shape)


def _static(shape: ir.Shape | Sequence | None) -> tuple[int, ...] | None:
    if shape is None:
        return None
    dims = tuple(shape)
    return dims if all(isinstance(d, int) and d >= 0 for d in dims) else None


def _inferred_shapes(model: ir.Model, dims: Mapping[str, int]) -> dict[str, tuple[int, ...]]:
    """Static shapes of the main graph's values after ONNX shape inference on a proto copy.

    Weights other than small integer tensors become typed graph inputs in the copy: their
    values are not needed (data propagation only follows int shape tensors) and the copy then
    stays far below protobuf's 2 GB limit. Symbolic input dims named in `dims` are bound.
    """
    proto = ir.serde.serialize_model(model)
    graph = proto.graph
    input_names = {i.name for i in graph.input}
    kept = []
    for init in graph.initializer:
        small_int = init.data_type in (onnx.TensorProto.INT64, onnx.TensorProto.INT32) and (
            math.prod(init.dims) <= 4096)
        if small_int:
            kept.append(init)
        elif init.name not in input_names:
            graph.input.append(onnx.helper.make_tensor_value_info(
                init.name, init.data_type, list(init.dims)))
    del graph.initializer[:]
    graph.initializer.extend(kept)
    for inp in graph.input:
        for dim in inp.type.tensor_type.shape.dim:
            if dim.HasField("dim_param") and dim.dim_param in dims:
                dim.dim_value = int(dims[dim.dim_param])
    inferred = onnx.shape_inference.infer_shapes(proto, strict_mode=False, data_prop=True)

    shapes: dict[str, tuple[int, ...]] = {}
    g = inferred.graph
    for info in [*g.input, *g.value_info, *g.output]:
        tensor_type = info.type.tensor_type
        if not tensor_type.HasField("shape"):
            continue
        dim_values = [d.dim_value if d.HasField("dim_value") else None
                      for d in tensor_type.shape.dim]
        if all(d is not None for d in dim_values):
            shapes[info.name] = tuple(dim_values)
    for init in g.initializer:
        shapes[init.name] = tuple(init.dims)
    return shapes


def _input(node: ir.Node, i: int) -> ir.Value | None:
    return node.inputs[i] if i < len(node.inputs) else None


def _output(node: ir.Node, i: int) -> ir.Value | None:
    return node.outputs[i] if i < len(node.outputs) else None


def _numel(shape: tuple[int, ...] | None) -> int | None:
    return None if shape is None else math.prod(shape)


# ---------------------------------------------------------------------------------------------
# Parameters, names, formatting


@dataclasses.dataclass
class _Params:
    count: int = 0
    nbytes: int = 0
    tensors: int = 0
    excluded: int = 0
    by_dtype: Counter = dataclasses.field(default_factory=Counter)

    def add(self, dtype: ir.DataType, size: int) -> None:
        excluded = dtype in (ir.DataType.INT64, ir.DataType.UINT64) or not (
            dtype.is_floating_point() or dtype.is_integer())
        if excluded:
            self.excluded += size
            return
        self.count += size
        self.nbytes += math.ceil(size * dtype.bitwidth / 8)
        self.tensors += 1
        self.by_dtype[_dtype_name(dtype)] += size


def _parameters(model: ir.Model) -> _Params:
    params = _Params()
    for graph in model.graphs():
        for value in graph.initializers.values():
            tensor = value.const_value
            if tensor is not None:
                params.add(tensor.dtype, tensor.size)
            elif value.dtype is not None and (shape := _static(value.shape)) is not None:
                params.add(value.dtype, math.prod(shape))
        for node in graph:
            if node.op_type != "Constant" or node.domain not in _DEFAULT_DOMAINS:
                continue
            if (tensor := node.attributes.get_tensor("value", None)) is not None:
                params.add(tensor.dtype, tensor.size)
            elif node.attributes.get_float("value_float", None) is not None:
                params.add(ir.DataType.FLOAT, 1)
            elif (floats := node.attributes.get_floats("value_floats", None)) is not None:
                params.add(ir.DataType.FLOAT, len(floats))
            elif node.attributes.get_int("value_int", None) is not None:
                params.add(ir.DataType.INT64, 1)
            elif (ints := node.attributes.get_ints("value_ints", None)) is not None:
                params.add(ir.DataType.INT64, len(ints))
    return params


def _op_name(node: ir.Node) -> str:
    if node.domain in _DEFAULT_DOMAINS:
        return node.op_type
    return f"{node.domain}::{node.op_type}"


def _opsets(opset_imports: Mapping[str, int]) -> dict[str, int]:
    named = {("ai.onnx" if d in _DEFAULT_DOMAINS else d): v for d, v in opset_imports.items()}
    return dict(sorted(named.items(), key=lambda kv: (kv[0] != "ai.onnx", kv[0])))


def _dtype_name(dtype: ir.DataType | None) -> str:
    if dtype is None:
        return "?"
    return _DTYPE_NAMES.get(dtype, dtype.name.lower())


def _tensor_info(value: ir.Value) -> TensorInfo:
    shape = None
    if value.shape is not None:
        shape = tuple(d if isinstance(d, int) else (d.value if d.value is not None else "?")
                      for d in value.shape)
    return TensorInfo(value.name or "", _dtype_name(value.dtype), shape)


def _sorted_counts(counts: Mapping[str, int]) -> dict[str, int]:
    """By count, largest first; ties by name (so two runs print the same)."""
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _human(n: int) -> str:
    for factor, unit in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= factor:
            return f"{n / factor:.2f} {unit}"
    return str(n)


def _human_bytes(n: int) -> str:
    for factor, unit in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if n >= factor:
            return f"{n / factor:.2f} {unit}"
    return f"{n} B"


def _share(part: int, total: int) -> str:
    return f"{100 * part / total:.1f}%" if total else "-"
