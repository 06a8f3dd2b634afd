"""quant::calibrate + quant::activations on a small net: which tensors, the numbers, errors."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
import pytest

from edgec.errors import UserError
from edgec.passes.quant import _policy
from edgec.passes.quant.ranges import activation_qparams


def _ranges(m: ir.Model) -> dict[str, tuple[float, float]]:
    values = [v for n in m.graph for v in n.outputs] + list(m.graph.inputs)
    return {v.name: _policy.read_range(v) for v in values if _policy.read_range(v)}


def test_calibrate_records_minmax_ranges_of_the_quantized_tensors(helpers, net, calib_file):
    result, p = helpers.run_pass("quant::calibrate", net, data=calib_file, method="minmax")
    assert result.modified and p.stats["samples"] == 16
    ranges = _ranges(net)
    # inputs/outputs of Conv, Add, Gemm; the Relu output instead of conv1's; not the Gemm's
    # output (it only feeds Softmax) and not the graph output
    assert sorted(ranges) == ["a", "c2", "f", "r", "x"]
    data = np.load(calib_file)
    assert ranges["x"] == (pytest.approx(data.min()), pytest.approx(data.max()))
    assert ranges["r"][0] == 0.0  # post-ReLU
    helpers.assert_idempotent("quant::calibrate", net, data=calib_file)


def test_activations_insert_uint8_pairs_with_the_calibrated_parameters(helpers, net, calib_file):
    before = helpers.clone(net)
    helpers.run_pass("quant::calibrate", net, data=calib_file, method="minmax")
    ranges = _ranges(net)
    result, p = helpers.run_pass("quant::activations", net)
    assert result.modified and p.stats["tensors_quantized"] == 5
    onnx.checker.check_model(ir.to_proto(net), full_check=True)
    q_nodes = {n.inputs[0].name: n for n in net.graph if n.op_type == "QuantizeLinear"}
    assert sorted(q_nodes) == ["a", "c2", "f", "r", "x"]
    scale, zp = activation_qparams(*ranges["r"], symmetric=False)
    q = q_nodes["r"]
    assert q.outputs[0].dtype == ir.DataType.UINT8
    assert q.inputs[1].const_value.numpy() == np.float32(scale)
    assert q.inputs[2].const_value.numpy() == zp
    # the Softmax still reads the float Gemm output
    softmax = next(n for n in net.graph if n.op_type == "Softmax")
    assert softmax.inputs[0].producer().op_type == "Gemm"
    # numerics: the same as fake-quantizing x by hand on a float graph's input
    x = np.load(calib_file)[:1]
    s, z = activation_qparams(*ranges["x"], symmetric=False)
    x_fq = ((np.clip(np.round(x / s) + z, 0, 255) - z) * s).astype(np.float32)
    got = helpers.run_ort(net, {"x": x})[0]
    ref = helpers.run_ort(before, {"x": x_fq})[0]
    assert np.abs(got - ref).max() < 0.05  # the other four pairs add 8-bit error
    helpers.assert_idempotent("quant::activations", net)


def test_symmetric_activations_are_int8_with_zero_point_0(helpers, net, calib_file):
    helpers.run_pass("quant::calibrate", net, data=calib_file)
    helpers.run_pass("quant::activations", net, symmetric=True)
    for q in (n for n in net.graph if n.op_type == "QuantizeLinear"):
        assert q.outputs[0].dtype == ir.DataType.INT8 and q.inputs[2].const_value.numpy() == 0


@pytest.mark.parametrize("method", ["percentile", "mse", "entropy"])
def test_histogram_methods_give_ranges_within_minmax(helpers, make_net, calib_file, method):
    net, reference = make_net(), make_net()
    helpers.run_pass("quant::calibrate", net, data=calib_file, method=method)
    helpers.run_pass("quant::calibrate", reference, data=calib_file, method="minmax")
    wide = _ranges(reference)
    for name, (lo, hi) in _ranges(net).items():
        assert wide[name][0] - 1e-6 <= lo <= 0 <= hi <= wide[name][1] + 1e-6


def test_calibration_errors_are_user_errors(helpers, net, tmp_path):
    with pytest.raises(UserError, match="needs calibration data"):
        helpers.run_pass("quant::calibrate", net)
    with pytest.raises(UserError, match="does not exist"):
        helpers.run_pass("quant::calibrate", net, data=str(tmp_path / "nope.npy"))
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((2, 3, 6, 6), np.float32))
    with pytest.raises(UserError, match="the model takes"):
        helpers.run_pass("quant::calibrate", net, data=str(wrong))
    with pytest.raises(UserError, match="unknown calibration method"):
        helpers.run_pass("quant::calibrate", net, data=str(wrong), method="best")
