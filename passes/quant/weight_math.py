"""Weight quantization arithmetic (numpy): int8 per-channel and int4 two-level block scales.

int8: `scale[o] = max|W[o]| / qmax` (qmax 127, or 63 with reduce_range), `q = round(W/scale)`.

int4, blocks of `block` along the reduction axis: every block scale is a per-channel base
`s[o]` times an integer `k ∈ 1..k_max`, so `q4·k` is an exact int8 weight on `s` (the
lossless widening of docs/quantization.md). Scale search: for a few bases
`s = α·max|W[o]| / (7·k_max)` (α ∈ 1, .9, .8, .7) each block tries the four largest useful
multipliers (the one that just covers its max and three smaller, i.e. clipped, ones), and the
combination with the least squared weight error per output channel wins.
"""

from __future__ import annotations

import dataclasses

import numpy as np

_ALPHAS = (1.0, 0.9, 0.8, 0.7)
_K_STEPS = 4


def int8_per_channel(w: np.ndarray, out_axis: int, qmax: int) -> tuple[np.ndarray, np.ndarray]:
    """(q int8 like w, scale float32 [O]) — symmetric per output channel."""
    moved = np.moveaxis(w, out_axis, 0).reshape(w.shape[out_axis], -1)
    scale = (np.abs(moved).max(axis=1) / qmax).astype(np.float32)
    scale[scale == 0] = 1.0
    shape = [1] * w.ndim
    shape[out_axis] = -1
    q = np.clip(np.round(w / scale.reshape(shape)), -qmax, qmax).astype(np.int8)
    return q, scale


@dataclasses.dataclass
class Int4Weight:
    q: np.ndarray  # int8 array holding int4 values [-8, 7], the weight's shape
    block_scale: np.ndarray  # float32, the weight's rank, ceil(R/block) on the reduction axis
    channel_scale: np.ndarray  # float32 [O]
    multiplier: np.ndarray  # uint8, block_scale's shape, 1..k_max

    def dequantized(self, red_axis: int, block: int) -> np.ndarray:
        expanded = np.repeat(self.block_scale, block, axis=red_axis)
        expanded = np.take(expanded, np.arange(self.q.shape[red_axis]), axis=red_axis)
        return self.q.astype(np.float32) * expanded


def int4_blocks(w: np.ndarray, out_axis: int, red_axis: int, block: int, k_max: int) -> Int4Weight:
    """Two-level int4 block quantization of `w` (see the module docstring)."""
    rest = [a for a in range(w.ndim) if a not in (out_axis, red_axis)]
    perm = [out_axis, *rest, red_axis]
    moved = w.transpose(perm).astype(np.float32)
    lead = moved.shape[:-1]
    size = moved.shape[-1]
    nb = -(-size // block)
    padded = np.zeros((*lead, nb * block), np.float32)
    padded[..., :size] = moved
    blocks = padded.reshape(lead[0], -1, nb, block)  # [O, M, nb, B]
    block_max = np.abs(blocks).max(axis=-1)  # [O, M, nb]
    channel_max = np.maximum(block_max.reshape(lead[0], -1).max(axis=1), 1e-12)
    best_err = np.full(lead[0], np.inf)
    best_k = np.ones(block_max.shape, np.int64)
    best_s = np.zeros(lead[0])
    for alpha in _ALPHAS:
        s = (alpha * channel_max / (7 * k_max)).astype(np.float32)
        s4 = s[:, None, None, None]
        top = np.clip(np.ceil(block_max / (7 * s[:, None, None])), 1, k_max)
        errs, ks = [], []
        for step in range(_K_STEPS):
            k = np.clip(top - step, 1, k_max)
            q = np.clip(np.round(blocks / (s4 * k[..., None])), -8, 7)
            errs.append(((q * s4 * k[..., None] - blocks) ** 2).sum(axis=-1))
            ks.append(k)
        errs_a, ks_a = np.stack(errs), np.stack(ks)
        choice = errs_a.argmin(axis=0)
        k = np.take_along_axis(ks_a, choice[None], axis=0)[0]
        err = np.take_along_axis(errs_a, choice[None], axis=0)[0].reshape(lead[0], -1).sum(axis=1)
        better = err < best_err
        best_err = np.where(better, err, best_err)
        best_k[better] = k[better]
        best_s = np.where(better, s, best_s)
    s32 = best_s.astype(np.float32)
    scale = (s32[:, None, None] * best_k.astype(np.float32)).astype(np.float32)
    q = np.clip(np.round(blocks / scale[..., None]), -8, 7)
    q = q.reshape(*lead, nb * block)[..., :size]
    inverse = np.argsort(perm)
    block_shape = (*lead, nb)
    return Int4Weight(
        q=q.astype(np.int8).transpose(inverse),
        block_scale=scale.reshape(block_shape).transpose(inverse).astype(np.float32),
        channel_scale=s32,
        multiplier=best_k.reshape(block_shape).transpose(inverse).astype(np.uint8),
    )
