"""The benchmark scripts still run end to end (a smoke run; figures are not asserted)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_ort_fp32_bench_smoke(tmp_path):
    out = tmp_path / "ort_fp32.json"
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "ort_fp32.py"),
            "--models",
            "efficientvit_m0",
            "--threads",
            "1",
            "--rounds",
            "10",
            "--per-round",
            "10",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(out.read_text())
    (row,) = report["rows"]
    assert set(row["p50_ms"]) == {"torch", "ort", "onnxslim", "edgec"}
    assert set(row["cpu_p50_ms"]) == set(row["p50_ms"])  # thread CPU time at 1 thread
    assert row["speedup_vs_best_onnx_cpu"] > 0
    assert all(diff < 1e-3 for diff in row["max_abs_diff_vs_torch"].values())
    assert "| efficientvit_m0 | 1 |" in result.stdout
