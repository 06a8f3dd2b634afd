"""Integer GroupNorm / InstanceNorm: I-LayerNorm's integer statistics over each group.

For x (integer, scale S) of shape (N, C, *spatial) in G groups of C/G channels, in int64:

    x' = Reshape(x, [N, G, −1])                     (skipped when G = C: normalise axes 2…)
    z  = I-LayerNorm's normalised value of x' over its last axis (L = C/G · Π spatial):
         μ = round(Σ x'/L), y = x' − μ, v = Σ y², k = integer √v (10 Newton steps from
         2^16), z = floor(y · floor((2^31 − 1)/k) / 2^15)       (scale √L / 2^16)
    z  = Reshape(z, x.shape)
    out = requant(z; γ[c] · √L / 2^16 / S_out) + round(β[c] / S_out)   (one dyadic
          multiplier per channel, then clamp to `bits`)

GroupNorm(G, C) exports as Reshape(N, G, −1) → InstanceNormalization(scale 1, bias 0) →
Reshape back → Mul(γ) → Add(β); `patterns.py` finds that chain and hands its γ, β here (the
InstanceNormalization's own per-group scale and bias folded in), so the whole norm is one
requantisation. A plain InstanceNormalization is G = C. ε is dropped (as in I-LayerNorm): k is
at least 2^6 after the 10 steps, so a constant group gives β, not a division by zero.

Valid range (measured): the 10 Newton steps from 2^16 give √v to within 1 for √v between
about 2^7.5 and 2^23, i.e. a group standard deviation from 2^7.5/√L LSB up to the full 16-bit
scale while L ≤ 2^16 (SHViT-S1 at 224²: L = 48·7·7). tests/passes/integer/test_groupnorm.py
measures the error against float over that range.
"""

from __future__ import annotations

import math

import numpy as np

from edgec.passes.integer import layernorm
from edgec.passes.integer.emit import Emitter, QTensor


def groupnorm(
    em: Emitter,
    x: QTensor,
    shape: tuple[int, ...],
    groups: int,
    gamma: np.ndarray,
    beta: np.ndarray,
    scale: float,
    bits: int,
) -> QTensor:
    """GroupNorm of x (static `shape` (N, C, …)) in `groups` groups, per-channel γ and β (C
    values each), output at `scale` with `bits` bits."""
    channels, rank = shape[1], len(shape)
    if channels % groups:
        raise ValueError(f"{channels} channels do not split into {groups} groups")
    count = channels // groups * math.prod(shape[2:])
    if groups == channels:
        z = layernorm.normalised(em, x, list(range(2, rank)), count)
    else:
        grouped = em.op("Reshape", [x.value, em.const(np.array([shape[0], groups, -1]))])
        z = layernorm.normalised(em, QTensor(grouped, x.scale, x.bits), [2], count)
        z = QTensor(em.op("Reshape", [z.value, em.const(np.array(shape))]), z.scale, z.bits)
    channel_shape = [-1] + [1] * (rank - 2)
    return layernorm.affine(
        em,
        z,
        np.asarray(gamma, np.float64).reshape(channel_shape),
        np.asarray(beta, np.float64).reshape(channel_shape),
        scale,
        bits,
    )
