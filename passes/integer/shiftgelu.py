"""ShiftGELU (I-ViT `IntGELU`): GELU(x) ≈ x · σ(1.702 x) with an integer sigmoid.

For x (integer, scale S), in int64, with S_σ = 1.702 · S and m the row maximum along the last
axis (clamped at ≥ 0 so both exponents below are ≤ 0; σ is unchanged by the choice of m):

    e1 = shift_exp(x − m; S_σ, n)         (∝ e^{1.702(x − m)})
    e2 = shift_exp(−m;    S_σ, n)         (∝ e^{−1.702 m})
    σ  = floor(e1 · floor((2^D − 1) / (e1 + e2)) / 2^(D − 7))  (8-bit sigmoid, scale 2^−7)
    out = x · σ                            (scale S · 2^−7; the caller requantizes)

n is I-ViT's 23 and D = 62 (I-ViT: 31), both as in `shiftmax` (which says why).
"""

from __future__ import annotations

from edgec.passes.integer.emit import Emitter, QTensor
from edgec.passes.integer.shiftmax import exp_bits, normalise, shift_exp

GELU_SIGMOID = 1.702
SIGMOID_BITS = 8
N_MAX = 23


def sigmoid(em: Emitter, x: QTensor, gain: float = 1.0, row_max: bool = False) -> QTensor:
    """σ(gain · x) as an 8-bit integer at scale 2^−7. The shared offset m is the row maximum
    over the last axis (I-ViT's ShiftGELU) or, elementwise, max(x, 0) (a plain Sigmoid)."""
    scale = gain * x.scale
    n = exp_bits(scale, 2, N_MAX)
    x64 = em.to_int64(x.value)
    peak = em.op("ReduceMax", [x64, em.axes([-1])], keepdims=1) if row_max else x64
    m = em.op("Max", [peak, em.const(0)])
    e1 = shift_exp(em, em.op("Sub", [x64, m]), scale, n)
    e2 = shift_exp(em, em.op("Neg", [m]), scale, n)
    sigma = normalise(em, e1, em.op("Add", [e1, e2]), SIGMOID_BITS - 1)
    return QTensor(sigma, 2.0 ** -(SIGMOID_BITS - 1), SIGMOID_BITS + 1)


def shiftgelu(em: Emitter, x: QTensor) -> QTensor:
    """x · σ(1.702 x) at scale S · 2^−7 (int64; the caller requantizes)."""
    sigma = sigmoid(em, x, GELU_SIGMOID, row_max=True)
    out = em.op("Mul", [em.to_int64(x.value), sigma.value])
    return QTensor(out, x.scale * sigma.scale, x.bits + SIGMOID_BITS)
