"""Tests for edgec.graph_macs: MACs of each contraction op, counted by hand."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper
from support.onnx_build import model as _model
from support.onnx_build import value_info as _vi
from support.onnx_build import weight as _weight

from edgec.graph_stats import graph_stats, per_node_macs

FLOAT = TensorProto.FLOAT


def test_grouped_conv_counts_cin_per_group_and_needs_inferred_output_shape():
    # X [1,8,10,10], W [16, 8/4, 3, 3], group 4, stride 2, pad 1 -> Y [1,16,5,5].
    # MACs = |Y| * C_in/group * kH * kW = (16*5*5) * 2*3*3 = 400 * 18 = 7200.
    # Y's shape is not recorded (output declared without a shape): shape inference supplies it.
    conv = helper.make_node(
        "Conv",
        ["x", "w"],
        ["y"],
        name="conv",
        group=4,
        strides=[2, 2],
        pads=[1, 1, 1, 1],
        kernel_shape=[3, 3],
    )
    model = _model(
        [conv], [_vi("x", [1, 8, 10, 10])], [_vi("y", None)], [_weight("w", [16, 2, 3, 3])]
    )
    stats = graph_stats(model)
    assert stats.macs == 7200
    assert per_node_macs(model) == [("conv", "Conv", 7200)]
    assert "inference" in stats.shape_inference
    # The caller's model is not modified by the inference on the copy.
    assert model.graph.outputs[0].shape is None
    # Without inference the node is reported as uncounted, never guessed.
    no_inf = graph_stats(model, infer_shapes=False)
    assert no_inf.macs == 0
    assert [(n.name, n.macs) for n in no_inf.uncounted] == [("conv", None)]
    assert "'y'" in no_inf.uncounted[0].reason


def test_depthwise_conv_and_bias_is_not_a_mac():
    # Depthwise: W [8,1,3,3], group 8, same padding: |Y| = 8*10*10 = 800, 9 MACs each = 7200.
    conv = helper.make_node(
        "Conv", ["x", "w", "b"], ["y"], name="dw", group=8, pads=[1, 1, 1, 1], kernel_shape=[3, 3]
    )
    model = _model(
        [conv],
        [_vi("x", [1, 8, 10, 10])],
        [_vi("y", [1, 8, 10, 10])],
        [_weight("w", [8, 1, 3, 3]), _weight("b", [8])],
    )
    stats = graph_stats(model)
    assert stats.macs == 7200
    assert stats.shape_inference == "all needed shapes recorded in the graph"


def test_conv_transpose_counts_per_input_element():
    # X [1,4,5,5], W [C_in=4, C_out/group=3, 3, 3], group 2 (C_out 6), stride 2.
    # Every input element meets C_out/group * kH * kW weights: |X| * 3*3*3 = 100 * 27 = 2700.
    node = helper.make_node("ConvTranspose", ["x", "w"], ["y"], name="up", group=2, strides=[2, 2])
    model = _model([node], [_vi("x", [1, 4, 5, 5])], [_vi("y", None)], [_weight("w", [4, 3, 3, 3])])
    assert per_node_macs(model) == [("up", "ConvTranspose", 2700)]


def test_batched_matmul_broadcasts_batch_dims():
    # A [2,3,4,5] @ B [3,5,6] -> [2,3,4,6]: batch 2*3, M 4, K 5, N 6 -> 6 * 120 = 720.
    mm = helper.make_node("MatMul", ["a", "b"], ["c"], name="bmm")
    # 1-D A is promoted to [1,K]: [5] @ [5,7] -> 35.
    mv = helper.make_node("MatMul", ["v", "b2"], ["d"], name="vecmat")
    model = _model(
        [mm, mv],
        [_vi("a", [2, 3, 4, 5]), _vi("b", [3, 5, 6]), _vi("v", [5])],
        [_vi("c", None), _vi("d", None)],
        [_weight("b2", [5, 7])],
    )
    assert per_node_macs(model) == [("bmm", "MatMul", 720), ("vecmat", "MatMul", 35)]
    assert graph_stats(model).macs == 755


def test_gemm_respects_transA_and_transB():
    # transB: A [4,8], B [16,8] -> M 4, K 8, N 16 = 512 (bias C not counted).
    g1 = helper.make_node("Gemm", ["a", "w", "c"], ["y"], name="fc", transB=1)
    # transA: A' [8,4] (so A is [4,8]), B [8,3] -> 4*8*3 = 96.
    g2 = helper.make_node("Gemm", ["at", "w2"], ["z"], name="fc2", transA=1)
    model = _model(
        [g1, g2],
        [_vi("a", [4, 8]), _vi("at", [8, 4])],
        [_vi("y", [4, 16]), _vi("z", [4, 3])],
        [_weight("w", [16, 8]), _weight("c", [16]), _weight("w2", [8, 3])],
    )
    stats = graph_stats(model)
    assert per_node_macs(model) == [("fc", "Gemm", 512), ("fc2", "Gemm", 96)]
    assert stats.macs_by_op == {"Gemm": 608}


def test_qlinear_conv_takes_its_weight_from_input_3():
    # QLinearConv(x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp): W [4,3,3,3] int8,
    # Y [1,4,6,6] recorded -> |Y| * 3*3*3 = 144 * 27 = 3888.
    scalars = [
        numpy_helper.from_array(np.array(0.1, dtype=np.float32), "s"),
        numpy_helper.from_array(np.array(0, dtype=np.int8), "zp"),
    ]
    node = helper.make_node(
        "QLinearConv", ["x", "s", "zp", "w", "s", "zp", "s", "zp"], ["y"], name="qconv"
    )
    model = _model(
        [node],
        [_vi("x", [1, 3, 8, 8], TensorProto.INT8)],
        [_vi("y", [1, 4, 6, 6], TensorProto.INT8)],
        [_weight("w", [4, 3, 3, 3], np.int8), *scalars],
    )
    assert per_node_macs(model) == [("qconv", "QLinearConv", 3888)]


def test_matmul_nbits_counts_rows_times_k_times_n():
    # com.microsoft MatMulNBits: A [2,3,32], K 32, N 16 -> 2*3 rows * 32 * 16 = 3072.
    node = helper.make_node(
        "MatMulNBits",
        ["a", "b", "scales"],
        ["y"],
        name="q4",
        domain="com.microsoft",
        K=32,
        N=16,
        bits=4,
        block_size=32,
    )
    model = _model(
        [node],
        [_vi("a", [2, 3, 32])],
        [_vi("y", [2, 3, 16])],
        [_weight("b", [16, 1, 16], np.uint8), _weight("scales", [16])],
        extra_opsets=[helper.make_opsetid("com.microsoft", 1)],
    )
    stats = graph_stats(model, infer_shapes=False)
    assert per_node_macs(model, infer_shapes=False) == [("q4", "com.microsoft::MatMulNBits", 3072)]
    assert stats.macs_by_op == {"com.microsoft::MatMulNBits": 3072}


def test_attention_op_counts_both_products_in_either_layout():
    # 4-D: q [2,4,10,8], k [2,2,12,8], v [2,2,12,6] (grouped queries) -> q·kᵀ 2*4*10*12*8 and
    # p·v 2*4*10*12*6 = 7680 + 5760 = 13440. 3-D: q [1,5,3*4], k/v [1,7,3*4], 3 heads of 4 ->
    # 1*3*5*7*(4+4) = 840.
    four = helper.make_node("Attention", ["q", "k", "v"], ["y"], name="sdpa")
    three = helper.make_node(
        "Attention", ["q3", "k3", "v3"], ["y3"], name="sdpa3", q_num_heads=3, kv_num_heads=3
    )
    model = _model(
        [four, three],
        [
            *(_vi("q", [2, 4, 10, 8]), _vi("k", [2, 2, 12, 8]), _vi("v", [2, 2, 12, 6])),
            *(_vi("q3", [1, 5, 12]), _vi("k3", [1, 7, 12]), _vi("v3", [1, 7, 12])),
        ],
        [_vi("y", [2, 4, 10, 6]), _vi("y3", [1, 5, 12])],
        opset=23,
    )
    assert per_node_macs(model) == [("sdpa", "Attention", 13440), ("sdpa3", "Attention", 840)]
