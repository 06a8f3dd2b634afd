"""numpy references of the I-ViT integer formulas (models-b.md §3.3), written from the paper's
equations with numpy's floor semantics (`>>` on int64 is floor division by a power of two), not
from edgec's builders — the ONNX graphs must match them bit for bit."""

from __future__ import annotations

import math

import numpy as np


def _dyadic(ratio):
    """b / 2^c ≈ ratio, 31-bit mantissa; per-channel ratios spanning ≤ 2^12 share the shift of
    the largest (passes/integer/arith.py)."""
    ratio = np.asarray(ratio, np.float64)
    _, e = np.frexp(ratio)
    size = np.abs(ratio[ratio != 0])
    if ratio.ndim and size.size and size.max() <= size.min() * 2**12:
        e = np.full_like(e, e[ratio != 0].max())
    b = np.floor(ratio * 2.0 ** (31 - e) + 0.5).astype(np.int64)
    return b, (31 - e).astype(np.int64)


def _requant(x, ratio):
    b, c = _dyadic(ratio)
    return (x * b + (np.int64(1) << (c - 1))) >> c


def dyadic_requant(x, ratio, bits):
    y = _requant(x.astype(np.int64), ratio)
    limit = 2 ** (bits - 1) - 1
    return np.clip(y, -limit, limit)


D = 62  # edgec's dividend (I-ViT: 31; passes/integer/shiftmax.py says why)


def _n(scale, terms, n_max):
    x0 = math.floor(-1 / scale)
    return min(n_max, math.floor(math.log2(2.0 ** (D - 16) / (terms * -x0))))


def shift_exp(x, scale, n):
    x = x + (x >> 1) - (x >> 4)
    x0 = math.floor(-1 / scale)
    x = np.maximum(x, n * x0)
    q = x // x0
    r = x - x0 * q
    e = (r >> 1) - x0
    return e << (n - q)


def shiftmax(x, scale, bits=8, n_max=15, fraction=None):
    fraction = bits - 1 if fraction is None else fraction
    x = x.astype(np.int64)
    x = x - x.max(axis=-1, keepdims=True)
    e = shift_exp(x, scale, _n(scale, x.shape[-1], n_max))
    factor = (2**D - 1) // e.sum(axis=-1, keepdims=True)
    return np.minimum((e * factor) >> (D - fraction), 2 ** (bits - 1) - 1)


def shiftgelu(x, scale, n_max=23):
    x = x.astype(np.int64)
    s = 1.702 * scale
    n = _n(s, 2, n_max)
    m = np.maximum(x.max(axis=-1, keepdims=True), 0)
    e1, e2 = shift_exp(x - m, s, n), shift_exp(-m, s, n)
    sigma = (e1 * ((2**D - 1) // (e1 + e2))) >> (D - 7)
    return x * sigma


def _over_root(y, fraction):
    """y / √Σy² over the last axis, I-LayerNorm's integer way (scale 2^-fraction)."""
    v = (y * y).sum(axis=-1, keepdims=True)
    k = np.full_like(v, 2**16)
    for _ in range(10):
        k = (k + v // k) // 2
    return (y * ((2**31 - 1) // k)) >> (31 - fraction)


def _normalised(x, fraction):
    """(x − round(mean)) / √Σ(x − mean)² over the last axis, int64 (scale 2^-fraction)."""
    c = x.shape[-1]
    mean = (x.sum(axis=-1, keepdims=True) + c // 2) // c
    return _over_root(x - mean, fraction)


def l2_normalise(x, fraction=16):
    return _over_root(x.astype(np.int64), fraction)


def groupnorm(x, groups, gamma, beta, out_scale, bits, fraction=16):
    """GroupNorm of int x (N, C, …): each group's statistics as I-LayerNorm, then γ, β."""
    x = x.astype(np.int64)
    count = x[0].size // groups
    z = _normalised(x.reshape(x.shape[0], groups, count), fraction).reshape(x.shape)
    channel = (-1,) + (1,) * (x.ndim - 2)
    return _affine(z, math.sqrt(count) / 2**fraction, gamma.reshape(channel),
                   beta.reshape(channel), out_scale, bits)  # fmt: skip


def layernorm(x, gamma, beta, in_scale, out_scale, bits, fraction=16):
    x = x.astype(np.int64)
    z = _normalised(x, fraction)
    return _affine(z, math.sqrt(x.shape[-1]) / 2**fraction, gamma, beta, out_scale, bits)


def _affine(z, z_scale, gamma, beta, out_scale, bits):
    out = _requant(z, z_scale * gamma / out_scale) + np.round(beta / out_scale).astype(np.int64)
    limit = 2 ** (bits - 1) - 1
    return np.clip(out, -limit, limit)


def hardswish(x, scale):
    x = x.astype(np.int64)
    return x * np.clip(x + round(3 / scale), 0, round(6 / scale))


def sigmoid(x, scale):
    x = x.astype(np.int64)
    n = _n(scale, 2, 23)
    m = np.maximum(x, 0)
    e1, e2 = shift_exp(x - m, scale, n), shift_exp(-m, scale, n)
    return (e1 * ((2**D - 1) // (e1 + e2))) >> (D - 7)
