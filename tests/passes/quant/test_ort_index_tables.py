"""quant::ort_index_tables: repetitive float tables stored as uint8 indices, the same numbers."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
from onnx import helper, numpy_helper
from support.onnx_build import model, value_info

from edgec.passes._graph import const_array
from edgec.passes.quant.ort_index_tables import distinct_values


def _tables_net() -> ir.Model:
    """s[2,16,16] + T0 → Softmax; s + T1 → Softmax (two heads' bias tables, one offset
    pattern, 16 distinct values each); + a 16×16 table of random values (left float)."""
    rng = np.random.default_rng(0)
    offsets = np.abs(np.arange(16)[:, None] - np.arange(16)[None, :])  # 16 distinct offsets
    tables = [rng.standard_normal(16).astype(np.float32)[offsets] for _ in range(2)]
    dense = rng.standard_normal((16, 16)).astype(np.float32)
    inits = [numpy_helper.from_array(t, f"t{i}") for i, t in enumerate([*tables, dense])]
    nodes = [
        helper.make_node("Add", ["s", "t0"], ["a0"]),
        helper.make_node("Add", ["s", "t1"], ["a1"]),
        helper.make_node("Add", ["a1", "t2"], ["a2"]),
        helper.make_node("Concat", ["a0", "a2"], ["c"], axis=0),
        helper.make_node("Softmax", ["c"], ["y"], axis=-1),
    ]
    return model(nodes, [value_info("s", [2, 16, 16])], [value_info("y", [4, 16, 16])], inits)


def test_tables_become_values_and_one_shared_index(helpers):
    net = _tables_net()
    before = helpers.clone(net)
    result, p = helpers.run_pass("quant::ort_index_tables", net)
    assert result.modified and p.stats["tables_indexed"] == 2
    onnx.checker.check_model(ir.to_proto(net), full_check=True)
    assert helpers.op_types(net) == ["Cast", "Gather", "Add", "Cast", "Gather", "Add", "Add",
                                     "Concat", "Softmax"]  # fmt: skip
    gathers = [n for n in net.graph if n.op_type == "Gather"]
    indexes = {id(g.inputs[1].producer().inputs[0]) for g in gathers}
    assert len(indexes) == 1  # the two heads share one uint8 index table
    index = gathers[0].inputs[1].producer().inputs[0]
    assert index.dtype == ir.DataType.UINT8 and list(index.shape) == [16, 16]
    assert [const_array(g.inputs[0]).shape for g in gathers] == [(16,), (16,)]
    assert "t2" in net.graph.initializers and "t0" not in net.graph.initializers
    feeds = helpers.random_feeds(before)
    np.testing.assert_array_equal(helpers.run_ort(net, feeds)[0], helpers.run_ort(before, feeds)[0])
    assert p.stats["bytes_before"] == 2 * 16 * 16 * 4
    assert p.stats["bytes_after"] == 2 * 16 * 4 + 16 * 16
    helpers.assert_idempotent("quant::ort_index_tables", net)


def test_ort_folds_the_gather_at_load(helpers, tmp_path):
    import onnxruntime as ort

    net = _tables_net()
    helpers.run_pass("quant::ort_index_tables", net)
    so = ort.SessionOptions()
    so.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(ir.to_proto(net).SerializeToString(), so)
    ops = [n.op_type for n in onnx.load(so.optimized_model_filepath).graph.node]
    assert "Gather" not in ops and "Cast" not in ops


def test_small_tables_are_left_alone(helpers):
    net = _tables_net()
    result, p = helpers.run_pass("quant::ort_index_tables", net, min_elements=257)
    assert not result.modified and not p.stats["tables_indexed"]


def test_distinct_values_in_order_of_first_appearance():
    values, index = distinct_values(np.array([[3.0, 1.0], [3.0, 2.0]], np.float32))
    np.testing.assert_array_equal(values, [3.0, 1.0, 2.0])
    np.testing.assert_array_equal(index, [[0, 1], [0, 2]])
    assert index.dtype == np.uint8
