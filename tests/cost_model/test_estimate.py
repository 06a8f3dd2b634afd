"""edgec.estimate on real exported graphs' shapes and hand-built ones: what it says and how."""

import json

import pytest
from onnx import helper
from support.onnx_build import model, value_info, weight

import edgec
from edgec.cli import main
from edgec.cost_model.calibration import load_calibrations
from edgec.cost_model.fit import fit_constants, predict_seconds
from edgec.cost_model.roofline import Terms
from edgec.device_profile import all_profiles
from edgec.errors import UserError
from edgec.estimate import EstimateUnavailable, estimate


def _net():
    """Conv → Relu → MatMul(q,kᵀ)-Softmax-MatMul attention on the conv's tokens → TopK."""
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Reshape", ["r", "shape"], ["t"]),
        helper.make_node("Transpose", ["t"], ["tt"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["t", "tt"], ["s"]),
        helper.make_node("Softmax", ["s"], ["p"], axis=-1),
        helper.make_node("MatMul", ["p", "t"], ["o"]),
        helper.make_node("TopK", ["o", "k"], ["vals", "idx"], axis=-1),
    ]
    inits = [
        weight("w", (32, 3, 3, 3)),
        helper.make_tensor("shape", 7, [3], [1, 32, 64]),
        helper.make_tensor("k", 7, [1], [2]),
    ]
    return model(
        nodes,
        [value_info("x", [1, 3, 8, 8])],
        [value_info("vals", [1, 32, 2]), value_info("idx", [1, 32, 2], 7)],
        inits,
    )


def test_estimate_says_it_is_an_estimate_and_carries_the_devices_error():
    result = edgec.estimate(_net(), "iphone-12")  # the package attribute is callable
    data = result.to_dict()
    assert data["method"] == "estimated" and "not a measurement" in data["note"]
    shipped = load_calibrations()["devices"]["iphone-12"]["expected_error"]
    assert data["expected_error"] == shipped and shipped["n"] >= 3
    low, high = data["range_ms"]
    assert low < data["total_ms"] < high
    assert "ESTIMATE (not measured)" in result.table()
    assert sum(data["by_class_ms"].values()) == pytest.approx(data["total_ms"], rel=1e-3)


def test_topk_falls_back_to_the_cpu_on_the_neural_engine_and_costs_more():
    result = estimate(_net(), "iphone-12")
    (topk,) = [k for k in result.kernels if k.kernel.op_types == ["TopK"]]
    assert topk.unit == "cpu" and topk.bound == "fallback"
    kinds = {f["kind"]: f for f in result.fallbacks}
    assert kinds["certain"]["in_total"] and kinds["certain"]["extra_ms"] > 0
    # the "attention may not load on the ANE" report is priced but not added to the total
    assert kinds["possible"]["in_total"] is False and kinds["possible"]["extra_ms"] > 0


def test_estimates_are_deterministic_and_scale_with_precision_and_batch():
    one = estimate(_net(), "nvidia-a100", precision="fp16").to_dict()
    assert one == estimate(_net(), "nvidia-a100", precision="fp16").to_dict()
    fp32 = estimate(_net(), "nvidia-a100", precision="fp32").total_ms
    assert fp32 > one["total_ms"]  # fp32: lower peak and twice the bytes
    batched = estimate(_net(), "nvidia-a100", precision="fp16", batch=64).total_ms
    assert one["total_ms"] < batched < 64 * one["total_ms"]  # launches amortised


def test_a_device_without_figures_or_anchors_is_refused_with_a_reason():
    with pytest.raises(EstimateUnavailable, match=r"pixel-8.*no peak throughput"):
        estimate(_net(), "pixel-8")


def test_bad_precision_batch_and_path_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="unknown precision"):
        estimate(_net(), "nvidia-a100", precision="fp12")
    with pytest.raises(UserError, match="batch"):
        estimate(_net(), "nvidia-a100", batch=0)
    with pytest.raises(UserError, match=r"not an \.onnx file"):
        estimate(tmp_path / "missing.onnx", "nvidia-a100")


