"""quant::fp16: float16 inside, float32 at the edges, Resize scales kept float32."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
from onnx import helper, numpy_helper
from support.onnx_build import model, value_info


def test_fp16_structure_numbers_and_idempotence(helpers, net):
    before = helpers.clone(net)
    result, p = helpers.run_pass("quant::fp16", net)
    assert result.modified and p.stats["initializers"] == 6 and p.stats["edge_casts"] == 2
    onnx.checker.check_model(ir.to_proto(net), full_check=True)
    assert all(v.dtype == ir.DataType.FLOAT16 for v in net.graph.initializers.values())
    assert helpers.op_types(net)[0] == "Cast" and helpers.op_types(net)[-1] == "Cast"
    assert net.graph.inputs[0].dtype == net.graph.outputs[0].dtype == ir.DataType.FLOAT
    assert net.graph.outputs[0].name == "probs"
    feeds = helpers.random_feeds(before)
    got, ref = helpers.run_ort(net, feeds)[0], helpers.run_ort(before, feeds)[0]
    assert got.dtype == np.float32 and np.abs(got - ref).max() < 2e-3
    helpers.assert_idempotent("quant::fp16", net)


def test_resize_scales_stay_float32(helpers):
    nodes = [
        helper.make_node("Resize", ["x", "", "scales"], ["up"], mode="nearest"),
        helper.make_node("Mul", ["up", "two"], ["y"]),
    ]
    inits = [
        numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales"),
        numpy_helper.from_array(np.array(2.0, np.float32), "two"),
    ]
    m = model(nodes, [value_info("x", [1, 1, 2, 2])], [value_info("y", [1, 1, 4, 4])], inits)
    helpers.infer_shapes(m)
    before = helpers.clone(m)
    helpers.run_pass("quant::fp16", m)
    assert m.graph.initializers["scales"].dtype == ir.DataType.FLOAT
    assert m.graph.initializers["two"].dtype == ir.DataType.FLOAT16
    feeds = helpers.random_feeds(before)
    np.testing.assert_allclose(
        helpers.run_ort(m, feeds)[0], helpers.run_ort(before, feeds)[0], rtol=1e-3
    )


def test_constant_of_shape_fills_in_float16(helpers):
    """ConstantOfShape without `value` fills float32 zeros: it must become float16 too, or
    the Add below mixes float16 and float32 and ONNX Runtime refuses the graph."""
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("ConstantOfShape", ["shape"], ["zeros"]),
        helper.make_node("Add", ["x", "zeros"], ["y"]),
    ]
    m = model(nodes, [value_info("x", [1, 4])], [value_info("y", [1, 4])])
    helpers.infer_shapes(m)
    before = helpers.clone(m)
    helpers.run_pass("quant::fp16", m)
    fill = next(n for n in m.graph if n.op_type == "ConstantOfShape").attributes["value"]
    assert fill.as_tensor().dtype == ir.DataType.FLOAT16
    feeds = helpers.random_feeds(before)
    np.testing.assert_allclose(
        helpers.run_ort(m, feeds)[0], helpers.run_ort(before, feeds)[0], rtol=1e-3
    )
