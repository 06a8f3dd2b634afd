"""TensorRT check: rejected ops and Q/DQ, all at once; DLA fallbacks from the device profile."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from support.onnx_build import model, value_info
from support.qdq_build import w4_mlp, w8a8_cnn

from edgec.device_profile import load_device
from edgec.errors import UnsupportedOpsError
from edgec.runtimes import tensorrt
from edgec.runtimes.tensorrt_sdk import find_sdk

needs_trt = pytest.mark.skipif(
    find_sdk() is None, reason="neither tensorrt nor tensorrt_rtx imports"
)


def test_quantized_graphs_in_any_fixable_form_pass_check():
    for graph in (w8a8_cnn("ort"), w8a8_cnn("tensorrt"), w4_mlp(), w4_mlp("int8")):
        assert tensorrt.check(graph) == {}


@needs_trt
def test_everything_tensorrt_rejects_is_named_at_once():
    nodes = [
        helper.make_node("Unique", ["x"], ["u"], name="uniq"),
        helper.make_node(
            "MatMulNBits",
            ["x", "b", "s"],
            ["m"],
            name="nbits",
            domain="com.microsoft",
            K=4,
            N=4,
            bits=4,
            block_size=16,
        ),
        helper.make_node("QuantizeLinear", ["x", "dyn_scale"], ["q"], name="q_dynamic"),
        helper.make_node(
            "DequantizeLinear", ["wq", "ws"], ["w"], name="int4_conv_dq", axis=0, block_size=4
        ),
        helper.make_node("Conv", ["img", "w"], ["c"], name="conv"),
    ]
    inits = [
        helper.make_tensor("wq", TensorProto.INT4, [2, 4, 1, 1], [1] * 8),
        numpy_helper.from_array(np.ones((2, 1, 1, 1), np.float32), "ws"),
        numpy_helper.from_array(np.ones((4, 1, 8), np.uint8), "b"),
        numpy_helper.from_array(np.ones((4, 1), np.float32), "s"),
    ]
    graph = model(
        nodes,
        [value_info("x", [4]), value_info("dyn_scale", []), value_info("img", [1, 4, 4, 4])],
        [
            value_info("u", [None]),
            value_info("m", [4]),
            value_info("c", [1, 2, 4, 4]),
            helper.make_tensor_value_info("q", TensorProto.UINT8, [4]),
        ],
        inits,
        opset=21,
        extra_opsets=[helper.make_opsetid("com.microsoft", 1)],
    )
    rejected = tensorrt.check(graph)
    assert rejected["Unique"] == ["uniq"]
    assert rejected["com.microsoft::MatMulNBits"] == ["nbits"]
    assert rejected["QuantizeLinear (scale or zero point not constant)"] == ["q_dynamic"]
    assert any("int4 other than MatMul/Gemm" in key for key in rejected)
    with pytest.raises(UnsupportedOpsError, match="Unique"):
        tensorrt.ensure_supported(graph)
    assert tensorrt.findings(graph)["slow"] == {"Unique (data-dependent output shape)": ["uniq"]}


def conv_net(kernel: int) -> object:
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv", kernel_shape=[kernel, kernel]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("Pad", ["r", "pads"], ["p"], name="pad"),
        helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
        helper.make_node("MatMul", ["f", "f2"], ["y"], name="act_matmul"),
    ]
    size = kernel + 1
    inits = [
        numpy_helper.from_array(np.ones((2, 1, kernel, kernel), np.float32), "w"),
        numpy_helper.from_array(np.zeros(8, np.int64), "pads"),
    ]
    return model(
        nodes,
        [value_info("x", [1, 1, size, size]), value_info("f2", [8, 2])],
        [value_info("y", [1, 2])],
        inits,
    )


def test_dla_fallbacks_come_from_the_profile_and_only_where_there_is_a_dla():
    agx = load_device("jetson-agx-orin")
    dla = tensorrt.findings(conv_net(3), agx)["dla_fallback"]
    assert dla == {
        "Pad (no DLA layer)": ["pad"],
        "MatMul (activation × activation: DLA has fully connected only)": ["act_matmul"],
    }
    big = tensorrt.findings(conv_net(33), agx)["dla_fallback"]
    assert big["Conv (kernel > 32 or stride > 8)"] == ["conv"]
    assert tensorrt.findings(conv_net(3), load_device("jetson-orin-nano"))["dla_fallback"] == {}
    dla_unit = next(u for u in agx.compute_units if u.kind == "dla")
    assert "Conv" in dla_unit.ops and "dla-layer-restrictions" in dla_unit.ops_source
