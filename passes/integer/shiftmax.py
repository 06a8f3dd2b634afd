"""Shiftmax (I-ViT): integer softmax from shifts, one integer division per row.

For logits x (integer, scale S) along `axis`, in int64 (TVM integer semantics, I-ViT
`TVM_benchmark/models/layers.py`):

    x   ← x − max(x)                                  (≤ 0)
    e   = shift_exp(x; S, n)                          (≈ 2^n · e^(S·x) / S … scale S / 2^n)
    sum = Σ e;  factor = floor((2^D − 1) / sum)
    out = min(floor(e · factor / 2^(D − f)), 2^(bits−1) − 1)     (scale 2^−f)

I-ViT fixes f = bits − 1 (8 bits: 2^−7). **Deviation (measured):** the caller may pass a finer
f, from the calibrated maximum probability p_max: f = floor(log2((2^(bits−1) − 1) / p_max)).
With near-uniform attention over many tokens (Segmenter's 166-token decoder, 1025 tokens at
512², a seeded-init model) every probability is below 2^−8 and I-ViT's 2^−7 output rounds the
whole row to 0 (attention output cosine 0.01 against float; 0.99 with the calibrated f).
When p_max ≥ 0.5 the calibrated f is I-ViT's.

`shift_exp` (I-ViT `int_exp_shift`), for x ≤ 0:

    x  ← x + floor(x / 2) − floor(x / 16)             (x · log2 e, 1.4375 ≈ 1.4427)
    x0 = floor(−1 / S)                                (the integer for −1.0)
    x  ← max(x, n · x0);  q = x / x0 (≥ 0);  r = x − x0 · q  ∈ (x0, 0]
    e  = (floor(r / 2) − x0) << (n − q)                ((1 + r·S/2) · 2^−q, linear 2^t on (−1, 0])

The shift runs as `BitShift` on uint64 (ONNX Runtime's BitShift is unsigned-only); e > 0 there.

**Measured deviation from I-ViT**: the dividend is 2^62 − 1 (`DIVIDEND_BITS`, int64), not
2^31 − 1. With I-ViT's n (15 here, 23 in ShiftGELU) the sum reaches ~2^27, so
floor((2^31 − 1)/sum) keeps only ~4 bits: ShiftGELU's sigmoid of 8-bit inputs then tops out at
120/128 (|Δ| 0.30 at x = 4.8 against GELU; 0.03 with 2^62, tests/passes/integer). I-ViT
trains that error away (QAT); post-training it costs accuracy. n stays I-ViT's unless
`terms · (−x0) · 2^n` would pass 2^(62 − 16) (`exp_bits`), which keeps ≥ 16 bits in `factor`.
"""

from __future__ import annotations

import math

import onnx_ir as ir

from edgec.passes.integer.arith import floor_div
from edgec.passes.integer.emit import INT32, Emitter, QTensor

DIVIDEND_BITS = 62
FACTOR_BITS = 16


def x0_of(scale: float) -> int:
    return math.floor(-1.0 / scale)


def exp_bits(scale: float, terms: int, n_max: int) -> int:
    """I-ViT's n (`n_max`), lowered until `terms` exponentials of at most −x0·2^n sum below
    2^(D − FACTOR_BITS)."""
    room = 2.0 ** (DIVIDEND_BITS - FACTOR_BITS) / (terms * -x0_of(scale))
    if room < 1:
        raise ValueError(f"scale {scale} is too coarse for an integer exponential of {terms}")
    return min(n_max, math.floor(math.log2(room)))


def shift_exp(em: Emitter, x: ir.Value, scale: float, n: int) -> ir.Value:
    """I-ViT `int_exp_shift` of int64 x ≤ 0 (see the module docstring); int64 result."""
    x = em.op(
        "Sub",
        [
            em.op("Add", [x, floor_div(em, x, em.const(2))]),
            floor_div(em, x, em.const(16)),
        ],
    )
    x0 = x0_of(scale)
    x = em.op("Max", [x, em.const(n * x0)])
    q = em.op("Div", [x, em.const(x0)])  # both ≤ 0: truncation is floor
    r = em.op("Sub", [x, em.op("Mul", [q, em.const(x0)])])
    e = em.op("Sub", [floor_div(em, r, em.const(2)), em.const(x0)])
    shift = em.cast(em.op("Sub", [em.const(n), q]), ir.DataType.UINT64)
    shifted = em.op("BitShift", [em.cast(e, ir.DataType.UINT64), shift], direction="LEFT")
    return em.cast(shifted, ir.DataType.INT64)


def normalise(em: Emitter, e: ir.Value, total: ir.Value, fraction: int) -> ir.Value:
    """floor(e · floor((2^D − 1) / total) / 2^(D − fraction)), int64 (scale 2^−fraction)."""
    factor = em.op("Div", [em.const(2**DIVIDEND_BITS - 1), total])
    return em.op("Div", [em.op("Mul", [e, factor]), em.const(2 ** (DIVIDEND_BITS - fraction))])


def shiftmax(
    em: Emitter,
    x: QTensor,
    axis: int,
    length: int,
    bits: int = 8,
    n_max: int = 15,
    fraction: int | None = None,
) -> QTensor:
    """Softmax of x along `axis` (`length` elements): bits-bit output at scale 2^−fraction
    (I-ViT's 2^−(bits−1) by default; a finer one saturates at 2^(bits−1) − 1)."""
    fraction = bits - 1 if fraction is None else fraction
    axes = em.axes([axis])
    x64 = em.to_int64(x.value)
    shifted = em.op("Sub", [x64, em.op("ReduceMax", [x64, axes], keepdims=1)])
    e = shift_exp(em, shifted, x.scale, exp_bits(x.scale, length, n_max))
    total = em.op("ReduceSum", [e, axes], keepdims=1)
    out = normalise(em, e, total, fraction)
    if fraction > bits - 1:
        out = em.op("Min", [out, em.const(2 ** (bits - 1) - 1)])
    return QTensor(em.cast(out, INT32), 2.0**-fraction, bits)
