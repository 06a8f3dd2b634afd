"""The shipped calibration is exactly what bench/estimator.py computes from the anchors."""

import json
import sys
import tarfile
from pathlib import Path

import pytest

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


def _apple_anchors(tmp_path, scale_family=None):
    """The public anchors of the Core ML group's phones; one family's values × 10 if asked."""
    data = json.loads(estimator.ANCHORS.read_text())
    keep = {"iphone-12", "iphone-12-pro", "iphone-15-pro"}
    data["records"] = [r for r in data["records"] if r["device"] in keep]
    for r in data["records"]:
        if r["family"] == scale_family:
            r["value"] *= 10
    path = tmp_path / f"anchors_{scale_family}.json"
    path.write_text(json.dumps(data))
    return path


def test_a_held_out_family_is_unseen_by_every_constant_that_predicts_it(tmp_path):
    """Leave-one-family-out stays honest through the runtime group's pooled fit: multiplying
    one family's measurements by 10 on every phone leaves that family's held-out predictions
    exactly as they were (the pooled constants never saw them), while its measurements move."""
    graphs = tmp_path / "graphs"
    with tarfile.open(estimator.GRAPHS) as tar:
        tar.extractall(graphs, filter="data")
    base = estimator.validate(graphs, _apple_anchors(tmp_path))
    moved = estimator.validate(graphs, _apple_anchors(tmp_path, "ResNet"))
    before, after = (
        {r["id"]: r for r in result["loo_rows"] if r["family"] == "ResNet"}
        for result in (base, moved)
    )
    assert before and before.keys() == after.keys()
    for key, row in before.items():
        assert after[key]["predicted_s"] == row["predicted_s"]
        assert after[key]["measured_s"] == pytest.approx(10 * row["measured_s"])
    # iphone-15-pro (2 families) is in a runtime group with iphone-12, and says so
    how = base["calibration"]["iphone-15-pro"]["how"]
    assert "coreml/npu runtime group" in how
