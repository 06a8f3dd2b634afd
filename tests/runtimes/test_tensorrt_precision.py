"""Precision words in TensorRT: honest W4A8 realisation, refusal of claims the graph lacks."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper, numpy_helper
from support.onnx_build import model, value_info
from support.qdq_build import w4_mlp, w8a8_cnn

from edgec.device_profile import load_device
from edgec.errors import UserError
from edgec.runtimes.tensorrt_precision import choose_w4a8, realise

NANO = load_device("jetson-orin-nano")


def float_mlp(tokens: int) -> object:
    """tokens×256 → MatMul(256×256) → Relu: weights dominate when tokens < 256."""
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["m"]),
        helper.make_node("Relu", ["m"], ["y"]),
    ]
    w = numpy_helper.from_array(np.ones((256, 256), np.float32), "w")
    return model(
        nodes, [value_info("x", [1, tokens, 256])], [value_info("y", [1, tokens, 256])], [w]
    )


def float_cnn() -> object:
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3])]
    w = numpy_helper.from_array(np.ones((16, 3, 3, 3), np.float32), "w")
    return model(nodes, [value_info("x", [1, 3, 32, 32])], [value_info("y", [1, 16, 30, 30])], [w])


def test_w4a8_on_a_convolutional_model_is_w8a8_and_says_why():
    chosen = choose_w4a8(float_cnn(), NANO)
    assert chosen.realised == "w8a8"
    assert "does not exist in TensorRT on jetson-orin-nano" in chosen.notices[0]
    assert "no int4 convolution" in chosen.notices[0]


def test_w4a8_where_weights_dominate_is_w4a16():
    assert choose_w4a8(float_mlp(tokens=4), NANO).realised == "w4a16"
    assert choose_w4a8(float_mlp(tokens=4096), NANO).realised == "w8a8"


def test_fp8_devices_are_told_what_nvidia_w4a8_needs():
    notices = choose_w4a8(float_cnn(), load_device("nvidia-h200")).notices
    assert any("FP8" in n and "TensorRT-LLM" in n for n in notices)
    assert not any("FP8" in n for n in choose_w4a8(float_cnn(), NANO).notices)


def test_realise_reads_the_graph():
    assert realise("w4a8", w4_mlp("int8"), NANO).realised == "w4a16"
    assert realise("w8a8", w8a8_cnn(), NANO).realised == "w8a8"
    with pytest.raises(UserError, match="holds no quantized layers"):
        realise("w8a8", float_cnn(), NANO)
    with pytest.raises(UserError, match="holds 2 quantized layers"):
        realise("fp16", w8a8_cnn(), NANO)
    with pytest.raises(UserError, match="no fast int8"):
        realise("w8a8", w8a8_cnn(), load_device("jetson-tx2"))
    with pytest.raises(UserError, match="no precision 'int3'"):
        realise("int3", float_cnn(), NANO)
