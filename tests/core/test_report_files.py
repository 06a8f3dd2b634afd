"""report.json and the PNG charts a compile writes beside report.md."""

import json

import numpy as np
import onnx_ir as ir
import pytest
from PIL import Image

from edgec.report import _charts, _devices
from edgec.report_charts import Bar, bar_chart, save_png
from edgec.report_data import (
    BY_DEVICE_PNG,
    BY_OP_PNG,
    by_op,
    chart_names,
    device_estimates,
    write_report_files,
)

MEASURED = {
    "method": "measured",
    "p50_ms": 2.0,
    "p90_ms": 2.5,
    "per_op": [
        {"op_type": "Conv", "share": 0.75, "us_per_run": 900.0, "nodes": []},
        {"op_type": "Softmax", "share": 0.25, "us_per_run": 300.0, "nodes": []},
    ],
}
DEVICES = [
    {"device": "host", "runtime": "onnxruntime", "precision": "fp32", "estimate_ms": 1.8,
     "range_ms": [1.5, 2.1], "expected_error_pct": 15.0, "measured_ms": 2.0},
    {"device": "pixel-8", "runtime": "tflite", "precision": "fp16", "estimate_ms": None,
     "reason": "no peak"},
]  # fmt: skip


def manifest(latency, devices=()):
    return {
        "model": {"name": "tiny"},
        "target": {"name": "host"},
        "precision": {"realised": "fp32"},
        "latency": latency,
        **({"device_estimates": list(devices)} if devices else {}),
    }


def test_measured_latency_is_split_by_the_profiles_shares():
    source, rows = by_op(MEASURED)
    assert rows == [("Conv", 1.5), ("Softmax", 0.5)] and source.startswith("measured")


def test_estimated_and_missing_latency():
    _, rows = by_op({"method": "estimated", "by_class_ms": {"conv": 1.0, "layout": 0.2}})
    assert rows == [("conv", 1.0), ("layout", 0.2)]
    source, rows = by_op({"method": "none", "reason": "skipped with --no-measure"})
    assert rows == [] and "skipped with --no-measure" in source


def test_files_written_and_named_in_the_report(tmp_path):
    m = manifest(MEASURED, DEVICES)
    write_report_files(tmp_path, m)
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["charts"] == sorted([BY_OP_PNG, BY_DEVICE_PNG]) == sorted(chart_names(m))
    assert data["by_op"]["ms"] == {"Conv": 1.5, "Softmax": 0.5}
    assert [d["device"] for d in data["by_device"]] == ["host", "pixel-8"]
    for name in data["charts"]:
        with Image.open(tmp_path / name) as image:
            assert image.format == "PNG" and image.width == 960
    lines = "\n".join(_charts(m) + _devices(DEVICES))
    assert f"![{BY_OP_PNG}]({BY_OP_PNG})" in lines
    assert "| host | fp32 | 1.800 | ±15 % | 2.000 |" in lines
    assert "| pixel-8 | fp16 | – | no peak | – |" in lines


def test_nothing_to_draw_leaves_charts_out_and_says_why(tmp_path):
    m = manifest({"method": "none", "reason": "skipped with --no-measure"})
    write_report_files(tmp_path, m)
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["charts"] == [] and not list(tmp_path.glob("*.png"))
    assert "skipped with --no-measure" in data["by_op"]["source"]


def test_charts_are_byte_identical_for_the_same_rows(tmp_path):
    bars = [Bar("a", 1.0, low=0.8, high=1.2, measured=1.1, note="±20 %"), Bar("b", 0.25)]
    save_png(bar_chart("t", bars), tmp_path / "one.png")
    save_png(bar_chart("t", bars), tmp_path / "two.png")
    assert (tmp_path / "one.png").read_bytes() == (tmp_path / "two.png").read_bytes()


def _matmul_model() -> ir.Model:
    """A 256×256 MatMul: large enough that its fp32 and int8 estimates differ beyond rounding
    (at 64×64 both were the fixed cost of a call, 0.034 ms, and the comparison flaked)."""
    x = ir.val("x", ir.DataType.FLOAT, ir.Shape([1, 256]))
    w = ir.tensor(np.ones((256, 256), np.float32), name="w")
    node = ir.node("MatMul", [x, ir.Value(name="w", const_value=w)])
    graph = ir.Graph(
        [x], node.outputs, nodes=[node], initializers=[node.inputs[1]], opset_imports={"": 18}
    )
    return ir.Model(graph, ir_version=10)


@pytest.mark.slow
def test_device_estimates_price_every_profile(monkeypatch, tmp_path):
    monkeypatch.setenv("EDGEC_CACHE_DIR", str(tmp_path))
    rows = device_estimates(_matmul_model(), measured_ms=0.5)
    names = [r["device"] for r in rows]
    assert names == sorted(names) and "iphone-15-pro" in names and "host" in names
    host = next(r for r in rows if r["device"] == "host")
    assert host["measured_ms"] == 0.5
    assert all(r["estimate_ms"] is None or r["estimate_ms"] > 0 for r in rows)
    assert all("reason" in r for r in rows if r["estimate_ms"] is None)
    # the measured row is priced at what was measured, beside its measurement
    quantized = {r["device"]: r for r in device_estimates(_matmul_model(), 0.5, None, "w8a8")}
    assert quantized["host"]["precision"] == "w8a8" and quantized["host"]["measured_ms"] == 0.5
    assert quantized["host"]["estimate_ms"] != host["estimate_ms"]
    assert quantized["iphone-15-pro"] == next(r for r in rows if r["device"] == "iphone-15-pro")
    int_only = {r["device"]: r for r in device_estimates(_matmul_model(), 0.5, None, "int-only")}
    assert int_only["host"]["estimate_ms"] is None and "int-only" in int_only["host"]["reason"]
    # a measurement outside the estimate's expected error says why and what to do
    assert (
        "micro-benchmarks on this CPU" in host["calibration"]
        and str(tmp_path) in host["calibration"]
    )
    for factor, noted in ((1.0, False), (3.0, True)):
        rows = device_estimates(_matmul_model(), measured_ms=factor * host["estimate_ms"])
        row = next(r for r in rows if r["device"] == "host")
        assert ("note" in row) == noted
    assert (
        row["note"].startswith("measured +200 % off the estimate") and str(tmp_path) in row["note"]
    )


def test_the_targets_own_estimate_is_reused_for_its_row(monkeypatch):
    """A compile for an estimated target already priced it at its precision: that row takes
    the compile's figure instead of a second estimate; other rows and precisions are priced."""
    from edgec import device_profile
    from edgec.estimate import estimate

    names = ("iphone-15-pro", "jetson-orin-nano")  # estimated targets: no host benchmarks
    profiles = {n: p for n, p in device_profile.all_profiles().items() if n in names}
    monkeypatch.setattr(device_profile, "all_profiles", lambda: profiles)
    model = _matmul_model()
    fresh = device_estimates(model)
    target = estimate(model, profiles["iphone-15-pro"], precision="fp16").to_dict()
    assert device_estimates(model, target_latency=target) == fresh  # the same figures

    sentinel = {**target, "total_ms": 99.0}  # only a reused record can carry this figure
    rows = {r["device"]: r for r in device_estimates(model, target_latency=sentinel)}
    assert rows["iphone-15-pro"]["estimate_ms"] == 99.0
    assert rows["jetson-orin-nano"] == fresh[1]
    for other in ({**sentinel, "precision": "w8a8"}, {**sentinel, "method": "measured"}):
        assert device_estimates(model, target_latency=other) == fresh
