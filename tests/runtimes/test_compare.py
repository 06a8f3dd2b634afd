"""Output comparison: the 5e-5·max(1, |ref|) bound, cosine, and clear name/shape errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgec.runtimes.compare import compare_outputs


def _ref(scale: float = 1.0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"logits": (rng.standard_normal((2, 10)) * scale).astype(np.float32)}


def test_identical_outputs_pass():
    ref = _ref()
    result = compare_outputs(ref, {k: v.copy() for k, v in ref.items()})
    assert result.passed
    (out,) = result.outputs
    assert out.max_abs == 0.0 and out.cosine == 1.0
    assert out.allowed == pytest.approx(5e-5 * out.max_ref) and out.max_ref > 1


def test_bound_scales_with_reference_magnitude():
    ref = {"y": np.array([1000.0, -3.0, 0.5], dtype=np.float32)}
    inside = compare_outputs(ref, {"y": ref["y"] + np.float32(0.04)})  # allowed 5e-5·1000 = 0.05
    outside = compare_outputs(ref, {"y": ref["y"] + np.float32(0.06)})
    assert inside.passed
    assert not outside.passed
    assert outside.outputs[0].allowed == 0.05
    assert "max|Δ|" in outside.outputs[0].reason


def test_real_mismatch_is_caught_and_reported():
    ref = _ref()
    wrong = {"logits": ref["logits"].copy()}
    wrong["logits"][1, 3] += 0.01
    result = compare_outputs(ref, wrong)
    assert not result.passed
    out = result.outputs[0]
    assert out.max_abs > out.allowed
    assert out.cosine > 0.99  # a single-element error barely moves cosine: the bound catches it
    d = result.to_dict()
    json.dumps(d)
    assert d["passed"] is False and d["outputs"][0]["name"] == "logits"
    assert result.failures() and "logits" in result.failures()[0]


def test_missing_unexpected_and_shape_mismatch_are_named():
    ref = {"a": np.zeros((2, 3), np.float32), "b": np.zeros(4, np.float32)}
    result = compare_outputs(ref, {"a": np.zeros((3, 2), np.float32), "c": np.zeros(1)})
    assert not result.passed
    assert result.missing == ["b"] and result.unexpected == ["c"]
    (a,) = result.outputs
    assert not a.passed and "shape [3, 2]" in a.reason and "[2, 3]" in a.reason
    text = "\n".join(result.failures())
    assert "missing" in text and "'c'" not in text and "c" in text


def test_nan_in_actual_fails_but_matching_nan_does_not():
    ref = {"y": np.array([1.0, np.nan], np.float32)}
    assert compare_outputs(ref, {"y": np.array([1.0, np.nan], np.float32)}).passed
    bad = compare_outputs({"y": np.ones(2, np.float32)}, {"y": np.array([1.0, np.nan])})
    assert not bad.passed and "non-finite" in bad.outputs[0].reason


def test_min_cosine_for_quantized_outputs():
    ref = _ref()
    noisy = {"logits": ref["logits"] + np.float32(0.05)}
    assert not compare_outputs(ref, noisy).passed
    assert compare_outputs(ref, noisy, bound=None, min_cosine=0.99).passed
    assert not compare_outputs(ref, {"logits": -ref["logits"]}, bound=None, min_cosine=0.99).passed


def test_an_ill_conditioned_reference_widens_the_budget_to_its_own_fp32_noise():
    ref = {"y": np.array([100.0, -50.0], np.float32)}
    act = {"y": np.array([100.3, -50.0], np.float32)}
    strict = compare_outputs(ref, act)
    assert not strict.passed  # 0.3 > 5e-5·100
    widened = compare_outputs(ref, act, noise_floor={"y": 0.2})
    (out,) = widened.outputs
    assert widened.passed and out.allowed == 0.4 and out.fp32_noise == 0.2
    tight = compare_outputs(ref, act, noise_floor={"y": 0.1})
    assert not tight.passed and "fp32-vs-fp64 difference 0.1" in tight.failures()[0]
    # a noise floor below the bound changes nothing
    assert compare_outputs(ref, ref, noise_floor={"y": 1e-9}).outputs[0].allowed == 5e-5 * 100


def test_fp32_noise_measures_the_models_own_round_off():
    import torch

    from edgec.verification import _fp32_noise

    class Cancelling(torch.nn.Module):  # (x·1e4 + 1e8) − 1e8: fp32 keeps ~1 digit of x·1e4
        def forward(self, x):
            return (x * 1e4 + 1e8) - 1e8

    batch = np.linspace(0.1, 0.9, 8, dtype=np.float32).reshape(2, 4)
    reference = {"y": np.concatenate([Cancelling()(torch.from_numpy(s[None])).numpy()
                                      for s in batch])}  # fmt: skip
    assert _fp32_noise(Cancelling(), batch, reference)["y"] > 1.0
    assert _fp32_noise(torch.nn.Identity(), batch, {"y": batch})["y"] < 1e-6


def test_a_widened_budget_becomes_a_note_for_the_user():
    from edgec.verification import ill_conditioned_notes

    ref = {"y": np.array([100.0], np.float32)}
    act = {"y": np.array([100.3], np.float32)}
    widened = compare_outputs(ref, act, noise_floor={"y": 0.2}).to_dict()
    (note,) = ill_conditioned_notes(widened)
    assert "ill-conditioned" in note and "--verify-images" in note
    assert ill_conditioned_notes(compare_outputs(ref, ref).to_dict()) == []
