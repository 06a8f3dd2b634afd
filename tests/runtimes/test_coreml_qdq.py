"""Quantized graphs (the QDQ form of docs/quantization.md) → Core ML constexpr weights + int8
activations, saved, reloaded, inspected, and evaluated against ONNX Runtime on the QDQ graph.

Core ML cannot run on Linux; the packages' MIL programs are run by edgec's numpy reference
evaluator (`coreml_eval`) instead.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper, numpy_helper
from support.onnx_build import model, value_info

pytest.importorskip("coremltools", reason="coremltools is not installed")

from edgec.errors import UserError
from edgec.runtimes import coreml


def _act_pair(name, x, lo, hi, inits):
    """uint8 asymmetric Q → DQ on `x` (quant::activations' default form)."""
    scale = np.float32((hi - lo) / 255)
    inits += [
        numpy_helper.from_array(np.array(scale), f"{name}_s"),
        numpy_helper.from_array(np.array(np.rint(-lo / scale), np.uint8), f"{name}_zp"),
    ]
    return [
        helper.make_node("QuantizeLinear", [x, f"{name}_s", f"{name}_zp"], [f"{name}_q"]),
        helper.make_node("DequantizeLinear", [f"{name}_q", f"{name}_s", f"{name}_zp"], [name]),
    ]


def _w8(name, w, axis, inits):
    """Symmetric per-channel int8 weight behind a DequantizeLinear (zero point int8 zeros)."""
    others = tuple(i for i in range(w.ndim) if i != axis)
    scale = (np.abs(w).max(axis=others) / 127).astype(np.float32)
    shape = [1] * w.ndim
    shape[axis] = -1
    q = np.clip(np.rint(w / scale.reshape(shape)), -127, 127).astype(np.int8)
    inits += [
        numpy_helper.from_array(q, f"{name}_q"),
        numpy_helper.from_array(scale, f"{name}_s"),
        numpy_helper.from_array(np.zeros(scale.shape, np.int8), f"{name}_zp"),
    ]
    return helper.make_node(
        "DequantizeLinear", [f"{name}_q", f"{name}_s", f"{name}_zp"], [name], axis=axis
    )


def w8a8_graph() -> ir.Model:
    """x → QDQ → Conv(w8) + b → Relu → QDQ → GAP → Flatten → QDQ → MatMul(w8) → y."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array((rng.standard_normal(8) * 0.1).astype(np.float32), "b")]
    nodes = [
        *_act_pair("xq", "x", -2.5, 2.5, inits),
        _w8("w", (rng.standard_normal((8, 3, 3, 3)) * 0.3).astype(np.float32), 0, inits),
        helper.make_node("Conv", ["xq", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        *_act_pair("rq", "r", 0.0, 3.0, inits),
        helper.make_node("GlobalAveragePool", ["rq"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        *_act_pair("fq", "f", 0.0, 1.5, inits),
        _w8("wm", (rng.standard_normal((8, 5)) * 0.5).astype(np.float32), 1, inits),
        helper.make_node("MatMul", ["fq", "wm"], ["y"]),
    ]
    return model(nodes, [value_info("x", [1, 3, 16, 16])], [value_info("y", [1, 5])], inits)


def w4a8_graph() -> ir.Model:
    """x[1, 64] → QDQ → MatMul(int4 [64, 16], blocks of 32 along K, axis 0) → y (opset 21)."""
    rng = np.random.default_rng(1)
    w = (rng.standard_normal((64, 16)) * 0.2).astype(np.float32)
    scale = (np.abs(w.reshape(2, 32, 16)).max(axis=1) / 7).astype(np.float32)  # [2, 16]
    q = np.clip(np.rint(w / np.repeat(scale, 32, axis=0)), -8, 7).astype(np.int8)
    inits = [
        helper.make_tensor("w_q", TensorProto.INT4, q.shape, q.reshape(-1).tolist()),
        numpy_helper.from_array(scale, "w_s"),
    ]
    nodes = [
        *_act_pair("xq", "x", -3.0, 3.0, inits),
        helper.make_node("DequantizeLinear", ["w_q", "w_s"], ["w"], axis=0, block_size=32),
        helper.make_node("MatMul", ["xq", "w"], ["y"]),
    ]
    return model(nodes, [value_info("x", [1, 64])], [value_info("y", [1, 16])], inits, opset=21)


@pytest.fixture(scope="module")
def w8a8_ios17(tmp_path_factory):
    return coreml.emit(
        w8a8_graph(), tmp_path_factory.mktemp("w8"), name="w8", precision="w8a8", min_ios="ios17"
    )


def test_w8a8_ios17_keeps_int8_weights_and_quantizes_activations(w8a8_ios17):
    package = w8a8_ios17.details["package"]
    assert w8a8_ios17.precision == "w8a8"
    assert package["ops"]["constexpr_affine_dequantize"] == 2
    assert package["ops"]["quantize"] >= 2 and package["ops"]["dequantize"] >= 2
    assert package["weight_dtypes"]["int8"] == 2
    layers = w8a8_ios17.details["layers"]
    assert [(w["bits"], w["granularity"]) for w in layers["weights"]] == [(8, "per-channel")] * 2
    assert len(layers["activations"]) == 3 and all(
        a["dtype"] == "uint8" for a in layers["activations"]
    )


def test_w8a8_package_computes_the_qdq_graph(w8a8_ios17):
    check = w8a8_ios17.details["reference_check"]
    assert check["passed"], check
    assert check["outputs"][0]["cosine"] > 0.999


def test_w4a8_ios18_keeps_int4_block_weights(tmp_path):
    art = coreml.emit(w4a8_graph(), tmp_path, name="w4", precision="w4a8")
    package = art.details["package"]
    assert art.precision == "w4a8"
    assert art.details["minimum_deployment_target"] == "iOS18"
    assert package["ops"]["constexpr_blockwise_shift_scale"] == 1
    assert package["weight_dtypes"]["int4"] == 1
    (weight,) = art.details["layers"]["weights"]
    assert (weight["bits"], weight["granularity"]) == (4, "per-block(32)")
    assert "Neural Engine" in weight["why"]
    assert any("per-block" in note["why"] for note in art.details["placement"])
    assert art.details["reference_check"]["passed"], art.details["reference_check"]


def test_w8a8_on_ios18_uses_the_blockwise_op(tmp_path):
    art = coreml.emit(w8a8_graph(), tmp_path, name="w8", precision="w8a8", min_ios="ios18")
    assert art.details["package"]["ops"]["constexpr_blockwise_shift_scale"] == 2
    assert art.details["reference_check"]["passed"]


def test_int4_weights_need_ios18(tmp_path):
    with pytest.raises(UserError, match="ios18"):
        coreml.emit(w4a8_graph(), tmp_path, name="w4", precision="w4a8", min_ios="ios17")
    with pytest.raises(UserError, match="4-bit or per-block"):
        coreml.ensure_supported(w4a8_graph(), min_ios="ios17")


def test_a_float_graph_is_never_called_w8a8(tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["y"])]
    m = model(nodes, [value_info("x", [1, 4])], [value_info("y", [1, 4])])
    with pytest.raises(UserError, match="holds fp16"):
        coreml.emit(m, tmp_path, name="f", precision="w8a8")
