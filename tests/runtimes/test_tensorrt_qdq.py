"""TensorRT's QDQ form: the rewrite on hand-built graphs, checked by ORT and TensorRT-RTX.

Each graph the rewrite produces is run in ONNX Runtime against the graph it came from, and
parsed and built by TensorRT-RTX; the ORT-style and W4A8 originals are shown to fail there.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
import onnxruntime as ort
import pytest
from support.qdq_build import w4_mlp, w8a8_cnn

from edgec.runtimes.tensorrt_build import build
from edgec.runtimes.tensorrt_fp16 import needed_opset, raise_opset, to_float16
from edgec.runtimes.tensorrt_qdq import census, to_tensorrt_form
from edgec.runtimes.tensorrt_sdk import find_sdk

SDK = find_sdk()
needs_trt = pytest.mark.skipif(SDK is None, reason="neither tensorrt nor tensorrt_rtx imports")


def run(model: ir.Model, x: np.ndarray) -> np.ndarray:
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    proto = ir.to_proto(model)
    onnx.checker.check_model(proto, full_check=True)
    return ort.InferenceSession(proto.SerializeToString(), so).run(None, {"x": x})[0]


def gate(model: ir.Model, tmp_path):
    path = tmp_path / "g.onnx"
    onnx.save(ir.to_proto(model), path)
    return build(SDK, path, shapes={}, timing_cache=None)


def cnn_input() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((1, 3, 16, 16)).astype(np.float32)


def mlp_input() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((1, 16, 64)).astype(np.float32)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a.ravel(), b.ravel()) / np.linalg.norm(a) / np.linalg.norm(b))


@needs_trt
def test_ort_style_w8a8_fails_in_tensorrt_and_the_rewrite_fixes_it(tmp_path):
    model, x = w8a8_cnn("ort"), cnn_input()
    before = run(model, x)
    rejected = gate(model, tmp_path)
    assert not rejected.ok and rejected.stage == "parse"
    assert "zero point" in " ".join(rejected.errors)
    stats = to_tensorrt_form(model)
    assert stats["bias_dequantize_folded"] == 1
    assert stats["activation_pairs_made_symmetric"] == 2
    assert not any(
        n.inputs[0].dtype == ir.DataType.INT32
        for n in model.graph
        if n.op_type == "DequantizeLinear"
    )
    zero_points = [n.inputs[2] for n in model.graph if n.op_type in ("QuantizeLinear",)]
    assert all(v.dtype == ir.DataType.INT8 for v in zero_points)
    assert cosine(before, run(model, x)) > 0.999
    assert census(model)["w8a8"] == 2
    assert gate(model, tmp_path).ok


def test_rewrite_is_idempotent_and_leaves_tensorrt_form_alone():
    model = w8a8_cnn("tensorrt")
    assert set(to_tensorrt_form(model).values()) == {0}
    once = w8a8_cnn("ort")
    to_tensorrt_form(once)
    assert set(to_tensorrt_form(once).values()) == {0}


def test_asymmetric_uint8_weights_are_requantized_symmetric():
    model = w8a8_cnn("tensorrt")
    dq = next(n for n in model.graph if n.outputs[0].name == "w")
    q = dq.inputs[0].const_value.numpy().astype(np.int16) + 128
    shifted, zp = (
        ir.Value(name=name, type=ir.TensorType(ir.DataType.UINT8), shape=t.shape, const_value=t)
        for name, t in (
            ("w_u8", ir.tensor(q.astype(np.uint8))),
            ("w_zp_u8", ir.tensor(np.full(8, 128, np.uint8))),
        )
    )
    for value in (shifted, zp):
        model.graph.register_initializer(value)
    dq.replace_input_with(0, shifted)
    dq.replace_input_with(2, zp)
    x = cnn_input()
    before = run(model, x)
    assert to_tensorrt_form(model)["weights_requantized_symmetric"] == 1
    assert dq.inputs[0].dtype == ir.DataType.INT8
    assert not dq.inputs[2].const_value.numpy().any()
    np.testing.assert_allclose(run(model, x), before, atol=1e-5)


@needs_trt
def test_w4a8_does_not_build_and_becomes_w4a16(tmp_path):
    model, x = w4_mlp("int8"), mlp_input()
    failed = gate(model, tmp_path)
    assert not failed.ok and failed.stage == "build"
    assert census(model)["w4a8"] == 1
    before = run(model, x)
    assert to_tensorrt_form(model)["activation_qdq_dropped_for_int4"] == 1
    assert census(model) | {"float": 0} == census(model) | {
        "w4a16": 1,
        "w4a8": 0,
        "activation_qdq": 0,
        "float": 0,
    }
    assert not any(n.op_type == "QuantizeLinear" for n in model.graph)
    assert cosine(before, run(model, x)) > 0.99
    assert gate(model, tmp_path).ok


@needs_trt
@pytest.mark.parametrize(
    "make", [lambda: w8a8_cnn("ort"), lambda: w8a8_cnn("tensorrt"), lambda: w4_mlp()]
)
def test_fp16_with_qdq_keeps_dq_next_to_its_layer_and_builds(make, tmp_path):
    model = make()
    x = cnn_input() if model.graph.inputs[0].shape[1] == 3 else mlp_input()
    before = run(model, x)
    to_tensorrt_form(model)
    raise_opset(model, needed_opset(model))
    half = to_float16(model)
    assert half.opset_imports[""] >= 19
    assert census(half) == census(model)  # no Cast came between a DQ and its layer
    scales = [n.inputs[1] for n in half.graph if n.op_type == "DequantizeLinear"]
    assert all(s.dtype == ir.DataType.FLOAT16 for s in scales)
    assert cosine(before, run(half, x)) > 0.99
    assert gate(half, tmp_path).ok
