"""Integer bilinear Resize (ONNX `Resize`, mode "linear", on the last two axes) with fixed-point
weights, one axis at a time.

For each resized axis (n inputs → m outputs), at compile time in float64: the ONNX coordinate
transform maps output index o to a source position p, clamped to [0, n − 1]; i0 = floor(p),
i1 = min(i0 + 1, n − 1), and with F = `WEIGHT_BITS` fractional bits W1 = round((p − i0) · 2^F),
W0 = 2^F − W1 (each pair sums to exactly 2^F). Then, in integers:

    y = Gather(x, i0, axis) · W0 + Gather(x, i1, axis) · W1        (scale S / 2^F)

After both axes the scale is S / 2^(2F) and |y| ≤ |x| · 2^(2F): for a 16-bit x and F = 8 that
is below 2^31, so the result stays int32 with no requantisation (the next op or the output
dequantize takes the scale). The weights are exact whenever p · 2^F is an integer, e.g. every
half-pixel ×2^k upsampling with k ≤ 7 (Segmenter's ×16 needs multiples of 1/32); otherwise each
weight is off by at most 2^−(F+1) of the input value.

    before: masks (f32, 1×150×32×32) ─ Resize(linear, half_pixel) ─► (1×150×512×512)
    after:  masks (int32) ─ Gather(i0) · W0 + Gather(i1) · W1 along W, then along H ─► int32
"""

from __future__ import annotations

import numpy as np

from edgec.passes.integer.emit import INT32, INT64, Emitter, QTensor

WEIGHT_BITS = 8
TRANSFORMS = ("half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric")


def source_positions(size_in: int, size_out: int, scale: float, transform: str) -> np.ndarray:
    """ONNX Resize's source coordinate of each output index, clamped to the input."""
    o = np.arange(size_out, dtype=np.float64)
    if transform == "half_pixel":
        p = (o + 0.5) / scale - 0.5
    elif transform == "pytorch_half_pixel":
        p = (o + 0.5) / scale - 0.5 if size_out > 1 else np.zeros(1)
    elif transform == "align_corners":
        p = o * (size_in - 1) / (size_out - 1) if size_out > 1 else np.zeros(1)
    elif transform == "asymmetric":
        p = o / scale
    else:
        raise ValueError(f"coordinate transform {transform!r} is not one of {TRANSFORMS}")
    return np.clip(p, 0, size_in - 1)


def _axis(em: Emitter, x, dtype: type, axis: int, rank: int, positions: np.ndarray, size_in: int):
    i0 = np.floor(positions).astype(np.int64)
    i1 = np.minimum(i0 + 1, size_in - 1)
    w1 = np.round((positions - i0) * 2**WEIGHT_BITS).astype(np.int64)
    w0 = 2**WEIGHT_BITS - w1
    shape = [-1] + [1] * (rank - 1 - axis)  # broadcast along `axis`
    terms = [
        em.op(
            "Mul",
            [
                em.op("Gather", [x, em.const(index, hint="index")], axis=axis),
                em.const(weight.reshape(shape), dtype, hint="weight"),
            ],
        )
        for index, weight in ((i0, w0), (i1, w1))
    ]
    return em.op("Add", terms)


def bilinear(
    em: Emitter,
    x: QTensor,
    in_shape: tuple[int, ...],
    out_shape: tuple[int, ...],
    scales: tuple[float, ...],
    transform: str,
) -> QTensor:
    """x resized bilinearly from `in_shape` to `out_shape` (only the last two axes change;
    `scales` are ONNX Resize's per-axis scales); scale S / 2^(2F)."""
    bits = x.bits + 2 * WEIGHT_BITS
    dtype = np.int32 if bits <= 32 else np.int64
    target = INT32 if bits <= 32 else INT64
    value = x.value if x.value.dtype == target else em.cast(x.value, target)
    rank = len(in_shape)
    for axis in (rank - 1, rank - 2):
        if in_shape[axis] == out_shape[axis]:
            bits -= WEIGHT_BITS
            continue
        positions = source_positions(in_shape[axis], out_shape[axis], scales[axis], transform)
        value = _axis(em, value, dtype, axis, rank, positions, in_shape[axis])
    return QTensor(value, x.scale / 2.0 ** (bits - x.bits), bits)