def test_profile_device_prints_a_table_and_json(tmp_path, capsys):
    import onnx_ir as ir

    path = tmp_path / "net.onnx"
    ir.save(_net(), path)
    assert main(["profile", str(path), "--device", "jetson", "--precision", "fp16"]) == 0
    out = capsys.readouterr().out
    assert "ESTIMATE (not measured) for jetson-orin-nano" in out and "attention" in out
    assert main(["profile", str(path), "--device", "jetson", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["method"] == "estimated" and data["device"] == "jetson-orin-nano"
    assert main(["profile", str(path), "--device", "pixel-8"]) == 2
    assert "no peak throughput" in capsys.readouterr().err
    # --runtime: the estimate follows the unit that runtime runs on, as `compile --runtime` does
    assert main(["profile", str(path), "--device", "android", "--runtime", "qnn", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["unit"]["kind"] == "npu"
    assert main(["profile", str(path), "--device", "android", "--runtime", "onnxruntime"]) == 2
    assert "no peak throughput for the cpu" in capsys.readouterr().err
    assert main(["profile", str(path), "--runtime", "qnn"]) == 2
    assert "--runtime goes with --device" in capsys.readouterr().err


def test_fit_recovers_known_constants():
    """Compute-, memory-, launch- and copy-bound models pin down one constant each."""
    truth = (3.0, 1.5, 40.0, 6.0)
    shapes = [(1e-3, 1e-6, 10), (1e-6, 1e-3, 10), (1e-8, 1e-8, 50), (2e-4, 1e-4, 20)]
    models = [[Terms(compute, memory, 1)] * count for compute, memory, count in shapes]
    models += [[Terms(0.0, 1e-3, 1, layout=True)] * n for n in (5, 10, 20)]  # copies only
    samples = [(terms, predict_seconds(terms, *truth)) for terms in models]
    fitted = fit_constants(samples, prior=(1.0, 1.0, 20.0, 1.0))
    for got, want in zip(fitted, (*truth, 1.0), strict=True):
        assert got == pytest.approx(want, rel=0.1)
    assert fitted == fit_constants(samples, prior=(1.0, 1.0, 20.0, 1.0))  # deterministic
    held = fit_constants(samples, prior=(1.0, 1.0, 20.0, 1.0), fixed_overhead_us=25.0)
    assert held[2] == pytest.approx(25.0)


def test_fit_picks_what_a_whole_axis_reduction_costs():
    """Two models of equal launches, one with ten reductions, tell 5 launches per reduction from
    1; without a reduction among the anchors every candidate fits alike and the first (1) wins."""
    truth = (1.0, 1.0, 20.0, 1.0, 5.0)
    plain = [Terms(1e-5, 1e-6, 1)] * 50
    gated = [Terms(1e-5, 1e-6, 1)] * 40 + [Terms(1e-7, 1e-7, 1, reductions=1)] * 10
    large = [Terms(1e-3, 1e-6, 1)] * 10
    samples = [(terms, predict_seconds(terms, *truth)) for terms in (plain, gated, large)]
    candidates = (1.0, 2.0, 3.0, 5.0, 8.0)
    assert fit_constants(samples, (1.0, 1.0, 20.0, 1.0), reduction_launches=candidates)[4] == 5.0
    without = [samples[0], samples[2]]
    assert fit_constants(without, (1.0, 1.0, 20.0, 1.0), reduction_launches=candidates)[4] == 1.0


def test_an_anchor_far_off_the_model_pulls_less_than_its_square():
    """Huber loss: one measurement 8x off moves the fitted scale far less than least squares."""
    terms = [Terms(1e-3, 1e-6, 1)]
    clean = [(terms, 1e-3)] * 4
    fitted = fit_constants([*clean, (terms, 8e-3)], prior=(1.0, 1.0, 1.0, 1.0))
    # least squares in log space: 8 ** (1/5) ≈ 1.52; Huber (δ = ln 2): e^(δ/4) ≈ 1.19
    assert 1.05 < fitted[0] < 1.3


def test_every_calibrated_device_is_a_profile_with_an_expected_error():
    data = load_calibrations()
    profiles = all_profiles()
    assert data["priors_only_error"]["n"] > 0
    for name, entry in data["devices"].items():
        assert name in profiles and profiles[name].latency == "estimated"
        assert entry["expected_error"]["median_pct"] is not None and entry["how"]
