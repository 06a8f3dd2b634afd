"""Static statistics of an ONNX graph: what `edgec inspect` prints and the manifest records.

`graph_stats(model)` reads an `onnx_ir.Model` without changing it and returns a `GraphStats`:
opset imports, graph inputs and outputs, an op histogram, the parameter count and size, and the
multiply-accumulate count per node and in total. `format_stats(stats)` renders it for a terminal
(`edgec.graph_stats_format`); `GraphStats.to_dict()` is the JSON form.

What is counted (each convention is set out in full where it is counted):

* **MACs** (`edgec.graph_macs`) are the multiply-accumulates of the contraction ops only, the
  convention of the papers' "FLOPs" columns and of `torch.utils.flop_counter` (FLOPs / 2):
  Conv, ConvTranspose, MatMul and Gemm, their integer and QLinear forms, and com.microsoft
  MatMulNBits. Bias additions, Gemm's alpha/beta and everything else are not MACs.
* **Other ops** (`edgec.graph_costs`) are counted apart, as element operations (a proxy for
  vector work, not FLOPs): one per output element of an elementwise op or activation; one per
  input element of Softmax, the normalisations, reductions and global pools; output elements ×
  window size for Max/Average pooling. Data movement (Reshape, Transpose, Concat, Slice,
  Gather, Pad, Cast, …) costs nothing; op types with no cost model are listed in
  `GraphStats.unmodelled_ops`.
* **Parameters** (`edgec.graph_params`) are the elements of every initializer (main graph and
  subgraphs) and of every Constant node's value whose data type is floating point or an integer
  type other than int64/uint64. int64/uint64 tensors (shapes, axes, Gather indices) and
  bool/string/complex constants are reported as `excluded_elements`. Each tensor is counted
  once however many nodes use it; bytes are `ceil(elements · bit width / 8)` per tensor.

Shapes are the static shapes recorded on the graph's values. When a MAC or other-op node lacks
one, `onnx.shape_inference.infer_shapes(..., data_prop=True)` runs on a proto copy of the model
(`edgec.graph_shapes`; large weights replaced by typed graph inputs so the copy stays small) and
the node is counted again with the inferred shapes. A node whose shapes are still not static is
never guessed: its MACs are `None`, it is listed in `GraphStats.uncounted` with the reason, and
the totals say how many nodes they leave out. A symbolic dimension (e.g. a dynamic batch) can
be bound with `dims={"batch": 1}`. Nodes inside If/Loop/Scan bodies and calls to model-local
functions are reported as uncounted rather than guessed (how often a body runs is not static).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping
from typing import Any

import onnx_ir as ir

from edgec.graph_costs import node_costs, op_name
from edgec.graph_macs import DEFAULT_DOMAINS, MACS_CONVENTION, NodeMacs
from edgec.graph_params import PARAMS_CONVENTION, count_parameters, dtype_name
from edgec.graph_stats_format import format_stats

__all__ = [
    "GraphStats",
    "NodeMacs",
    "TensorInfo",
    "format_stats",
    "graph_stats",
    "per_node_macs",
]


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
                "uncounted": [
                    {"name": n.name, "op_type": n.op_type, "reason": n.reason}
                    for n in self.uncounted
                ],
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
    costs, inference = node_costs(model, dims, infer_shapes)

    mac_nodes = tuple(c.macs_entry for c in costs if c.macs_entry is not None)
    macs_by_op: Counter[str] = Counter()
    for n in mac_nodes:
        if n.macs is not None:
            macs_by_op[n.op_type] += n.macs
    unmodelled = Counter(c.op for c in costs if c.unmodelled)

    all_nodes = list(ir.traversal.RecursiveGraphIterator(graph))
    histogram = Counter(op_name(n) for n in all_nodes)
    params = count_parameters(model)

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
    costs, _ = node_costs(model, dict(dims or {}), infer_shapes)
    return [
        (c.macs_entry.name, c.macs_entry.op_type, c.macs_entry.macs)
        for c in costs
        if c.macs_entry is not None
    ]


def _opsets(opset_imports: Mapping[str, int]) -> dict[str, int]:
    named = {("ai.onnx" if d in DEFAULT_DOMAINS else d): v for d, v in opset_imports.items()}
    return dict(sorted(named.items(), key=lambda kv: (kv[0] != "ai.onnx", kv[0])))


def _tensor_info(value: ir.Value) -> TensorInfo:
    shape = None
    if value.shape is not None:
        shape = tuple(
            d if isinstance(d, int) else (d.value if d.value is not None else "?")
            for d in value.shape
        )
    return TensorInfo(value.name or "", dtype_name(value.dtype), shape)


def _sorted_counts(counts: Mapping[str, int]) -> dict[str, int]:
    """By count, largest first; ties by name (so two runs print the same)."""
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def graph_summary(model: ir.Model) -> dict[str, Any]:
    """`graph_stats` for a manifest: without the per-node MACs (`edgec inspect` shows those)."""
    stats = graph_stats(model).to_dict()
    stats["macs"].pop("per_node", None)
    return stats


def describe_value(value: ir.Value) -> dict[str, Any]:
    """A graph input/output for a manifest: name, dtype and shape (symbolic dims by name)."""
    shape = [d if isinstance(d, int) else str(d) for d in value.shape] if value.shape else None
    return {"name": value.name, "dtype": str(value.dtype), "shape": shape}
