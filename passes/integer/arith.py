"""Integer arithmetic building blocks: floor division, dyadic requantisation, rescaled addition.

ONNX Runtime's CPU kernels for int64 `Div` truncate toward zero and `Mod` (fmod=0) takes the
divisor's sign, so `floor(x / d) = (x − Mod(x, d)) / d` exactly for any sign of x (d > 0).

**Dyadic requantisation** (I-ViT `fixedpoint_mul`): a real ratio r = S_in / S_out is written as
r ≈ b / 2^c with `np.frexp(r) = (m, e)`, b = round_half_up(m · 2^31), c = 31 − e, so that

    y = clamp(floor((x · b + 2^(c−1)) / 2^c), −L, L)        (round half up; L = 2^(bits−1) − 1)

runs in int64 (|x| < 2^31, |b| ≤ 2^31). A per-channel ratio gives per-channel (b, c), shaped
to broadcast along the channel axis.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from edgec.passes.integer.emit import INT32, INT64, Emitter, QTensor

MANTISSA_BITS = 31
_MAX_SHIFT = 62


def dyadic(ratio: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """(b, c) int64 with ratio ≈ b / 2^c (see the module docstring); elementwise."""
    m, e = np.frexp(np.asarray(ratio, np.float64))
    b = np.floor(m * 2.0**MANTISSA_BITS + 0.5).astype(np.int64)
    c = (MANTISSA_BITS - e).astype(np.int64)
    # a ratio below 2^-31 keeps c ≤ 62 by dropping mantissa bits (it rounds to ~0 anyway)
    excess = np.maximum(c - _MAX_SHIFT, 0)
    b = np.floor(b / 2.0**excess + 0.5).astype(np.int64)
    if np.any(c < 0):
        raise ValueError(f"requantisation ratio {np.max(ratio)} is ≥ 2^31")
    return np.where(m == 0, 0, b), np.where(m == 0, 0, c - excess)


def floor_div(em: Emitter, x: ir.Value, divisor: ir.Value) -> ir.Value:
    """floor(x / divisor) for int64 x and a positive int64 divisor (constant or tensor)."""
    remainder = em.op("Mod", [x, divisor])
    return em.op("Div", [em.op("Sub", [x, remainder]), divisor])


def clamp(em: Emitter, x: ir.Value, limit: int, dtype: ir.DataType) -> ir.Value:
    """x clipped to [−limit, limit]; int64 x, result cast to `dtype`."""
    clipped = em.op("Clip", [x, em.const(-limit), em.const(limit)])
    return em.cast(clipped, dtype) if dtype != INT64 else clipped


def scaled(em: Emitter, x: QTensor, ratio: np.ndarray | float) -> ir.Value:
    """round(x · ratio) in int64 by the dyadic multiplier (unclamped)."""
    b, c = dyadic(ratio)
    product = em.op("Mul", [em.to_int64(x.value), em.const(b, hint="mult")])
    rounded = em.op("Add", [product, em.const(np.where(c > 0, 2 ** np.maximum(c - 1, 0), 0))])
    return floor_div(em, rounded, em.const(2**c, hint="shift"))


def requantize(
    em: Emitter, x: QTensor, scale: float, bits: int, gain: np.ndarray | float = 1.0
) -> QTensor:
    """x · gain at `scale` with `bits` bits; `gain` may be a per-channel array already shaped to
    broadcast (a per-channel weight scale, LayerNorm's γ)."""
    ratio = x.scale * np.asarray(gain, np.float64) / scale
    return QTensor(clamp(em, scaled(em, x, ratio), 2 ** (bits - 1) - 1, INT32), scale, bits)


def add(em: Emitter, a: QTensor, b: QTensor, scale: float, bits: int) -> QTensor:
    """a + b at `scale`: each operand rescaled by its own dyadic ratio, summed, clamped."""
    total = em.op("Add", [scaled(em, a, a.scale / scale), scaled(em, b, b.scale / scale)])
    return QTensor(clamp(em, total, 2 ** (bits - 1) - 1, INT32), scale, bits)


def multiply(em: Emitter, a: QTensor, b: QTensor, bits: int) -> QTensor:
    """a · b in int64 at scale S_a·S_b, clamped to `bits` (the caller requantizes)."""
    product = em.op("Mul", [em.to_int64(a.value), em.to_int64(b.value)])
    return QTensor(clamp(em, product, 2 ** (bits - 1) - 1, INT64), a.scale * b.scale, bits)
