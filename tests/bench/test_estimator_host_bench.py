"""bench/estimator_host.py's summaries: error per precision and per family, signed (bias)."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import estimator_host  # noqa: E402


def _row(model, precision, estimate_ms, cpu_ms):
    return {
        "model": model,
        "family": estimator_host.family(model),
        "precision": precision,
        "estimate_ms": estimate_ms,
        "cpu_ms": cpu_ms,
        "ape_cpu": abs(100 * (estimate_ms - cpu_ms) / cpu_ms),
    }


def test_groups_show_a_systematic_bias_that_the_overall_median_hides():
    rows = [
        _row("lowformer_b0_224x224", "w8a8", 7.5, 10.0),  # -25 %
        _row("lowformer_b1_224x224", "w8a8", 15.0, 20.0),  # -25 %
        _row("lowformer_b0_224x224", "fp32", 10.2, 10.0),  # +2 %
        _row("efficientvit_m0_224x224", "w8a8", 4.0, 4.0),  # 0 %
    ]
    groups = estimator_host._by_group(rows, "cpu")
    assert groups["w8a8"]["n"] == 3 and groups["w8a8"]["median_signed_pct"] == pytest.approx(-25)
    assert groups["lowformer w8a8"] == {"median_pct": 25.0, "median_signed_pct": -25.0, "n": 2}
    assert groups["efficientvit"]["median_signed_pct"] == 0.0
    assert groups["fp32"]["median_signed_pct"] == pytest.approx(2.0)
