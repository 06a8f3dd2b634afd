"""Tests for edgec.graph_costs: other-op counts, shape inference on a copy, and nodes
reported as uncounted rather than guessed."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper
from support.onnx_build import model as _model
from support.onnx_build import value_info as _vi
from support.onnx_build import weight as _weight

from edgec.graph_stats import format_stats, graph_stats, per_node_macs

FLOAT = TensorProto.FLOAT


def test_symbolic_batch_is_uncounted_until_bound():
    conv = helper.make_node("Conv", ["x", "w"], ["y"], name="conv", kernel_shape=[1, 1])
    relu = helper.make_node("Relu", ["y"], ["z"], name="relu")
    model = _model(
        [conv, relu],
        [_vi("x", ["N", 4, 6, 6])],
        [_vi("z", ["N", 2, 6, 6])],
        [_weight("w", [2, 4, 1, 1])],
    )
    stats = graph_stats(model)
    assert stats.inputs[0].shape == ("N", 4, 6, 6)
    assert stats.macs == 0 and len(stats.uncounted) == 1
    assert stats.other_ops_uncounted_nodes == 1
    assert "1 NOT counted" in format_stats(stats)
    # Binding the symbol counts it: 2 * (2*6*6) * 4 = 576 MACs, Relu 2*2*6*6 = 144 element ops.
    bound = graph_stats(model, dims={"N": 2})
    assert (bound.macs, bound.uncounted, bound.other_ops) == (576, (), 144)
    assert bound.to_dict()["dims"] == {"N": 2}


def test_unknown_custom_op_output_leaves_consumer_uncounted():
    custom = helper.make_node("Foo", ["x"], ["h"], name="foo", domain="com.example")
    mm = helper.make_node("MatMul", ["h", "w"], ["y"], name="mm")
    model = _model(
        [custom, mm],
        [_vi("x", [2, 8])],
        [_vi("y", None)],
        [_weight("w", [8, 4])],
        extra_opsets=[helper.make_opsetid("com.example", 1)],
    )
    stats = graph_stats(model)
    assert per_node_macs(model) == [("mm", "MatMul", None)]
    assert "input A 'h'" in stats.uncounted[0].reason
    assert stats.unmodelled_ops == {"com.example::Foo": 1}
    assert stats.opset_imports == {"ai.onnx": 18, "com.example": 1}
    assert stats.op_histogram == {"MatMul": 1, "com.example::Foo": 1}


def test_matmul_inside_if_branch_is_reported_not_guessed():
    then_mm = helper.make_node("MatMul", ["x", "w"], ["t"], name="then_mm")
    then_g = helper.make_graph([then_mm], "then", [], [_vi("t", [2, 4])])
    else_id = helper.make_node("Identity", ["x2"], ["e"], name="else_id")
    else_g = helper.make_graph([else_id], "else", [], [_vi("e", [2, 4])])
    node = helper.make_node(
        "If", ["cond"], ["y"], name="branch", then_branch=then_g, else_branch=else_g
    )
    model = _model(
        [node],
        [_vi("cond", [], TensorProto.BOOL), _vi("x", [2, 8]), _vi("x2", [2, 4])],
        [_vi("y", [2, 4])],
        [_weight("w", [8, 4])],
    )
    stats = graph_stats(model)
    assert stats.node_count == 3 and stats.subgraph_node_count == 2
    assert [(n.name, n.macs) for n in stats.uncounted] == [("branch", None)]
    assert "subgraph" in stats.uncounted[0].reason


def test_other_ops_convention():
    relu = helper.make_node("Relu", ["x"], ["r"], name="relu")  # output elements: 2*3*4*4 = 96
    pool = helper.make_node(
        "MaxPool", ["r"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]
    )  # output 2*3*2*2 = 24 elements x window 4 = 96
    soft = helper.make_node("Softmax", ["p"], ["s"], name="soft", axis=-1)  # input elements 24
    shape = helper.make_node("Reshape", ["s", "shape"], ["y"], name="flat")  # data movement: 0
    model = _model(
        [relu, pool, soft, shape],
        [_vi("x", [2, 3, 4, 4])],
        [_vi("y", [2, 12])],
        [numpy_helper.from_array(np.array([2, 12], dtype=np.int64), "shape")],
    )
    stats = graph_stats(model)
    assert stats.other_ops == 96 + 96 + 24
    assert stats.macs == 0 and stats.mac_nodes == ()
    assert stats.unmodelled_ops == {}
