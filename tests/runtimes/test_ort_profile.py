"""ONNX Runtime per-operator profile: `profile_ops`."""

from __future__ import annotations

import pytest

from edgec.runtimes import ort


def test_profile_ops_gives_per_op_and_per_node_shares(tiny, tmp_path, x, monkeypatch):
    art = ort.emit(tiny, tmp_path / "out", name="tiny")
    monkeypatch.chdir(tmp_path)
    rows = ort.profile_ops(art.path, x, runs=5)
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no trace left in the cwd
    assert rows and sum(r["share"] for r in rows) == pytest.approx(1.0, abs=1e-4)
    assert [r["us_per_run"] for r in rows] == sorted((r["us_per_run"] for r in rows), reverse=True)
    for row in rows:
        assert row["us_per_run"] >= 0 and row["calls_per_run"] >= 1
        assert row["share"] == pytest.approx(sum(n["share"] for n in row["nodes"]), abs=1e-5)
        assert all(n["provider"] == "CPUExecutionProvider" for n in row["nodes"])
    op_types = {r["op_type"] for r in rows}
    assert "Softmax" in op_types and any("Conv" in op for op in op_types)  # Relu fused in
    unoptimized = ort.profile_ops(art.path, x, runs=2, optimization="disabled")
    names = {n["name"] for r in unoptimized for n in r["nodes"]}
    assert {"conv", "relu", "GlobalAveragePool_2", "fc", "softmax"} <= names
