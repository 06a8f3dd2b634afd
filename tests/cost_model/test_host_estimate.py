"""The host's estimate: micro-benchmark calibration cached on disk, ORT's fusions, the formula."""

import dataclasses
import json

import numpy as np
import pytest
from onnx import helper
from support.onnx_build import model, value_info, weight

from edgec.cli import main
from edgec.cost_model import host_calibration as hc
from edgec.cost_model.fusion import ORT_CPU
from edgec.cost_model.host_micro import MicroResult
from edgec.cost_model.kernels import group_kernels
from edgec.errors import UserError
from edgec.estimate import estimate

TINY = {"scale": 0.1, "rounds": 2}  # micro-benchmarks of a few milliseconds in all


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """Every test gets its own calibration cache (never the user's ~/.cache/edgec)."""
    monkeypatch.setenv(hc.CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_calibration_is_measured_once_then_read_from_the_cache(cache):
    first = hc.host_calibration(1, **TINY)
    (path,) = cache.glob("host-calibration-*.json")
    stamp = path.stat().st_mtime_ns
    again = hc.host_calibration(1, **TINY)
    assert again == first and path.stat().st_mtime_ns == stamp  # read, not re-measured
    assert first.peak_gflops["fp32"] > 0 and first.peak_gflops["w8a8"] > 0
    assert first.bandwidth_gbs > 0 and first.call_us >= 0
    for precision in ("fp32", "w8a8"):
        assert set(first.gflops[precision]) >= {"conv", "dwconv", "matmul", "attention", "norm"}
        assert all(v > 0 for v in first.gflops[precision].values())
        assert all(v >= 0 for v in first.fixed_us[precision].values())
    assert {m["name"] for m in first.micro} >= {"launch_s", "peak_fp32", "conv1x1_s_w8a8"}


def test_a_changed_key_is_measured_again(cache):
    first = hc.host_calibration(1, **TINY)
    (path,) = cache.glob("host-calibration-*.json")
    stale = json.loads(path.read_text())
    stale["key"]["onnxruntime"] = "0.0.1"  # a file left by another ORT under the same name
    stale["call_us"] = -1.0
    path.write_text(json.dumps(stale))
    fresh = hc.host_calibration(1, **TINY)
    assert fresh.key == first.key and fresh.call_us >= 0
    assert json.loads(path.read_text())["key"] == first.key  # overwritten
    # another thread count (or CPU, or benchmark version) is another file
    assert hc.cache_path(hc.calibration_key(2)) != hc.cache_path(hc.calibration_key(1))


def test_a_new_micro_benchmark_version_is_measured_again(cache, monkeypatch):
    first = hc.host_calibration(1, **TINY)
    assert first.key["micro_version"] == hc.MICRO_VERSION
    monkeypatch.setattr(hc, "MICRO_VERSION", hc.MICRO_VERSION + 1)
    again = hc.host_calibration(1, **TINY)
    assert again.key["micro_version"] == first.key["micro_version"] + 1
    assert len(list(cache.glob("host-calibration-*.json"))) == 2  # the old file is not reused


def test_calibration_has_the_int8_kernel_classes_the_estimate_prices(cache):
    calibration = hc.host_calibration(1, **TINY)
    measured = {(m["precision"], m["cls"]) for m in calibration.micro}
    for cls in ("conv", "conv1x1", "dwconv", "matmul", "attention", "elementwise"):
        assert ("w8a8", cls) in measured  # an int8 benchmark of its own, not fp32's rate
    for cls in (
        "quantize",
        "conv_rw",
        "conv1x1_rw",
        "dwconv_rw",
        "deconv",
        "deconv_rw",
        "conv_stem",
    ):
        assert ("fp32", cls) in measured
        assert calibration.gflops["w8a8"][cls] == calibration.gflops["fp32"][cls]


def test_cache_location_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv(hc.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert hc.cache_dir() == tmp_path / "xdg" / "edgec"
    monkeypatch.setenv(hc.CACHE_ENV, str(tmp_path / "mine"))
    assert hc.cache_dir() == tmp_path / "mine"


def _known_constants(threads: int = 1) -> hc.HostCalibration:
    """Round-number constants written into the cache under the real key (no measuring)."""
    classes = ("attention", "conv", "dwconv", "elementwise", "layout", "matmul", "norm")
    classes += ("other", "pool", "softmax", "conv1x1", "quantize", "conv_rw", "conv1x1_rw")
    classes += ("dwconv_rw", "deconv", "deconv_rw")
    calibration = hc.HostCalibration(
        key=hc.calibration_key(threads),
        call_us=10.0,
        fixed_us={p: dict.fromkeys(classes, 2.0) for p in ("fp32", "w8a8")},
        bandwidth_gbs=10.0,
        peak_gflops={"fp32": 100.0, "w8a8": 200.0},
        gflops={
            "fp32": {**dict.fromkeys(classes, 1.0), "conv": 50.0, "layout": 100.0},
            "w8a8": {**dict.fromkeys(classes, 1.0), "conv": 100.0, "layout": 200.0},
        },
        measured_at="by hand",
    )
    path = hc.cache_path(calibration.key)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(calibration.to_dict()))
    return calibration


def _conv_relu_mul():
    """x[1,8,16,16] → Conv(16, 3×3, pad 1) → Relu → Mul(·, x2): ORT fuses Relu, not the Mul."""
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Mul", ["r", "x2"], ["y"]),
    ]
    inputs = [value_info("x", [1, 8, 16, 16]), value_info("x2", [1, 16, 16, 16])]
    return model(nodes, inputs, [value_info("y", [1, 16, 16, 16])], [weight("w", (16, 8, 3, 3))])


