"""A small conv net and calibration data for the quant pass tests.

x[1,8,6,6] ─ Conv 3×3 (64) ─ Relu ─ r ─ Conv 1×1 (64) ─ Add(·, r) ─ GlobalAveragePool
  ─ Flatten ─ Gemm (10, transB) ─ Softmax ─ probs
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import pytest
from onnx import helper, numpy_helper
from support.onnx_build import model, value_info


def small_net(channels: int = 8, size: int = 6) -> ir.Model:
    rng = np.random.default_rng(0)

    def init(name, shape, scale=0.2):
        return numpy_helper.from_array(
            (rng.standard_normal(shape) * scale).astype(np.float32), name
        )

    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("Relu", ["c1"], ["r"], name="relu1"),
        helper.make_node("Conv", ["r", "w2", "b2"], ["c2"], name="conv2"),
        helper.make_node("Add", ["c2", "r"], ["a"], name="residual"),
        helper.make_node("GlobalAveragePool", ["a"], ["p"], name="pool"),
        helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "w3", "b3"], ["logits"], transB=1, name="head"),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=1, name="softmax"),
    ]
    inits = [
        init("w1", (64, channels, 3, 3)), init("b1", (64,)), init("w2", (64, 64, 1, 1), 0.1),
        init("b2", (64,)), init("w3", (10, 64)), init("b3", (10,)),
    ]  # fmt: skip
    m = model(
        nodes, [value_info("x", [1, channels, size, size])], [value_info("probs", [1, 10])], inits
    )
    from edgec.pass_manager import create_pass

    create_pass("cleanup::infer_shapes")(m)
    return m


@pytest.fixture
def net() -> ir.Model:
    return small_net()


@pytest.fixture
def make_net():
    return small_net


@pytest.fixture
def calib_file(tmp_path) -> str:
    data = np.random.default_rng(1).standard_normal((16, 8, 6, 6)).astype(np.float32)
    path = tmp_path / "calib.npy"
    np.save(path, data)
    return str(path)
