"""Bias correction: quant::calibrate measures each weight layer's mean input, quant::weights
folds −ΔW·E[x] into the bias, so the quantized layer's mean output equals the float one."""

from __future__ import annotations

import json

import numpy as np
import pytest
from onnx import helper, numpy_helper
from support.onnx_build import model, value_info

from edgec.passes._graph import const_array
from edgec.passes.quant import _policy
from edgec.passes.quant.bias_correction import input_mean, mean_reading, output_shift


def _layer_graph(op: str, with_bias: bool, seed: int = 0):
    """x → one weight layer (→ Add of a constant for "MatMul+Add") → y, with data whose mean
    is far from zero (as after a ReLU), so ΔW·E[x] is large."""
    rng = np.random.default_rng(seed)
    inits = []
    if op == "Conv":  # grouped 1×1 conv, 8 → 12 channels in 2 groups
        inits.append(numpy_helper.from_array(rng.standard_normal((12, 4, 1, 1), np.float32), "w"))
        inputs, x_shape, y_shape = ["x", "w"], [1, 8, 5, 5], [1, 12, 5, 5]
        nodes = [helper.make_node("Conv", [*inputs, *(["b"] if with_bias else [])], ["y"], group=2)]
    elif op.startswith("Conv"):  # "Conv3x3" (pads 1) or "Conv5x5/2" (pads 2, stride 2), 4×4 map
        k, stride = (3, 1) if op == "Conv3x3" else (5, 2)
        inits.append(numpy_helper.from_array(rng.standard_normal((12, 4, k, k), np.float32), "w"))
        inputs, x_shape, y_shape = ["x", "w"], [1, 8, 4, 4], [1, 12, 4 // stride, 4 // stride]
        pads, strides = [k // 2] * 4, [stride] * 2
        operands = [*inputs, *(["b"] if with_bias else [])]
        nodes = [helper.make_node("Conv", operands, ["y"], group=2, pads=pads, strides=strides)]
    elif op == "Gemm":  # the image flattened to [1, 64] · [12, 64]ᵀ (+ b)
        inits.append(numpy_helper.from_array(rng.standard_normal((12, 64), np.float32), "w"))
        x_shape, y_shape = [1, 4, 4, 4], [1, 12]
        nodes = [
            helper.make_node("Flatten", ["x"], ["f"]),
            helper.make_node("Gemm", ["f", "w", *(["b"] if with_bias else [])], ["y"], transB=1),
        ]
    else:  # MatMul: the image as 5 tokens [1, 5, 64] · [64, 12] (+ b)
        inits.append(numpy_helper.from_array(rng.standard_normal((64, 12), np.float32), "w"))
        inits.append(numpy_helper.from_array(np.array([1, 5, 64], np.int64), "tokens"))
        x_shape, y_shape = [1, 5, 8, 8], [1, 5, 12]
        out = "m" if with_bias else "y"
        nodes = [
            helper.make_node("Reshape", ["x", "tokens"], ["f"]),
            helper.make_node("MatMul", ["f", "w"], [out]),
        ]
        if with_bias:
            nodes.append(helper.make_node("Add", ["m", "b"], ["y"]))
    if with_bias:
        inits.append(numpy_helper.from_array(rng.standard_normal(12).astype(np.float32), "b"))
    return model(nodes, [value_info("x", x_shape)], [value_info("y", y_shape)], inits)


def _calib(tmp_path, shape, seed=1):
    data = np.abs(np.random.default_rng(seed).standard_normal((16, *shape[1:]))) + 0.5
    path = tmp_path / "calib.npy"
    np.save(path, data.astype(np.float32))
    return str(path), data.astype(np.float32)


def _mean_output(helpers, m, data, axis):
    """The output's mean per channel over the samples and every position."""
    out = np.concatenate([helpers.run_ort(m, {"x": x[None]})[0] for x in data])
    return np.moveaxis(out, axis, 0).reshape(out.shape[axis], -1).mean(axis=1)


@pytest.mark.parametrize(
    ("op", "with_bias"),
    [
        ("Conv", True),
        ("Conv", False),
        ("Conv3x3", True),
        ("Conv5x5/2", False),
        ("Gemm", True),
        ("Gemm", False),
        ("MatMul", True),
    ],
)
def test_quantized_layer_keeps_the_float_mean_output(helpers, tmp_path, op, with_bias):
    float_model = helpers.infer_shapes(_layer_graph(op, with_bias))
    calib, data = _calib(tmp_path, list(float_model.graph.inputs[0].shape))
    layer = next(n for n in float_model.graph if op.startswith(n.op_type))
    helpers.run_pass("quant::calibrate", float_model, data=calib)
    recorded = np.asarray(json.loads(layer.metadata_props[_policy.INPUT_MEAN_KEY]))
    axis = 1 if op.startswith("Conv") else -1
    if op == "Conv3x3":  # per channel and tap: the mean of what each tap reads, padding as 0
        padded = np.pad(data, [(0, 0), (0, 0), (1, 1), (1, 1)])
        want = np.stack(
            [[padded[:, :, i : i + 4, j : j + 4].mean(axis=(0, 2, 3)) for j in range(3)]
             for i in range(3)]
        ).transpose(2, 0, 1)  # fmt: skip
        np.testing.assert_allclose(recorded, want, rtol=1e-6)
    elif op != "Conv5x5/2":
        seen = data if op == "Conv" else data.reshape(len(data), -1, 64)  # what the layer reads
        want = np.moveaxis(seen, axis, 0).reshape(seen.shape[axis], -1).mean(axis=1)
        np.testing.assert_allclose(recorded, want, rtol=1e-6)

    plain, corrected = helpers.clone(float_model), helpers.clone(float_model)
    _, p = helpers.run_pass("quant::weights", corrected)
    assert dict(p.stats)["bias_corrected"] == 1
    helpers.run_pass("quant::weights", plain, bias_correction=False)
    reference = _mean_output(helpers, float_model, data, axis)
    error_plain = np.abs(_mean_output(helpers, plain, data, axis) - reference).max()
    error_corrected = np.abs(_mean_output(helpers, corrected, data, axis) - reference).max()
    # the shift is removed exactly in expectation (up to float32 rounding)
    assert error_corrected < 1e-4 * max(1.0, np.abs(reference).max()) < error_plain
    helpers.assert_idempotent("quant::weights", corrected)


def test_a_layer_without_a_constant_bias_of_its_own_is_left_and_counted(helpers, tmp_path):
    m = helpers.infer_shapes(_layer_graph("MatMul", with_bias=False))
    calib, _ = _calib(tmp_path, [1, 5, 8, 8])
    helpers.run_pass("quant::calibrate", m, data=calib)
    _, p = helpers.run_pass("quant::weights", m)
    assert p.stats["bias_not_correctable"] == 1 and "bias_corrected" not in p.stats
    assert [n.op_type for n in m.graph] == ["Reshape", "DequantizeLinear", "MatMul"]


def test_output_shift_by_hand():
    delta = np.arange(24, dtype=np.float64).reshape(4, 3, 2, 1)  # Conv [O=4, C/g=3, 2, 1], g=2
    mean = np.array([1.0, 2, 3, 4, 5, 6])
    conv = helper.make_node("Conv", ["x", "w"], ["y"], group=2)
    node = model([conv], [value_info("x", [1, 6, 2, 1])], [value_info("y", None)]).graph.node(0)
    # output channels 0, 1 read input channels 0-2; 2, 3 read 3-5; kernel taps are summed
    summed = delta.sum(axis=(2, 3))
    want = [summed[0] @ mean[:3], summed[1] @ mean[:3], summed[2] @ mean[3:], summed[3] @ mean[3:]]
    np.testing.assert_allclose(output_shift(node, delta, mean), want)
    gemm = helper.make_node("Gemm", ["x", "w"], ["y"], transB=1)
    node = model([gemm], [value_info("x", [1, 3])], [value_info("y", None)]).graph.node(0)
    w = np.arange(6.0).reshape(2, 3)  # [O, K]
    np.testing.assert_allclose(output_shift(node, w, np.array([1.0, 0, 2])), w @ [1, 0, 2])


def test_corrected_bias_is_a_new_constant(helpers, tmp_path):
    """The float bias it replaces is gone (no orphan initializer), the new one is float32."""
    m = helpers.infer_shapes(_layer_graph("Conv", with_bias=True))
    calib, _ = _calib(tmp_path, [1, 8, 5, 5])
    helpers.run_pass("quant::calibrate", m, data=calib)
    helpers.run_pass("quant::weights", m)
    conv = next(n for n in m.graph if n.op_type == "Conv")
    assert conv.inputs[2].name.endswith("_corrected") and "b" not in m.graph.initializers
    assert const_array(conv.inputs[2]).dtype == np.float32


@pytest.mark.parametrize(
    "geometry",
    [
        {"kernel": [3], "strides": [2], "pads": [1, 0], "dilations": [2]},  # 1-D, asymmetric
        {"kernel": [3, 3], "strides": [2, 1], "pads": [1, 1, 0, 1], "dilations": [1, 1]},
        {"kernel": [3, 3, 3], "strides": [1, 2, 2], "pads": [1] * 6, "dilations": [1, 1, 1]},
    ],
)
def test_the_tap_means_give_the_exact_mean_output_shift_of_any_conv(helpers, geometry):
    """ΔW·μ (μ per channel and tap, `input_mean`) equals the mean over samples and output
    positions of Conv(x, ΔW), whatever the stride, dilation and (asymmetric) padding."""
    rng = np.random.default_rng(0)
    spatial = [7, 6, 5][: len(geometry["kernel"])]
    x = np.abs(rng.standard_normal((3, 4, *spatial))).astype(np.float32) + 0.5
    delta = rng.standard_normal((6, 2, *geometry["kernel"])).astype(np.float32)  # 2 groups
    attrs = {k: v for k, v in geometry.items() if k != "kernel"}
    conv = helper.make_node("Conv", ["x", "w"], ["y"], group=2, **attrs)
    inits = [numpy_helper.from_array(delta, "w")]
    net = helpers.infer_shapes(
        model([conv], [value_info("x", [1, 4, *spatial])], [value_info("y", None)], inits)
    )
    node = next(iter(net.graph))
    reading = mean_reading(node)
    assert reading[0] == "taps"
    mean = np.mean([input_mean(sample[None], reading) for sample in x], axis=0)
    outputs = np.concatenate([helpers.run_ort(net, {"x": sample[None]})[0] for sample in x])
    want = outputs.swapaxes(0, 1).reshape(6, -1).mean(axis=1)
    np.testing.assert_allclose(output_shift(node, delta, mean), want, rtol=1e-5, atol=1e-5)
