"""The shipped calibration is exactly what bench/estimator.py computes from the anchors."""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import estimator  # noqa: E402


def test_shipped_calibration_is_reproduced_by_the_bench(tmp_path):
    out = tmp_path / "estimator.json"
    assert estimator.main(["--out", str(out)]) == 0
    result = json.loads(out.read_text())
    shipped = json.loads((ROOT / "devices" / "latency_calibration.json").read_text())
    assert result["calibration"] == shipped["devices"]
    assert result["priors_only_error"] == shipped["priors_only_error"]
    # every held-out prediction is scored, and the skipped records say why
    assert result["loo_rows"] and all(r["ape_pct"] >= 0 for r in result["loo_rows"])
    assert all(s["why"] for s in result["skipped"])
