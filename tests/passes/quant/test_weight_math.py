"""Weight arithmetic: int8 per-channel, and int4 blocks whose scales are s[o]·k (k integer)."""

from __future__ import annotations

import numpy as np

from edgec.passes.quant.weight_math import int4_blocks, int8_per_channel


def test_int8_per_channel_by_hand():
    w = np.array([[0.5, -1.0, 0.25], [2.0, 0.0, -0.5]], np.float32)  # Gemm transB: [N, K]
    q, scale = int8_per_channel(w, out_axis=0, qmax=127)
    np.testing.assert_allclose(scale, [1.0 / 127, 2.0 / 127])
    np.testing.assert_array_equal(q, [[64, -127, 32], [127, 0, -32]])
    q7, _ = int8_per_channel(w, out_axis=0, qmax=63)  # reduce_range
    assert np.abs(q7).max() == 63


def test_int4_blocks_are_integer_multiples_of_a_channel_scale():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((8, 64, 3, 3)).astype(np.float32)
    w[:, :32] *= 0.1  # first block of every channel is 10× smaller
    quant = int4_blocks(w, out_axis=0, red_axis=1, block=32, k_max=15)
    assert quant.q.shape == w.shape and quant.q.min() >= -8 and quant.q.max() <= 7
    assert quant.block_scale.shape == (8, 2, 3, 3)
    k = quant.block_scale / quant.channel_scale[:, None, None, None]
    np.testing.assert_allclose(k, np.round(k), rtol=1e-6)
    assert k.min() >= 1 and k.max() <= 15
    assert (quant.multiplier == np.round(k)).all()
    # the widened int8 weight (q4·k on the channel scale) is the int4 weight
    wide = quant.q.astype(np.int32) * np.repeat(quant.multiplier, 32, axis=1)
    assert np.abs(wide).max() <= 127
    np.testing.assert_allclose(
        wide * quant.channel_scale[:, None, None, None],
        quant.dequantized(red_axis=1, block=32),
        rtol=1e-6,
    )
    # per-block scales follow the small first block: far less error than one scale per channel
    error = np.abs(quant.dequantized(1, 32) - w)[:, :32].mean()
    per_channel = np.abs(w).reshape(8, -1).max(1)[:, None, None, None] / 7
    naive = np.abs(np.clip(np.round(w / per_channel), -8, 7) * per_channel - w)[:, :32].mean()
    assert error < 0.5 * naive


def test_int4_reduce_range_keeps_wide_weights_within_7_bits():
    w = np.random.default_rng(1).standard_normal((4, 32)).astype(np.float32)
    quant = int4_blocks(w, out_axis=1, red_axis=0, block=32, k_max=7)  # MatMul [K, N]
    wide = quant.q.astype(np.int32) * quant.multiplier
    assert np.abs(wide).max() <= 56
