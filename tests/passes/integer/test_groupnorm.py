"""Integer GroupNorm / InstanceNorm: bit-exact against the numpy reference of I-LayerNorm's
formulas applied per group, close to torch's group_norm over the input range the integer
square root covers; torch's exported GroupNorm chain and a plain InstanceNormalization lower
to integer-only graphs."""

import numpy as np
import pytest
import torch
from block_harness import run_block
from int_reference import groupnorm

from edgec.exporters.export import export_onnx
from edgec.passes.integer import groupnorm as ign
from edgec.passes.integer.checker import check_int_only

OUT_SCALE = 8 / 32767


def _grouped(rng, shape, groups, sigma):
    """int16-range x with per-group offsets and standard deviation `sigma` (LSB)."""
    n, c = shape[:2]
    offset = rng.uniform(-2, 2, (n, groups, 1)).repeat(c // groups, 1) * sigma
    noise = rng.standard_normal(shape) * sigma
    return np.clip(np.round(noise + offset.reshape(n, c, *[1] * (len(shape) - 2))), -32767, 32767)


def _bound(x, groups, gamma):
    """μ rounds to ½ LSB (I-LayerNorm), plus the root's and the output's rounding."""
    std = x.reshape(x.shape[0], groups, -1).std(axis=-1).min()
    return np.abs(gamma).max() * (0.6 / std + 2**-9) + OUT_SCALE


def _float(x, scale, groups, gamma, beta):
    return torch.nn.functional.group_norm(
        torch.tensor(x * scale), groups, torch.tensor(gamma), torch.tensor(beta), eps=0
    ).numpy()


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("groups", [1, 2, 8])
def test_groupnorm_matches_reference_and_float(seed, groups):
    rng = np.random.default_rng(seed)
    shape = (2, 8, 5, 6)
    x = _grouped(rng, shape, groups, 2 ** rng.uniform(5, 13))
    scale = 10 ** rng.uniform(-4, -2)
    gamma, beta = rng.uniform(-2, 2, 8), rng.uniform(-1, 1, 8)
    y, out = run_block(
        lambda em, a: ign.groupnorm(em, a, shape, groups, gamma, beta, OUT_SCALE, 16),
        [(x, scale, 16)],
    )
    np.testing.assert_array_equal(y, groupnorm(x, groups, gamma, beta, OUT_SCALE, 16))
    assert out.scale == OUT_SCALE and out.bits == 16
    assert np.abs(y * OUT_SCALE - _float(x, scale, groups, gamma, beta)).max() < _bound(
        x, groups, gamma
    )


def test_groupnorm_over_the_square_root_range_of_shvit():
    """SHViT-S1's pre-attention GroupNorm(1, 48) at 7×7 (L = 2352): from a standard deviation
    of 4 LSB (√Σy² ≈ 2^7.6, the low end of the 10 Newton steps) to 2^14 LSB."""
    rng = np.random.default_rng(7)
    shape = (1, 48, 7, 7)
    gamma, beta = rng.uniform(0.5, 1.5, 48), rng.uniform(-0.5, 0.5, 48)
    for log_sigma in np.arange(2, 14.5, 1.5):
        x = _grouped(rng, shape, 1, 2.0**log_sigma)
        y, _ = run_block(
            lambda em, a: ign.groupnorm(em, a, shape, 1, gamma, beta, OUT_SCALE, 16),
            [(x, 1e-3, 16)],
        )
        error = np.abs(y * OUT_SCALE - _float(x, 1e-3, 1, gamma, beta)).max()
        assert error < _bound(x, 1, gamma), (log_sigma, error)


def test_constant_group_gives_beta_not_a_division_by_zero():
    shape = (1, 4, 3, 3)
    x = np.full(shape, 777)
    beta = np.array([0.5, -0.25, 1.0, 0.0])
    y, _ = run_block(
        lambda em, a: ign.groupnorm(em, a, shape, 2, np.ones(4), beta, 1 / 127, 8),
        [(x, 0.01, 16)],
    )
    np.testing.assert_array_equal(y, np.broadcast_to(np.round(beta * 127)[:, None, None], shape))


class _Norms(torch.nn.Module):
    """Conv → GroupNorm(1) → Conv → GroupNorm(2) → InstanceNorm (affine): every export form."""

    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.gn1 = torch.nn.GroupNorm(1, 8)
        self.conv2 = torch.nn.Conv2d(8, 8, 1)
        self.gn2 = torch.nn.GroupNorm(2, 8)
        self.inorm = torch.nn.InstanceNorm2d(8, affine=True)

    def forward(self, x):
        return self.inorm(self.gn2(self.conv2(self.gn1(self.conv1(x)))))


def test_exported_norms_lower_to_integer_only(helpers, tmp_path):
    torch.manual_seed(0)
    module = _Norms().eval()
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.3 * torch.randn_like(p))
    model = export_onnx(module, (3, 12, 12))
    float_model = helpers.clone(model)
    ops = helpers.op_types(model)
    assert ops.count("InstanceNormalization") == 3 and "Mul" in ops  # GroupNorm's γ
    rng = np.random.default_rng(0)
    data = rng.standard_normal((24, 3, 12, 12)).astype(np.float32)
    np.save(tmp_path / "calib.npy", data[:16])
    helpers.run_pass("integer::int_only", model, data=str(tmp_path / "calib.npy"), count=16)
    report = check_int_only(model)
    assert report.int_only, report.text()
    assert "Mul" in report.ops and report.ops["ReduceSum"] == 6  # Σx, Σy² per norm, γ folded
    name = model.graph.inputs[0].name
    for x in data[16:]:  # unseen samples: a value past the calibrated range clips, so no max
        ref = helpers.run_ort(float_model, {name: x[None]})[0].ravel()
        got = helpers.run_ort(model, {name: x[None]})[0].ravel()
        assert ref @ got / np.linalg.norm(ref) / np.linalg.norm(got) > 0.999
        assert np.percentile(np.abs(got - ref), 99) < 0.02 * np.abs(ref).max()
