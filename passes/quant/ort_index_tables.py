"""`quant::ort_index_tables`: float tables with few distinct values stored as uint8 indices.

    before: T (FLOAT [49, 49], 49 distinct values) ───────────────────────────► Add(s, T)
    after:  values (FLOAT [49]) ─┐
            index (UINT8 [49, 49]) ─ Cast(INT32) ─ Gather(values, ·, axis=0) ─► Add(s, T)

Attention-bias tables (EfficientViT's per-offset biases expanded to a token × token table,
relative-position tables) repeat a few learned values thousands of times. Every float32
initializer of at least `min_elements` elements with at most 256 distinct values (and fewer
than ¾ of its size, so that it gets smaller) becomes a vector of its distinct values and a
uint8 index table; index tables with the same contents
are shared (values in order of first appearance, so tables of one pattern share one index).
The Gather gives back exactly the same float32 table, and ONNX Runtime
constant-folds the Cast and the Gather when the session loads, so nothing changes at run
time but the file size (EfficientViT-M0: 24 tables, 128 KB → 15 KB).
Runs on ORT targets after the other quant passes; a values vector holds distinct values and
an index is not float, so a second run changes nothing.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx_ir as ir

from edgec.pass_manager import EdgecPass, register_pass
from edgec.passes._graph import Names, const_array, drop_if_unused
from edgec.passes.quant._build import add_initializer


@register_pass
class OrtIndexTables(EdgecPass):
    id = "quant::ort_index_tables"

    @dataclasses.dataclass(frozen=True)
    class Options:
        min_elements: int = 256

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        names = Names(model)
        shared_index: dict[tuple, ir.Value] = {}
        for value in list(model.graph.initializers.values()):
            array = const_array(value)
            if array is None or array.dtype != np.float32 or array.size < self.options.min_elements:
                continue
            if value.is_graph_input() or value.is_graph_output() or not value.uses():
                continue
            if any(use.node.graph is not model.graph for use in value.uses()):
                continue  # read inside a subgraph
            values, index = distinct_values(array)
            if len(values) > 256 or values.nbytes + index.nbytes >= array.nbytes:
                continue  # too many values for a uint8 index, or no smaller
            key = (index.shape, index.tobytes())
            if key not in shared_index:
                shared_index[key] = add_initializer(model, names, f"{value.name}_index", index)
                self.stats["bytes_after"] += index.nbytes
            self._replace(model, value, values.astype(np.float32), shared_index[key], names)
            self.stats["tables_indexed"] += 1
            self.stats["bytes_before"] += array.nbytes
            self.stats["bytes_after"] += values.nbytes
        return ir.passes.PassResult(model, modified=bool(self.stats["tables_indexed"]))

    def _replace(self, model, table: ir.Value, values, index: ir.Value, names: Names) -> None:
        values_init = add_initializer(model, names, f"{table.name}_values", values)
        cast = ir.node("Cast", [index], {"to": ir.DataType.INT32})
        cast.outputs[0].name = names.fresh(f"{table.name}_index_int32")
        cast.outputs[0].dtype = ir.DataType.INT32
        cast.outputs[0].shape = ir.Shape(index.shape)
        gathered = ir.Value(name=names.fresh(f"{table.name}_table"), shape=table.shape)
        gathered.dtype = ir.DataType.FLOAT
        gather = ir.node("Gather", [values_init, cast.outputs[0]], {"axis": 0}, outputs=[gathered])
        order = {id(node): i for i, node in enumerate(model.graph)}
        first_reader = min((use.node for use in table.uses()), key=lambda n: order[id(n)])
        model.graph.insert_before(first_reader, [cast, gather])
        table.replace_all_uses_with(gathered)
        drop_if_unused(table)


def distinct_values(array: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct values in order of first appearance, uint8 index table of `array`'s shape).

    First-appearance order makes tables of the same pattern (the heads of one attention
    block, blocks of the same window size) get the same index table, so it is stored once.
    The index is only meaningful when there are at most 256 values.
    """
    flat = array.reshape(-1)
    values, first, inverse = np.unique(flat, return_index=True, return_inverse=True)
    order = np.argsort(first)
    rank = np.empty(len(values), np.int64)
    rank[order] = np.arange(len(values))
    return values[order], rank[inverse].reshape(array.shape).astype(np.uint8)
