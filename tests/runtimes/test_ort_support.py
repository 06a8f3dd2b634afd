"""ONNX Runtime op support: `check`, `ensure_supported`, `float16_fallbacks`."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgec.errors import UnsupportedOpsError
from edgec.runtimes import ort


def test_check_accepts_a_clean_model(tiny):
    assert ort.check(tiny) == {}
    ort.ensure_supported(tiny)


def _custom_and_double_model() -> ir.Model:
    nodes = [
        helper.make_node("Frobnicate", ["x"], ["t"], name="frob_1", domain="my.ops"),
        helper.make_node("Frobnicate", ["t"], ["u"], name="frob_2", domain="my.ops"),
        helper.make_node("Cast", ["u"], ["d"], name="to_double", to=TensorProto.DOUBLE),
        helper.make_node("Conv", ["d", "w"], ["y"], name="conv_f64"),
    ]
    graph = helper.make_graph(
        nodes,
        "bad",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, None)],
        [numpy_helper.from_array(np.full((4, 3, 3, 3), 0.1), "w")],  # float64
    )
    opsets = [helper.make_opsetid("", 18), helper.make_opsetid("my.ops", 1)]
    model = ir.from_proto(helper.make_model(graph, opset_imports=opsets, ir_version=10))
    model.graph.node(0).outputs[0].type = ir.TensorType(ir.DataType.FLOAT)
    model.graph.node(1).outputs[0].type = ir.TensorType(ir.DataType.FLOAT)
    model.graph.node(2).outputs[0].type = ir.TensorType(ir.DataType.DOUBLE)
    return model


def test_check_flags_every_unsupported_op_at_once():
    model = _custom_and_double_model()
    assert ort.check(model) == {
        "my.ops::Frobnicate": ["frob_1", "frob_2"],
        "Conv": ["conv_f64"],
    }
    with pytest.raises(UnsupportedOpsError) as err:
        ort.ensure_supported(model)
    text = str(err.value)
    assert "frob_1" in text and "conv_f64" in text and "tensor(double)" in text
    assert "custom domain" in text and err.value.exit_code == 2


def test_float16_runs_through_casts_and_is_reported():
    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "a"], ["y"], name="add_fp16")],
        "fp16",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT16, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT16, [2])],
    )
    model = ir.from_proto(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
    )
    assert ort.check(model) == {}
    assert ort.float16_fallbacks(model) == {"Add": ["add_fp16"]}
