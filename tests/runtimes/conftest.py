"""Fixtures for the ONNX Runtime tests: a tiny float32 CNN (`tiny`, `make_tiny`) and its input."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper, numpy_helper


def _init(name: str, shape: tuple[int, ...]) -> onnx.TensorProto:
    rng = np.random.default_rng(sum(map(ord, name)))
    return numpy_helper.from_array((rng.standard_normal(shape) * 0.3).astype(np.float32), name)


def _tiny_proto() -> onnx.ModelProto:
    """Conv → Relu → GlobalAveragePool → Flatten → MatMul → Add → Softmax, 1x3x8x8 → 1x4."""
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu", doc_string="File /home/me/x.py:3"),
        helper.make_node("GlobalAveragePool", ["r"], ["p"]),  # unnamed on purpose
        helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
        helper.make_node("MatMul", ["f", "wm"], ["m"], name="fc"),
        helper.make_node("Add", ["m", "bm"], ["a"], name="fc_bias"),
        helper.make_node("Softmax", ["a"], ["y"], name="softmax"),
    ]
    helper.set_metadata_props(nodes[0], {"pkg.torch.onnx.stack_trace": "/abs/path/model.py:12"})
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        [_init("w", (8, 3, 3, 3)), _init("b", (8,)), _init("wm", (8, 4)), _init("bm", (4,))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
    helper.set_model_props(model, {"edgec.preprocess": '{"mean": [0.5, 0.5, 0.5]}'})
    return onnx.shape_inference.infer_shapes(model)


@pytest.fixture
def make_tiny() -> Callable[[], ir.Model]:
    """Builds a fresh, independent copy of the tiny model on every call."""
    return lambda: ir.from_proto(_tiny_proto())


@pytest.fixture
def tiny(make_tiny) -> ir.Model:
    return make_tiny()


@pytest.fixture
def x() -> dict[str, np.ndarray]:
    return {"x": np.random.default_rng(1).standard_normal((1, 3, 8, 8)).astype(np.float32)}
