"""numpy references of the I-ViT integer formulas (models-b.md §3.3), written from the paper's
equations with numpy's floor semantics (`>>` on int64 is floor division by a power of two), not
from edgec's builders — the ONNX graphs must match them bit for bit."""

from __future__ import annotations

import math

import numpy as np


def dyadic_requant(x, ratio, bits):
    m, e = np.frexp(np.asarray(ratio, np.float64))
    b = np.floor(m * 2.0**31 + 0.5).astype(np.int64)
    c = (31 - e).astype(np.int64)
    y = (x.astype(np.int64) * b + (np.int64(1) << (c - 1))) >> c
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


def shiftmax(x, scale, bits=8, n_max=15):
    x = x.astype(np.int64)
    x = x - x.max(axis=-1, keepdims=True)
    e = shift_exp(x, scale, _n(scale, x.shape[-1], n_max))
    factor = (2**D - 1) // e.sum(axis=-1, keepdims=True)
    return (e * factor) >> (D - bits + 1)


def shiftgelu(x, scale, n_max=23):
    x = x.astype(np.int64)
    s = 1.702 * scale
    n = _n(s, 2, n_max)
    m = np.maximum(x.max(axis=-1, keepdims=True), 0)
    e1, e2 = shift_exp(x - m, s, n), shift_exp(-m, s, n)
    sigma = (e1 * ((2**D - 1) // (e1 + e2))) >> (D - 7)
    return x * sigma


def layernorm(x, gamma, beta, in_scale, out_scale, bits, fraction=16):
    x = x.astype(np.int64)
    c = x.shape[-1]
    mean = (x.sum(axis=-1, keepdims=True) + c // 2) // c
    y = x - mean
    v = (y * y).sum(axis=-1, keepdims=True)
    k = np.full_like(v, 2**16)
    for _ in range(10):
        k = (k + v // k) // 2
    z = (y * ((2**31 - 1) // k)) >> (31 - fraction)
    ratio = math.sqrt(c) / 2**fraction * gamma / out_scale
    m, e = np.frexp(ratio)
    b = np.floor(m * 2.0**31 + 0.5).astype(np.int64)
    sh = (31 - e).astype(np.int64)
    out = ((z * b + (np.int64(1) << (sh - 1))) >> sh) + np.round(beta / out_scale).astype(np.int64)
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
