"""tools/official_compare: the parts that need no official code (weights, diff bookkeeping, CLI
errors). The comparisons themselves import the official repositories and are run by hand
(docs/models.md, "Checked against the official code")."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

TOOLS = Path(__file__).resolve().parents[2] / "tools" / "official_compare"
sys.path.insert(0, str(TOOLS))

import compare_support as cs  # noqa: E402


def reference_state() -> dict[str, torch.Tensor]:
    return {
        "block.norm.weight": torch.ones(8),
        "block.fc.weight": torch.zeros(16, 8),
        "block.fc.bias": torch.zeros(16),
        "fuser.layers.0.gamma": torch.full((8,), 1e-6),
        "bn.running_var": torch.ones(4),
        "bn.num_batches_tracked": torch.tensor(3),
        "pos_embed": torch.zeros(1, 5, 8),
    }


def test_seeded_state_dict_is_deterministic_and_non_trivial():
    ref = reference_state()
    a, b = cs.seeded_state_dict(ref, 0), cs.seeded_state_dict(ref, 0)
    assert list(a) == list(ref)
    for key in ref:
        assert a[key].shape == ref[key].shape and a[key].dtype == ref[key].dtype
        assert torch.equal(a[key], b[key])
    assert a["bn.num_batches_tracked"].item() == 3  # integer buffers kept
    assert (a["bn.running_var"] >= 0.5).all()
    assert a["fuser.layers.0.gamma"].abs().mean() > 0.1  # layer scales make their branch count
    assert a["block.fc.bias"].abs().mean() > 0.1 and a["pos_embed"].abs().mean() > 0.1
    assert 0.2 < a["block.fc.weight"].std() * 8**0.5 < 5  # ~N(0, 1/fan_in)
    assert not torch.equal(a["block.fc.weight"], cs.seeded_state_dict(ref, 1)["block.fc.weight"])


def test_comparison_rows_controls_and_json(tmp_path):
    cmp = cs.Comparison("toy", rtol=1e-4)
    x = torch.randn(2, 3)
    cmp.compare("same", {"a": x, "b": [x, x]}, {"a": x.clone(), "b": [x, x + 1e-7]})
    cmp.compare("control", x, x + 1, expect_equal=False)
    assert cmp.passed and len(cmp.rows) == 4
    assert cmp.rows[-1]["control"] == "expected to differ"
    out = tmp_path / "r.json"
    assert cmp.write(out, 0.0, {"k": 1}) == 0
    report = json.loads(out.read_text())
    assert report["failed"] == [] and report["worst_abs_diff"] < 1e-6  # controls not counted

    cmp.compare("drift", x, x + 1e-2)
    cmp.compare("shape", x, x[:1])
    cmp.compare("nesting", (x, x), (x,))
    cmp.compare("control equal", x, x, expect_equal=False)
    assert not cmp.passed
    assert cmp.write(out, 0.0, {}) == 1
    failed = json.loads(out.read_text())["failed"]
    assert failed == ["drift", "shape", "nesting", "control equal"]


def test_require_names_what_is_missing(tmp_path):
    (tmp_path / "segm" / "model").mkdir(parents=True)
    (tmp_path / "segm" / "model" / "segmenter.py").write_text("")
    assert cs.require(tmp_path, "segm/model/segmenter.py") == tmp_path.resolve()
    with pytest.raises(SystemExit, match=r"has no architectures/segformer3d\.py"):
        cs.require(tmp_path, "architectures/segformer3d.py")


def test_script_rejects_a_tree_without_the_official_code(tmp_path):
    result = subprocess.run(
        [sys.executable, str(TOOLS / "segmenter.py"), "--official-repo", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "give the official repository's working tree" in result.stderr