def test_host_estimate_is_the_formula_on_the_cached_constants():
    _known_constants()
    result = estimate(_conv_relu_mul(), "host")
    conv, mul = result.kernels
    out = 16 * 16 * 16
    # conv: 2·MACs + Relu, 50 GFLOP/s; reads x and weights, writes r (read by the Mul)
    conv_flops = 2 * out * 8 * 9 + out
    conv_bytes = 4 * (8 * 16 * 16 + out + 16 * 8 * 9)
    expected_conv = 2e-3 + max(conv_flops / 50e9, conv_bytes / 10e9) * 1e3
    assert conv.kernel.op_types == ["Conv", "Relu"] and conv.ms == pytest.approx(expected_conv)
    # Mul: one op per element at 1 GFLOP/s vs 3 tensors at 10 GB/s
    expected_mul = 2e-3 + max(out / 1e9, 3 * out * 4 / 10e9) * 1e3
    assert mul.kernel.op_types == ["Mul"] and mul.ms == pytest.approx(expected_mul)
    assert result.total_ms == pytest.approx(expected_conv + expected_mul + 0.01)
    assert result.by_class["call"] == pytest.approx(0.01)
    data = result.to_dict()
    assert data["method"] == "estimated" and data["calibration"]["device"] == "host"
    assert "micro-benchmarks" in data["calibration"]["how"]


def test_host_estimates_are_deterministic_given_the_cache():
    _known_constants()
    first = estimate(_conv_relu_mul(), "host").to_dict()
    assert estimate(_conv_relu_mul(), "host").to_dict() == first
    qdq = _qdq_conv_graph()
    first = estimate(qdq, "host", precision="w8a8").to_dict()
    assert estimate(qdq, "host", precision="w8a8").to_dict() == first


def _quantized_input_conv() -> list:
    """x → Q → DQ → Conv(DQ(w8)) → c, the start of the QDQ graphs below."""
    return [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"]),
        helper.make_node("DequantizeLinear", ["w8", "s"], ["wd"]),
        helper.make_node("Conv", ["xd", "wd"], ["c"]),
    ]


def _qdq_initializers() -> list:
    """Scale s, uint8 zero point z = 128, int8 weights w8 [8, 8, 1, 1] of ones."""
    w8 = np.ones((8, 8, 1, 1), np.int8)
    return [
        helper.make_tensor("s", 1, [], [0.1]),
        helper.make_tensor("z", 2, [], [128]),
        helper.make_tensor("w8", 3, w8.shape, w8.flatten().tolist()),
    ]


def _qdq_conv_graph():
    """x → Q → DQ → Conv(DQ(w8), 1×1) → Q → DQ → Conv(DQ(w8)) → HardSwish: a QLinearConv,
    then a float Conv (its weight DQ runs every time) and a HardSwish."""
    nodes = [
        *_quantized_input_conv(),
        helper.make_node("QuantizeLinear", ["c", "s", "z"], ["cq"]),
        helper.make_node("DequantizeLinear", ["cq", "s", "z"], ["cd"]),
        helper.make_node("DequantizeLinear", ["w8", "s"], ["wd2"]),
        helper.make_node("Conv", ["cd", "wd2"], ["c2"]),
        helper.make_node("HardSwish", ["c2"], ["y"]),
    ]
    inits = _qdq_initializers()
    x, y = value_info("x", [1, 8, 16, 16]), value_info("y", [1, 8, 16, 16])
    return model(nodes, [x], [y], inits)


