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


def _two_input_net() -> ir.Model:
    """a, b [1,8,N,6] (N free) ─ Add ─ s ─ Conv 1×1 (16) ─ Relu ─ y"""
    from onnx import helper, numpy_helper
    from support.onnx_build import model, value_info

    w = (np.random.default_rng(0).standard_normal((16, 8, 1, 1)) * 0.2).astype(np.float32)
    nodes = [
        helper.make_node("Add", ["a", "b"], ["s"], name="add"),
        helper.make_node("Conv", ["s", "w"], ["c"], name="conv"),
        helper.make_node("Relu", ["c"], ["y"], name="relu"),
    ]
    inputs = [value_info("a", [1, 8, "n", 6]), value_info("b", [1, 8, "n", 6])]
    return model(
        nodes, inputs, [value_info("y", [1, 16, "n", 6])], [numpy_helper.from_array(w, "w")]
    )


def test_a_multi_input_graph_calibrates_on_named_feeds_of_any_shape(helpers, tmp_path):
    """Samples of a several-input graph are feed dicts (edgec.sample_feeds); their sizes may
    differ from sample to sample, as an EfficientTAM memory bank's do."""
    from edgec.sample_feeds import save_feeds

    rng = np.random.default_rng(2)
    samples = [
        {name: rng.standard_normal((1, 8, n, 6)).astype(np.float32) for name in ("a", "b")}
        for n in (3, 5, 4)
    ]
    path = tmp_path / "feeds.npz"
    save_feeds(path, samples)
    net = _two_input_net()
    _, p = helpers.run_pass("quant::calibrate", net, data=str(path), method="minmax")
    assert p.stats["samples"] == 3
    s = next(v for n in net.graph for v in n.outputs if v.name == "s")
    sums = [f["a"] + f["b"] for f in samples]
    lo, hi = _policy.read_range(s)
    assert lo == pytest.approx(min(x.min() for x in sums), abs=1e-6)
    assert hi == pytest.approx(max(x.max() for x in sums), abs=1e-6)
    plain = tmp_path / "batch.npy"
    np.save(plain, np.zeros((2, 8, 3, 6), np.float32))
    with pytest.raises(UserError, match="must be named feeds"):
        helpers.run_pass("quant::calibrate", _two_input_net(), data=str(plain))
