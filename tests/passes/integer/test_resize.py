"""Integer bilinear Resize with fixed-point weights: exact for Segmenter's ×16 half-pixel
upsampling (against torch), within the weights' rounding of ONNX Runtime's float Resize for
every coordinate transform it lowers; and `integer::int_only` lowers a bilinear Resize."""

import numpy as np
import pytest
import torch
from block_harness import run_block
from onnx import TensorProto, helper
from support.onnx_build import model as build_model
from support.onnx_build import value_info

from edgec.passes.integer import resize
from edgec.passes.integer.checker import check_int_only


def _ints(rng, shape, bits=16):
    limit = 2 ** (bits - 1) - 1
    return rng.integers(-limit, limit + 1, shape)


def _float_resize(helpers, x, out_shape, transform):
    node = helper.make_node(
        "Resize", ["x", "", "", "sizes"], ["y"], mode="linear",
        coordinate_transformation_mode=transform,
    )  # fmt: skip
    graph = build_model(
        [node],
        [value_info("x", list(x.shape))],
        [value_info("y", list(out_shape))],
        [helper.make_tensor("sizes", TensorProto.INT64, [4], list(out_shape))],
    )
    return helpers.run_ort(graph, {"x": x.astype(np.float32)})[0]


def test_segmenter_x16_half_pixel_upsampling_is_exact():
    rng = np.random.default_rng(0)
    x = _ints(rng, (1, 5, 3, 4))
    out_shape = (1, 5, 48, 64)
    y, out = run_block(
        lambda em, a: resize.bilinear(
            em, a, x.shape, out_shape, (1, 1, 16, 16), "half_pixel"
        ),
        [(x, 1.0, 16)],
    )  # fmt: skip
    assert out.bits == 32 and out.scale == 2.0**-16
    expected = torch.nn.functional.interpolate(
        torch.tensor(x, dtype=torch.float64), size=(48, 64), mode="bilinear", align_corners=False
    ).numpy()
    np.testing.assert_array_equal(y * out.scale, expected)


@pytest.mark.parametrize("transform", resize.TRANSFORMS)
@pytest.mark.parametrize(("size_in", "size_out"), [((5, 7), (9, 11)), ((8, 6), (5, 13))])
def test_bilinear_against_onnx_runtime(helpers, transform, size_in, size_out):
    rng = np.random.default_rng(1)
    x = _ints(rng, (1, 3, *size_in))
    out_shape = (1, 3, *size_out)
    scales = (1.0, 1.0, size_out[0] / size_in[0], size_out[1] / size_in[1])
    y, out = run_block(
        lambda em, a: resize.bilinear(em, a, x.shape, out_shape, scales, transform),
        [(x, 1.0, 16)],
    )
    real = _float_resize(helpers, x, out_shape, transform)
    # per axis, W1 is off by ≤ 2^-(F+1) and W0 = 2^F − W1: an error of ≤ 2^-(F+1)·|x1 − x0|
    bound = 2 * 2.0 ** -(resize.WEIGHT_BITS + 1) * 2 * np.abs(x).max() + 1e-2
    assert np.abs(y * out.scale - real).max() <= bound


def test_int_only_lowers_bilinear_resize(helpers, tmp_path):
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="relu"),
        helper.make_node(
            "Resize", ["r", "", "k"], ["y"], mode="linear", name="up",
            coordinate_transformation_mode="half_pixel",
        ),
    ]  # fmt: skip
    scales = helper.make_tensor("k", TensorProto.FLOAT, [4], [1, 1, 4, 4])
    model = build_model(
        nodes, [value_info("x", [1, 2, 3, 3])], [value_info("y", [1, 2, 12, 12])], [scales]
    )
    helpers.infer_shapes(model)
    reference = helpers.clone(model)
    data = np.random.default_rng(2).standard_normal((8, 2, 3, 3)).astype(np.float32)
    np.save(tmp_path / "calib.npy", data)
    helpers.run_pass("integer::int_only", model, data=str(tmp_path / "calib.npy"), count=8)
    report = check_int_only(model)
    assert report.int_only and report.ops["Gather"] == 4 and "Resize" not in report.ops
    ref = helpers.run_ort(reference, {"x": data[:1]})[0]
    got = helpers.run_ort(model, {"x": data[:1]})[0]
    assert np.abs(got - ref).max() < 2 * np.abs(data).max() / 127  # the int8 input's rounding
