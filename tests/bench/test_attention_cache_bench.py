"""bench/attention_cache.py runs end to end (a smoke run; figures are not asserted, the
structure of what it reports is)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx_ir as ir
import onnxruntime as ort
import pytest
from onnx import helper
from support.onnx_build import model, value_info

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
sys.path.insert(0, str(BENCH))

from attention_blocks import block_graphs  # noqa: E402


@pytest.mark.slow
def test_attention_cache_bench_smoke(tmp_path):
    out = tmp_path / "attention_cache.json"
    result = subprocess.run(
        [sys.executable, str(BENCH / "attention_cache.py"), "--rounds", "2", "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(out.read_text())
    blocks = [f"stages.{s}.blocks.{b}.mixer" for s, n in enumerate((1, 2, 3)) for b in range(n)]
    assert list(report["block_nodes"]) == blocks  # EfficientViT-M0's six attention blocks
    medians = report["median_ms"]
    assert set(medians["model"]) == {"default", "no_attention"}
    assert set(medians["cold"]) == set(medians["warm"]) == set(blocks)
    assert all(v > 0 for kind in medians.values() for v in kind.values())
    assert set(report["summary"]) == {
        "blocks_warm_ms",
        "blocks_cold_ms",
        "attention_in_model_ms",
        "in_model_above_warm_ms",
        "refill_us_per_node",
    }
    assert "| stages.0.blocks.0.mixer |" in result.stdout


def test_block_graphs_cut_each_block_with_its_boundary(tmp_path):
    """Two labelled blocks in a chain: each cut-out reads what it takes from outside and
    returns what is read after it, and computes what it computed inside the graph."""
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="a.mixer|relu"),
        helper.make_node("Neg", ["a"], ["b"], name="a.mixer|neg"),
        helper.make_node("Add", ["b", "x"], ["c"], name="other|add"),
        helper.make_node("Sigmoid", ["c"], ["d"], name="b.mixer|sigmoid"),
    ]
    path = tmp_path / "model.onnx"
    ir.save(model(nodes, [value_info("x", [2, 3])], [value_info("d", [2, 3])]), path)
    cut = tmp_path / "cut"
    cut.mkdir()
    files = block_graphs(path, cut)
    assert sorted(files) == ["a.mixer", "b.mixer"]
    first, second = (ir.load(files[b]).graph for b in ("a.mixer", "b.mixer"))
    assert [v.name for v in first.inputs] == ["x"] and [v.name for v in first.outputs] == ["b"]
    assert [v.name for v in second.inputs] == ["c"] and [v.name for v in second.outputs] == ["d"]
    x = np.array([[-1.0, 2.0, -3.0], [4.0, -5.0, 6.0]], np.float32)
    session = ort.InferenceSession(str(files["a.mixer"]), providers=["CPUExecutionProvider"])
    np.testing.assert_array_equal(session.run(None, {"x": x})[0], -np.maximum(x, 0))
