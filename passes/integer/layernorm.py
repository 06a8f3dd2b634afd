"""I-LayerNorm (I-ViT `IntLayerNorm`): normalisation with an integer square root.

For x (integer, scale S) over the normalised axes (C elements), in int64:

    μ   = round(Σ x / C);  y = x − μ
    v   = Σ y²                                       (a sum, not a mean)
    k   = 2^16, then 10 × k ← floor((k + floor(v / k)) / 2)      (Newton: k ≈ √v = √C · σ)
    f   = floor((2^31 − 1) / k)
    z   = floor(y · f / 2^(31 − F))                  (≈ (x − μ)/σ · 2^F / √C, scale √C / 2^F)
    out = requant(z; γ · √C / 2^F) + round(β / S_out)   (per channel; γ, β on the last axes)

I-ViT keeps F = 30 and requantizes next; F = 16 (`FRACTION_BITS`) keeps |z| < 2^17 so the
per-channel dyadic multiplier of γ fits int64 — the normalised value still has 16 fractional
bits before the 8/16-bit requantisation. There is no ε: k ≥ 2^6 after 10 steps from 2^16, so
a constant row gives 0, not a division by zero.

L2 normalisation (Segmenter's mask decoder, x / ‖x‖ along the last axis) is the same without
the mean: v = Σ x², z = floor(x · floor((2^31 − 1)/k) / 2^(31 − F)) at scale 2^−F.
"""

from __future__ import annotations

import numpy as np

from edgec.passes.integer.arith import clamp, floor_div, scaled
from edgec.passes.integer.emit import INT32, Emitter, QTensor

NEWTON_START = 2**16
NEWTON_STEPS = 10
FRACTION_BITS = 16
_FACTOR = 2**31 - 1


def integer_sqrt(em: Emitter, v):
    """floor-Newton square root of int64 v ≥ 0: NEWTON_STEPS fixed steps from NEWTON_START."""
    k = em.const(np.array(NEWTON_START, np.int64), hint="sqrt_start")
    two = em.const(2)
    for _ in range(NEWTON_STEPS):
        k = em.op("Div", [em.op("Add", [k, em.op("Div", [v, k])]), two])
    return k


def _over_root_of_squares(em: Emitter, y, axes_value):
    """floor(y · floor((2^31 − 1) / √Σy²) / 2^(31 − F)) for int64 y, the sum over the axes."""
    squares = em.op("ReduceSum", [em.op("Mul", [y, y]), axes_value], keepdims=1)
    factor = em.op("Div", [em.const(_FACTOR), integer_sqrt(em, squares)])
    return floor_div(em, em.op("Mul", [y, factor]), em.const(2 ** (31 - FRACTION_BITS)))


def normalised(em: Emitter, x: QTensor, axes: list[int], count: int) -> QTensor:
    """z = (x − μ)/σ at scale √C / 2^F (int64), before the affine."""
    axes_value = em.axes(axes)
    x64 = em.to_int64(x.value)
    total = em.op("ReduceSum", [x64, axes_value], keepdims=1)
    mean = floor_div(em, em.op("Add", [total, em.const(count // 2)]), em.const(count))
    z = _over_root_of_squares(em, em.op("Sub", [x64, mean]), axes_value)
    return QTensor(z, float(np.sqrt(count)) / 2**FRACTION_BITS, FRACTION_BITS + 8)


def l2_normalised(em: Emitter, x: QTensor, axis: int) -> QTensor:
    """x / ‖x‖ along `axis` at scale 2^−F (int64, |z| ≤ 2^F)."""
    z = _over_root_of_squares(em, em.to_int64(x.value), em.axes([axis]))
    return QTensor(z, 2.0**-FRACTION_BITS, FRACTION_BITS + 2)


def affine(
    em: Emitter, z: QTensor, gamma: np.ndarray, beta: np.ndarray, scale: float, bits: int
) -> QTensor:
    """γ·z + β at `scale` with `bits` bits; γ, β already shaped to broadcast."""
    product = scaled(em, z, z.scale * np.asarray(gamma, np.float64) / scale)
    bias = em.const(np.round(np.asarray(beta, np.float64) / scale), hint="beta")
    total = em.op("Add", [product, bias])
    return QTensor(clamp(em, total, 2 ** (bits - 1) - 1, INT32), scale, bits)


def layernorm(
    em: Emitter,
    x: QTensor,
    axes: list[int],
    count: int,
    gamma: np.ndarray,
    beta: np.ndarray,
    scale: float,
    bits: int,
) -> QTensor:
    """I-LayerNorm of x over `axes` (`count` elements) with affine γ, β, output at `scale`."""
    return affine(em, normalised(em, x, axes, count), gamma, beta, scale, bits)