def test_w8a8_graph_kernels_take_the_constants_of_the_precision_they_run_at():
    """The QLinearConv at the int8 rate and 1-byte elements; the float Conv at the fp32
    runtime-weight rate with 4-byte elements; the HardSwish as ORT's HardSigmoid + Mul."""
    _known_constants()
    result = estimate(_qdq_conv_graph(), "host", precision="w8a8")
    by_ops = {tuple(k.kernel.op_types): k for k in result.kernels}
    out = 8 * 16 * 16
    qconv = by_ops[("Conv", "QuantizeLinear")]
    assert qconv.kernel.int8 and qconv.kernel.pointwise
    flops = 2 * out * 8 + out  # MACs, and the Q's one op per element
    moved = out + out + 64 + 2  # uint8 in and out, int8 weights, scale, zero point: 1 byte
    assert qconv.ms == pytest.approx(2e-3 + max(flops / 1e9, moved / 10e9) * 1e3)  # conv1x1: 1
    fconv = by_ops[("Conv",)]
    assert not fconv.kernel.int8 and fconv.kernel.runtime_weights
    moved = 4 * (out + 64 + out)  # the DQ'd weight is a float tensor the DQ kernel wrote
    assert fconv.ms == pytest.approx(2e-3 + max(2 * out * 8 / 1e9, moved / 10e9) * 1e3)
    hardswish = by_ops[("HardSwish",)]
    assert hardswish.ms == pytest.approx(2 * 2e-3 + max(out / 1e9, 2.5 * 4 * 2 * out / 10e9) * 1e3)


def test_w8a8_uses_int8_rates_and_byte_sizes_and_fp16_is_refused():
    _known_constants()
    fp32 = estimate(_conv_relu_mul(), "host", precision="fp32")
    w8a8 = estimate(_conv_relu_mul(), "host", precision="w8a8")
    assert w8a8.kernels[0].ms < fp32.kernels[0].ms
    with pytest.raises(UserError, match="fp16"):
        estimate(_conv_relu_mul(), "host", precision="fp16")


def test_ort_fusion_rules_on_a_hand_built_block():
    """Transpose(k) → MatMul(q, kᵀ) → Mul(scale) → Softmax → MatMul(·, v), then a GELU."""
    nodes = [
        helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["q", "kt"], ["s"]),
        helper.make_node("Mul", ["s", "scale"], ["ss"]),
        helper.make_node("Softmax", ["ss"], ["p"], axis=-1),
        helper.make_node("MatMul", ["p", "v"], ["o"]),
        helper.make_node("Div", ["o", "sqrt2"], ["d"]),
        helper.make_node("Erf", ["d"], ["e"]),
        helper.make_node("Add", ["e", "one"], ["e1"]),
        helper.make_node("Mul", ["o", "e1"], ["g"]),
        helper.make_node("Mul", ["g", "half"], ["y"]),
    ]
    inputs = [value_info(n, [2, 49, 16]) for n in "qkv"]
    scalars = [weight(n, ()) for n in ("scale", "sqrt2", "one", "half")]
    graph = model(nodes, inputs, [value_info("y", [2, 49, 16])], scalars)
    kernels = group_kernels(graph, rules=ORT_CPU)
    assert [k.op_types for k in kernels] == [
        ["MatMul", "Mul"],  # the transpose folds into FusedMatMul, the scale into its alpha
        ["Softmax"],
        ["MatMul"],
        ["Div", "Erf", "Add", "Mul", "Mul"],  # ORT's Gelu
    ]
    assert [k.cls for k in kernels] == ["attention", "softmax", "attention", "elementwise"]
    transpose, attention = group_kernels(graph)  # the accelerator rules, for contrast
    assert transpose.op_types == ["Transpose"] and attention.cls == "attention"
    assert attention.op_types[:5] == ["MatMul", "Mul", "Softmax", "MatMul", "Div"]


def test_qdq_folds_into_the_kernels_and_a_float_reader_keeps_its_dq():
    """x → Q → DQ → Conv(DQ(w8)) → Relu → Q → DQ → Conv → Add(c2, c2) → Q → DQ → Add(·, x)."""
    nodes = [
        *_quantized_input_conv(),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("QuantizeLinear", ["r", "s", "z0"], ["rq"]),
        helper.make_node("DequantizeLinear", ["rq", "s", "z0"], ["rd"]),
        helper.make_node("Conv", ["rd", "wd"], ["c2"]),
        helper.make_node("Add", ["c2", "c2"], ["y0"]),
        helper.make_node("QuantizeLinear", ["y0", "s", "z"], ["yq"]),
        helper.make_node("DequantizeLinear", ["yq", "s", "z"], ["yd"]),
        helper.make_node("Add", ["yd", "xd"], ["y"]),
    ]
    # Relu → Q(zero point 0): ORT drops the Relu
    inits = [*_qdq_initializers(), helper.make_tensor("z0", 2, [], [0])]
    graph = model(nodes, [value_info("x", [1, 8, 4, 4])], [value_info("y", [1, 8, 4, 4])], inits)
    kernels = group_kernels(graph, rules=ORT_CPU)
    assert [k.op_types for k in kernels] == [
        ["QuantizeLinear"],
        ["DequantizeLinear"],  # x: the final float Add reads it
        ["DequantizeLinear"],  # the weight: the float Conv reads it (ORT never folds a DQ)
        ["Conv", "Relu", "QuantizeLinear"],  # a QLinearConv
        ["DequantizeLinear"],
        ["Conv", "Add"],  # a float Conv: an Add, not a Q, reads it
        ["QuantizeLinear"],
        ["DequantizeLinear"],
        ["Add"],  # a float Add: its output is the graph's
    ]
    assert [k.int8 for k in kernels] == [False] * 3 + [True] + [False] * 5


