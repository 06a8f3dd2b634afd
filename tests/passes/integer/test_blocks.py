"""Each integer building block: bit-exact against the numpy reference of the I-ViT formula, and
close to the float op it replaces over its input range (property tests over random scales)."""

import numpy as np
import pytest
import torch
from block_harness import run_block
from int_reference import (
    dyadic_requant,
    hardswish,
    l2_normalise,
    layernorm,
    shiftgelu,
    shiftmax,
    sigmoid,
)

from edgec.passes.integer import activations, arith, linear
from edgec.passes.integer import layernorm as iln
from edgec.passes.integer import shiftgelu as igelu
from edgec.passes.integer import shiftmax as ismax

SEEDS = range(4)


def _ints(rng, shape, bits):
    limit = 2 ** (bits - 1) - 1
    return rng.integers(-limit, limit + 1, shape)


@pytest.mark.parametrize("seed", SEEDS)
def test_requantize_matches_dyadic_reference_and_real_rescale(seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(-(2**31) + 1, 2**31 - 1, (64,))
    s_in, s_out = 10 ** rng.uniform(-6, -3), 10 ** rng.uniform(-3, 0)
    y, out = run_block(lambda em, a: arith.requantize(em, a, s_out, 16), [(x, s_in, 32)])
    np.testing.assert_array_equal(y, dyadic_requant(x, s_in / s_out, 16))
    real = np.clip(np.round(x * s_in / s_out), -32767, 32767)
    assert np.abs(y - real).max() <= 1 and out.bits == 16


@pytest.mark.parametrize("span", [2.0**4, 2.0**20])
def test_per_channel_requantize_with_a_shared_or_an_own_shift(span):
    """Gains spanning ≤ 2^12 share one shift (one Clip); wider ones keep a shift each."""
    rng = np.random.default_rng(5)
    x = rng.integers(-(2**31) + 1, 2**31 - 1, (2, 6, 5))
    gain = np.geomspace(1 / span, 1, 6).reshape(6, 1)
    s_in, s_out = 1e-5, 1e-2  # ratios 1e-3 … 1e-9: some saturate, all above 2^-31
    y, _ = run_block(lambda em, a: arith.requantize(em, a, s_out, 16, gain=gain), [(x, s_in, 32)])
    np.testing.assert_array_equal(y, dyadic_requant(x, s_in * gain / s_out, 16))
    assert (np.ndim(arith.dyadic(s_in * gain / s_out)[1]) == 0) == (span <= 2**12)
    real = np.clip(np.round(x * s_in * gain / s_out), -32767, 32767)
    assert np.abs(y - real).max() <= 1


def test_dyadic_keeps_31_bit_mantissa():
    ratio = np.array([1e-9, 0.3, 1.0, 1234.5])
    b, c = arith.dyadic(ratio)
    np.testing.assert_allclose(b / 2.0**c, ratio, rtol=2**-30)
    with pytest.raises(ValueError, match="2\\^31"):
        arith.dyadic(2.0**32)


def test_residual_add_rescales_both_branches():
    rng = np.random.default_rng(1)
    a, b = _ints(rng, (4, 16), 16), _ints(rng, (4, 16), 16)
    y, _ = run_block(
        lambda em, p, q: arith.add(em, p, q, 0.02, 16), [(a, 0.01, 16), (b, 0.003, 16)]
    )
    expected = dyadic_requant(a, 0.01 / 0.02, 64) + dyadic_requant(b, 0.003 / 0.02, 64)
    np.testing.assert_array_equal(y, np.clip(expected, -32767, 32767))
    assert np.abs(y * 0.02 - (a * 0.01 + b * 0.003)).max() <= 0.02 + 1e-9  # two half-LSB roundings


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("bits", [8, 16])
def test_shiftmax(seed, bits):
    rng = np.random.default_rng(seed)
    span = rng.uniform(2, 30)  # logits in ±span
    scale = span / (2 ** (bits - 1) - 1)
    x = _ints(rng, (3, 5, 49), bits)
    y, out = run_block(lambda em, a: ismax.shiftmax(em, a, -1, 49), [(x, scale, bits)])
    np.testing.assert_array_equal(y, shiftmax(x, scale))
    assert out.scale == 2**-7 and y.min() >= 0 and y.max() <= 127
    real = torch.softmax(torch.tensor(x * scale), -1).numpy()
    assert np.abs(y * out.scale - real).max() < 0.06  # I-ViT's linear 2^t: ≈ 4 % + 1 LSB


def test_shiftmax_long_rows_keep_the_sum_below_2_31():
    rng = np.random.default_rng(0)
    x = _ints(rng, (2, 1024), 16)
    scale = 4.0 / 32767  # fine scale, long rows
    y, _ = run_block(lambda em, a: ismax.shiftmax(em, a, -1, 1024), [(x, scale, 16)])
    np.testing.assert_array_equal(y, shiftmax(x, scale))
    real = torch.softmax(torch.tensor(x * scale), -1).numpy()
    assert np.abs(y * 2**-7 - real).max() < 0.01


@pytest.mark.parametrize("seed", SEEDS)
def test_shiftgelu(seed):
    rng = np.random.default_rng(seed)
    span = rng.uniform(3, 10)
    scale = span / 127
    x = _ints(rng, (4, 64), 8)
    y, out = run_block(lambda em, a: igelu.shiftgelu(em, a), [(x, scale, 8)])
    np.testing.assert_array_equal(y, shiftgelu(x, scale))
    real = torch.nn.functional.gelu(torch.tensor(x * scale)).numpy()
    # x·σ(1.702x) itself is within 0.02 of GELU; the integer sigmoid adds a few %
    assert np.abs(y * out.scale - real).max() < 0.01 * span + 0.03


@pytest.mark.parametrize("seed", SEEDS)
def test_layernorm(seed):
    rng = np.random.default_rng(seed)
    c = 48
    x = _ints(rng, (3, 7, c), 16) + rng.integers(-2000, 2000, (3, 7, 1))
    scale = 10 ** rng.uniform(-4, -2)
    gamma, beta = rng.uniform(-2, 2, c), rng.uniform(-1, 1, c)
    out_scale = 8 / 32767
    y, _ = run_block(
        lambda em, a: iln.layernorm(em, a, [-1], c, gamma, beta, out_scale, 16),
        [(np.clip(x, -32767, 32767), scale, 16)],
    )
    xi = np.clip(x, -32767, 32767)
    np.testing.assert_array_equal(y, layernorm(xi, gamma, beta, scale, out_scale, 16))
    real = torch.nn.functional.layer_norm(
        torch.tensor(xi * scale), (c,), torch.tensor(gamma), torch.tensor(beta), eps=0
    ).numpy()
    assert np.abs(y * out_scale - real).max() < 2e-3


def test_layernorm_constant_row_is_beta_not_a_division_by_zero():
    x = np.full((2, 8), 1234)
    beta = np.linspace(-1, 1, 8)
    y, _ = run_block(
        lambda em, a: iln.layernorm(em, a, [-1], 8, np.ones(8), beta, 1 / 127, 8),
        [(x, 0.01, 16)],
    )
    np.testing.assert_array_equal(y, np.broadcast_to(np.round(beta * 127), (2, 8)))


@pytest.mark.parametrize("seed", SEEDS)
def test_hardswish_relu_clip(seed):
    rng = np.random.default_rng(seed)
    scale = rng.uniform(4, 12) / 32767
    x = _ints(rng, (5, 33), 16)
    y, out = run_block(lambda em, a: activations.hardswish(em, a), [(x, scale, 16)])
    np.testing.assert_array_equal(y, hardswish(x, scale))
    real = torch.nn.functional.hardswish(torch.tensor(x * scale)).numpy()
    assert np.abs(y * out.scale - real).max() < 1e-3
    y, _ = run_block(lambda em, a: activations.relu(em, a), [(x, scale, 16)])
    np.testing.assert_array_equal(y, np.maximum(x, 0))
    y, _ = run_block(lambda em, a: activations.clip(em, a, 0.0, 6.0), [(x, scale, 16)])
    np.testing.assert_array_equal(y, np.clip(x, 0, round(6 / scale)))


@pytest.mark.parametrize("seed", SEEDS)
def test_linear_and_conv_against_float(seed):
    rng = np.random.default_rng(seed)
    x = _ints(rng, (2, 5, 32), 8)
    w, bias = rng.standard_normal((32, 24)), rng.standard_normal(24)
    s_x, s_out = 0.05, 0.1
    y, _ = run_block(lambda em, a: linear.linear(em, a, w, bias, s_out, 16), [(x, s_x, 8)])
    real = x * s_x @ w + bias
    assert np.abs(y * s_out - real).max() < 0.02 * np.abs(real).max() + s_out
    # exact int32 accumulation: integer weights on the weight grid round-trip
    xi = _ints(rng, (1, 8, 6, 6), 8)
    wc = rng.integers(-127, 128, (8, 1, 3, 3)).astype(np.float64)
    wc[:, 0, 0, 0] = 127  # per-channel scale exactly 1
    conv = {"group": 8, "pads": [1, 1, 1, 1]}
    y, _ = run_block(lambda em, a: linear.linear(em, a, wc, None, 1.0, 32, conv), [(xi, 1.0, 8)])
    expected = torch.nn.functional.conv2d(
        torch.tensor(xi, dtype=torch.float64), torch.tensor(wc), padding=1, groups=8
    ).numpy()
    np.testing.assert_array_equal(y, expected)


def test_activation_matmul_is_exact_int32():
    rng = np.random.default_rng(3)
    a, b = _ints(rng, (2, 3, 9, 64), 8), _ints(rng, (2, 3, 64, 9), 8)
    y, _ = run_block(lambda em, p, q: linear.matmul(em, p, q, 1.0, 32), [(a, 1.0, 8), (b, 1.0, 8)])
    np.testing.assert_array_equal(y, a.astype(np.int64) @ b)


def test_exp_bits_follows_ivit_until_the_sum_would_overflow():
    assert ismax.exp_bits(0.1, 197, 15) == 15
    assert ismax.exp_bits(1e-6, 4096, 15) == 14  # 4096 · 10^6 · 2^14 ≈ 2^46
    with pytest.raises(ValueError, match="too coarse"):
        ismax.exp_bits(1e-30, 2, 23)


@pytest.mark.parametrize("seed", SEEDS)
def test_sigmoid_elementwise(seed):
    rng = np.random.default_rng(seed)
    scale = rng.uniform(4, 12) / 32767
    x = _ints(rng, (3, 40), 16)
    y, out = run_block(lambda em, a: igelu.sigmoid(em, a), [(x, scale, 16)])
    np.testing.assert_array_equal(y, sigmoid(x, scale))
    real = torch.sigmoid(torch.tensor(x * scale)).numpy()
    assert np.abs(y * out.scale - real).max() < 0.025  # linear 2^t (~1.3 %) + 1 LSB of 2^-7


@pytest.mark.parametrize("seed", SEEDS)
def test_l2_normalisation(seed):
    """x / ‖x‖ (Segmenter's mask decoder) for norms over the square root's range."""
    rng = np.random.default_rng(seed)
    x = _ints(rng, (3, 7, 48), 16) >> rng.integers(0, 8, (3, 7, 1))  # ‖x‖ ≈ 2^11…2^18
    y, out = run_block(lambda em, a: iln.l2_normalised(em, a, -1), [(x, 1e-3, 16)])
    np.testing.assert_array_equal(y, l2_normalise(x))
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    assert out.scale == 2**-16  # the root is good to 1 LSB of ‖x‖, the result floors to 2^-16
    assert np.all(np.abs(y * out.scale - x / norm) < 1 / norm + 2**-15)


@pytest.mark.parametrize("seed", SEEDS)
def test_shiftmax_with_a_calibrated_finer_output_scale(seed):
    """166 near-uniform logits (Segmenter's decoder): most probabilities are below I-ViT's
    2^-7 step, so the output scale is 2^-12; a probability past 127 LSB saturates."""
    rng = np.random.default_rng(seed)
    scale = 2.0 / 32767
    x = _ints(rng, (2, 4, 166), 16)
    y, out = run_block(lambda em, a: ismax.shiftmax(em, a, -1, 166, fraction=12), [(x, scale, 16)])
    np.testing.assert_array_equal(y, shiftmax(x, scale, fraction=12))
    real = torch.softmax(torch.tensor(x * scale), -1).numpy()
    assert out.scale == 2**-12 and y.max() <= 127
    assert np.abs(y * out.scale - real).max() < 0.1 * real.max() + 2**-12
    coarse, _ = run_block(lambda em, a: ismax.shiftmax(em, a, -1, 166), [(x, scale, 16)])
    fine_error = np.abs(y * out.scale - real).mean()
    assert np.abs(coarse * 2**-7 - real).mean() > 5 * fine_error  # I-ViT's 2^-7 output
