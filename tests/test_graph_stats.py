"""Tests for edgec.graph_stats: hand-counted small graphs, then two real timm exports (slow)."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgec.graph_stats import format_stats, graph_stats, per_node_macs

FLOAT = TensorProto.FLOAT


def _model(nodes, inputs, outputs, initializers=(), opset=18, extra_opsets=()) -> ir.Model:
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    opsets = [helper.make_opsetid("", opset), *extra_opsets]
    proto = helper.make_model(graph, opset_imports=opsets, producer_name="test")
    return ir.serde.deserialize_model(proto)


def _weight(name, shape, dtype=np.float32):
    return numpy_helper.from_array(np.ones(shape, dtype=dtype), name)


def _vi(name, shape, elem=FLOAT):
    return helper.make_tensor_value_info(name, elem, shape)


# -- MACs by hand ------------------------------------------------------------------------------


def test_grouped_conv_counts_cin_per_group_and_needs_inferred_output_shape():
    # X [1,8,10,10], W [16, 8/4, 3, 3], group 4, stride 2, pad 1 -> Y [1,16,5,5].
    # MACs = |Y| * C_in/group * kH * kW = (16*5*5) * 2*3*3 = 400 * 18 = 7200.
    # Y's shape is not recorded (output declared without a shape): shape inference supplies it.
    conv = helper.make_node("Conv", ["x", "w"], ["y"], name="conv", group=4,
                            strides=[2, 2], pads=[1, 1, 1, 1], kernel_shape=[3, 3])
    model = _model([conv], [_vi("x", [1, 8, 10, 10])], [_vi("y", None)],
                   [_weight("w", [16, 2, 3, 3])])
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
    conv = helper.make_node("Conv", ["x", "w", "b"], ["y"], name="dw", group=8,
                            pads=[1, 1, 1, 1], kernel_shape=[3, 3])
    model = _model([conv], [_vi("x", [1, 8, 10, 10])], [_vi("y", [1, 8, 10, 10])],
                   [_weight("w", [8, 1, 3, 3]), _weight("b", [8])])
    stats = graph_stats(model)
    assert stats.macs == 7200
    assert stats.shape_inference == "all needed shapes recorded in the graph"


def test_conv_transpose_counts_per_input_element():
    # X [1,4,5,5], W [C_in=4, C_out/group=3, 3, 3], group 2 (C_out 6), stride 2.
    # Every input element meets C_out/group * kH * kW weights: |X| * 3*3*3 = 100 * 27 = 2700.
    node = helper.make_node("ConvTranspose", ["x", "w"], ["y"], name="up", group=2,
                            strides=[2, 2])
    model = _model([node], [_vi("x", [1, 4, 5, 5])], [_vi("y", None)],
                   [_weight("w", [4, 3, 3, 3])])
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


def test_symbolic_batch_is_uncounted_until_bound():
    conv = helper.make_node("Conv", ["x", "w"], ["y"], name="conv", kernel_shape=[1, 1])
    relu = helper.make_node("Relu", ["y"], ["z"], name="relu")
    model = _model([conv, relu], [_vi("x", ["N", 4, 6, 6])], [_vi("z", ["N", 2, 6, 6])],
                   [_weight("w", [2, 4, 1, 1])])
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
    model = _model([custom, mm], [_vi("x", [2, 8])], [_vi("y", None)], [_weight("w", [8, 4])],
                   extra_opsets=[helper.make_opsetid("com.example", 1)])
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
    node = helper.make_node("If", ["cond"], ["y"], name="branch",
                            then_branch=then_g, else_branch=else_g)
    model = _model([node], [_vi("cond", [], TensorProto.BOOL), _vi("x", [2, 8]),
                            _vi("x2", [2, 4])], [_vi("y", [2, 4])], [_weight("w", [8, 4])])
    stats = graph_stats(model)
    assert stats.node_count == 3 and stats.subgraph_node_count == 2
    assert [(n.name, n.macs) for n in stats.uncounted] == [("branch", None)]
    assert "subgraph" in stats.uncounted[0].reason


def test_other_ops_convention():
    relu = helper.make_node("Relu", ["x"], ["r"], name="relu")  # output elements: 2*3*4*4 = 96
    pool = helper.make_node("MaxPool", ["r"], ["p"], name="pool", kernel_shape=[2, 2],
                            strides=[2, 2])  # output 2*3*2*2 = 24 elements x window 4 = 96
    soft = helper.make_node("Softmax", ["p"], ["s"], name="soft", axis=-1)  # input elements 24
    shape = helper.make_node("Reshape", ["s", "shape"], ["y"], name="flat")  # data movement: 0
    model = _model(
        [relu, pool, soft, shape], [_vi("x", [2, 3, 4, 4])], [_vi("y", [2, 12])],
        [numpy_helper.from_array(np.array([2, 12], dtype=np.int64), "shape")],
    )
    stats = graph_stats(model)
    assert stats.other_ops == 96 + 96 + 24
    assert stats.macs == 0 and stats.mac_nodes == ()
    assert stats.unmodelled_ops == {}


# -- parameters, histogram, IO -----------------------------------------------------------------


def test_parameter_count_dtypes_bytes_and_exclusions():
    w = _weight("w", [16, 8])  # float32: 128 elements, 512 bytes, shared by two MatMuls
    q = numpy_helper.from_array(np.ones([4, 4], dtype=np.int8), "q")  # 16 elements, 16 bytes
    shape = numpy_helper.from_array(np.array([8, 16], dtype=np.int64), "shape")  # excluded
    half = numpy_helper.from_array(np.ones([3], dtype=np.float16), "half")  # 3 el., 6 bytes
    const = helper.make_node("Constant", [], ["k"], name="k", value_float=0.5)  # 1 el., 4 B
    mm1 = helper.make_node("MatMul", ["x", "w"], ["h1"], name="mm1")
    mm2 = helper.make_node("MatMul", ["x", "w"], ["h2"], name="mm2")
    add = helper.make_node("Add", ["h1", "h2"], ["s"], name="add")
    mul = helper.make_node("Mul", ["s", "k"], ["y"], name="mul")
    reshape = helper.make_node("Reshape", ["y", "shape"], ["z"], name="reshape")
    # q and half are unused here: they still count, being in the file.
    model = _model([const, mm1, mm2, add, mul, reshape], [_vi("x", [2, 16])],
                   [_vi("z", [8, 16])], [w, q, shape, half])
    stats = graph_stats(model)
    assert stats.parameter_count == 128 + 16 + 3 + 1
    assert stats.parameter_bytes == 512 + 16 + 6 + 4
    assert stats.parameter_tensors == 4
    assert stats.parameters_by_dtype == {"float32": 129, "int8": 16, "float16": 3}
    assert stats.excluded_elements == 2
    assert stats.macs == 2 * (2 * 16 * 8)


def test_int4_bytes_are_packed():
    tensor = ir.tensor(np.zeros([5], dtype=np.float32), name="unused")
    packed = ir.Tensor(np.zeros([7], dtype=np.uint8), dtype=ir.DataType.INT4, name="w4")
    model = _model([], [_vi("x", [1])], [_vi("x", [1])])
    for t in (tensor, packed):
        model.graph.register_initializer(ir.Value(name=t.name, const_value=t))
    stats = graph_stats(model)
    assert stats.parameter_count == 5 + 7
    assert stats.parameter_bytes == 20 + 4  # seven int4 elements take ceil(7/2) bytes


def test_histogram_io_to_dict_and_format():
    relus = [helper.make_node("Relu", [f"x{i}"], [f"x{i + 1}"], name=f"r{i}") for i in range(3)]
    conv = helper.make_node("Conv", ["x3", "w"], ["y"], name="conv", kernel_shape=[1, 1])
    sig = helper.make_node("Sigmoid", ["y"], ["z"], name="sig")
    model = _model([*relus, conv, sig], [_vi("x0", ["batch", 3, 4, 4])],
                   [_vi("z", ["batch", 2, 4, 4])], [_weight("w", [2, 3, 1, 1])])
    stats = graph_stats(model, dims={"batch": 1})
    assert list(stats.op_histogram.items()) == [("Relu", 3), ("Conv", 1), ("Sigmoid", 1)]
    assert stats.node_count == 5
    assert stats.inputs[0].to_dict() == {"name": "x0", "dtype": "float32",
                                         "shape": ["batch", 3, 4, 4]}
    assert stats.macs == 2 * 4 * 4 * 3
    d = stats.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["macs"]["per_node"] == [["conv", "Conv", 96]]
    assert d["parameters"]["count"] == 6 and d["opset_imports"] == {"ai.onnx": 18}
    text = format_stats(stats)
    for needle in ("x0  float32 [batch, 3, 4, 4]", "MACs     96 (96)", "Relu", "conv",
                   "all 1 contraction nodes counted", "batch=1"):
        assert needle in text, needle


# -- real models (slow) ------------------------------------------------------------------------


def _trained_like(model):
    """Give a freshly built timm model non-trivial values everywhere, like a trained checkpoint.

    A fresh model has many all-zero tensors (BN betas, attention biases, the classifier bias).
    The exporter's optimizer drops a zero bias after folding Conv+BN and merges identical
    constants, so a fresh export would hold fewer initializers than a trained one would.
    """
    import torch

    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.rand(p.shape, generator=gen) - 0.5)
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=gen) - 0.5)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
    return model.eval()


def _export(name: str):
    torch = pytest.importorskip("torch")
    timm = pytest.importorskip("timm")
    from torch.utils.flop_counter import FlopCounterMode

    model = _trained_like(timm.create_model(name, pretrained=False))
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with FlopCounterMode(display=False) as counter:
        model(x)
    program = torch.onnx.export(model, (x,), dynamo=True, opset_version=18, verbose=False)
    bn = torch.nn.modules.batchnorm
    facts = {
        "params": sum(p.numel() for p in model.parameters()),
        "flop_counter_macs": counter.get_total_flops() // 2,
        "bn2d_channels": sum(m.num_features for m in model.modules()
                             if isinstance(m, bn.BatchNorm2d)),
        "bn1d_channels": sum(m.num_features for m in model.modules()
                             if isinstance(m, bn.BatchNorm1d)),
        "attention_biases": [p.shape for n, p in model.named_parameters()
                             if n.endswith("attention_biases")],
    }
    return program.model, facts


@pytest.fixture(scope="module")
def efficientvit_m0():
    return _export("efficientvit_m0")


@pytest.fixture(scope="module")
def shvit_s1():
    return _export("shvit_s1")


def _head_bn1d_delta(stats, bn1d: int) -> int:
    """The head BatchNorm1d: kept as BatchNormalization, its running mean/var become
    initializers (+2·C); folded into the Linear, its γ/β disappear (−2·C)."""
    return 2 * bn1d if "BatchNormalization" in stats.op_histogram else -2 * bn1d


@pytest.mark.slow
def test_efficientvit_m0_matches_published_counts(efficientvit_m0):
    model, facts = efficientvit_m0
    stats = graph_stats(model)
    # MACs: exactly what torch's FlopCounterMode counts on the PyTorch model, which is the
    # 79.19 M in shared/reference/models-a.md (and the paper's "79M FLOPs").
    assert stats.macs == facts["flop_counter_macs"] == 79_193_600
    assert stats.uncounted == () and stats.shape_inference.startswith("all needed")
    assert stats.macs_by_op.keys() == {"Conv", "MatMul", "Gemm"}
    assert facts["params"] == 2_349_436
    # Parameters in the graph differ from the 2,349,436 PyTorch parameters, by construction:
    #  - the exporter folds each of the 112 Conv+BatchNorm2d pairs: BN γ and β (2·C each, 14,136
    #    channels in all) become one conv bias (C): −14,136;
    #  - the head BatchNorm1d(192) stays a BatchNormalization node here, so its running
    #    mean/var (buffers in PyTorch) become initializers: +384 (if folded: −384);
    #  - eval() caches each attention bias table gathered by its int64 index: the [4, 49]
    #    and [4, 16] parameters (780) are replaced by [4, 49, 49] and [4, 16, 16] float
    #    tables (3·9604 + 3·1024 = 31,884 elements); the int64 indices are not parameters;
    #  - the attention scale 0.25 is a float scalar initializer: +1.
    # Total 2,349,436 − 14,136 + 384 − 780 + 31,884 + 1 = 2,366,789.
    tables = sum(s[0] * s[1] * s[1] for s in facts["attention_biases"])
    expected = (facts["params"] - facts["bn2d_channels"]
                + _head_bn1d_delta(stats, facts["bn1d_channels"])
                - sum(s.numel() for s in facts["attention_biases"]) + tables + 1)
    assert stats.parameter_count == expected == 2_366_789
    assert stats.parameter_bytes == 4 * stats.parameter_count
    assert stats.op_histogram["Conv"] == 116 and stats.op_histogram["MatMul"] == 48
    assert stats.inputs[0].shape == (1, 3, 224, 224) and stats.outputs[0].shape == (1, 1000)
    # Re-inferring shapes on a copy agrees with the shapes the exporter recorded.
    assert graph_stats(model, infer_shapes=True).macs == stats.macs
    # With every intermediate shape stripped, nothing is counted without inference, and
    # inference (data propagation through the attention Reshapes) recovers every count.
    proto = ir.serde.serialize_model(model)
    del proto.graph.value_info[:]
    for out in proto.graph.output:
        out.type.tensor_type.ClearField("shape")
    stripped = ir.serde.deserialize_model(proto)
    assert len(graph_stats(stripped, infer_shapes=False).uncounted) == len(stats.mac_nodes)
    inferred = graph_stats(stripped)
    assert (inferred.macs, inferred.other_ops, inferred.uncounted) == (
        stats.macs, stats.other_ops, ())
    assert inferred.shape_inference.startswith("onnx shape inference")


@pytest.mark.slow
def test_shvit_s1_matches_published_counts(shvit_s1):
    model, facts = shvit_s1
    stats = graph_stats(model)
    assert stats.macs == facts["flop_counter_macs"] == 241_320_768  # 241.32 M
    assert stats.uncounted == ()
    # 6,330,808 PyTorch parameters − 21,508 (BN2d γ/β folded into conv biases) + 640 (head
    # BN1d(320) running stats) + 3 (GroupNorm(1, C) becomes InstanceNormalization with one
    # shared [1] scale and [1] bias, then a per-channel Mul/Add holding the affine γ/β;
    # plus the 0.25 attention scale) = 6,309,943.
    expected = (facts["params"] - facts["bn2d_channels"]
                + _head_bn1d_delta(stats, facts["bn1d_channels"]) + 3)
    assert stats.parameter_count == expected == 6_309_943
    text = format_stats(stats)
    assert "241,320,768 (241.32 M)" in text and "all 96 contraction nodes counted" in text


def test_model_proto_roundtrip_gives_same_stats(tmp_path):
    conv = helper.make_node("Conv", ["x", "w"], ["y"], name="conv", kernel_shape=[3, 3])
    model = _model([conv], [_vi("x", [1, 3, 8, 8])], [_vi("y", None)], [_weight("w", [4, 3, 3, 3])])
    path = tmp_path / "m.onnx"
    onnx.save(ir.serde.serialize_model(model), path)
    assert graph_stats(ir.load(path)).to_dict() == graph_stats(model).to_dict()