def test_a_float_op_between_dequantize_and_quantize_costs_its_own_dq_and_q_kernels():
    """x → Q → DQ → HardSwish → Q → DQ → y: ORT has no integer HardSwish."""
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"]),
        helper.make_node("HardSwish", ["xd"], ["h"]),
        helper.make_node("QuantizeLinear", ["h", "s", "z"], ["hq"]),
        helper.make_node("DequantizeLinear", ["hq", "s", "z"], ["y"]),
    ]
    inits = [helper.make_tensor("s", 1, [], [0.1]), helper.make_tensor("z", 2, [], [128])]
    graph = model(nodes, [value_info("x", [1, 8, 4, 4])], [value_info("y", [1, 8, 4, 4])], inits)
    kernels = group_kernels(graph, rules=ORT_CPU)
    assert [k.op_types for k in kernels] == [
        ["QuantizeLinear"],
        ["DequantizeLinear"],
        ["HardSwish"],
        ["QuantizeLinear"],
        ["DequantizeLinear"],  # the graph output: read by no QLinear op
    ]


def test_profile_device_host_prints_the_estimate_next_to_the_measurement(tmp_path, capsys):
    _known_constants()
    path = tmp_path / "net.onnx"
    import onnx_ir as ir

    ir.save(_conv_relu_mul(), path)
    assert main(["profile", str(path), "--device", "host", "--runs", "5"]) == 0
    text = capsys.readouterr().out
    assert "ESTIMATE (not measured) for host" in text and "MEASURED on this host: p50" in text
    assert main(["profile", str(path), "--device", "host", "--runs", "5", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["method"] == "estimated" and data["measured"]["runs"] == 5
    assert data["estimate_vs_p50"] == pytest.approx(
        (data["total_ms"] - data["measured"]["p50_ms"]) / data["measured"]["p50_ms"], abs=1e-2
    )


def test_switch_cost_is_what_a_mixed_chain_takes_beyond_its_classes(cache):
    measured = hc.host_calibration(1, **TINY)
    results = [MicroResult(**{**m, "parts": tuple(map(tuple, m["parts"]))}) for m in measured.micro]
    others = [r for r in results if r.cls != "switch"]
    (mixed,) = [r for r in results if r.cls == "switch"]
    assert {cls for cls, _, _ in mixed.parts} == {"conv1x1", "dwconv", "elementwise"}
    base = hc.derive(measured.key, others)
    assert base.switch_us == 0.0  # no mixed chain, no switch cost
    predicted = base.call_us * 1e-6 + sum(
        base.fixed_us["fp32"][c] * 1e-6
        + max(f / (base.gflops["fp32"][c] * 1e9), b / (base.bandwidth_gbs * 1e9))
        for c, f, b in mixed.parts
    )
    slower = dataclasses.replace(mixed, seconds=predicted + 5e-6 * len(mixed.parts))
    assert hc.derive(measured.key, [*others, slower]).switch_us == pytest.approx(5.0, abs=0.1)
    faster = dataclasses.replace(mixed, seconds=predicted / 2)
    assert hc.derive(measured.key, [*others, faster]).switch_us == 0.0  # never negative


def test_other_calls_are_timed_in_the_same_rounds_as_the_benchmarks():
    from edgec.cost_model.host_micro import run_with

    calls = []
    results, wall, cpu = run_with(1, {"model": lambda: calls.append(1)}, scale=0.1, rounds=2)
    assert {r.name for r in results} >= {"launch_s", "switch", "conv1x1_s_w8a8"}
    assert set(wall) == set(cpu) == {"model"} and cpu["model"] >= 0
    assert len(calls) == 2 + 2 * 3  # warm-up, then rounds × calls per round
    with pytest.raises(ValueError, match="benchmark"):
        run_with(1, {"launch_s": lambda: None}, scale=0.1, rounds=2)
