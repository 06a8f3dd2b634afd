"""Integer matrix products and convolutions: int8 × int8 → int32, then dyadic requantisation.

    x (QTensor, ≤ 8 bit) ─ Cast int8 ─┐
    W_q (int8, per output channel)  ──┴─ MatMulInteger | ConvInteger ─ Add(bias int32) ─► requant

Weights are symmetric int8 per output channel (`quant.weight_math.int8_per_channel`, qmax 127);
the bias becomes int32 at S_x · s_w[o]; the int32 accumulator is requantized to the output
scale by a per-channel dyadic multiplier (ratio S_x · s_w[o] / S_out).

Signed × signed: measured on this host's AVX2 build of ONNX Runtime 1.32, `MatMulInteger`
with uint8 × int8 saturates (pairs of products in int16) while int8 × int8 and uint8 × uint8
are exact, and `ConvInteger` is exact for all three (tests/passes/integer/test_linear.py).
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from edgec.passes.integer.arith import requantize
from edgec.passes.integer.emit import Emitter, QTensor
from edgec.passes.quant.weight_math import int8_per_channel

INT8 = ir.DataType.INT8
WEIGHT_QMAX = 127
_INT32_MAX = 2**31 - 1


def as_int8(em: Emitter, x: QTensor) -> ir.Value:
    if x.bits > 8:
        raise ValueError(f"an int8 operand needs ≤ 8 bits, got {x.bits}")
    return em.cast(x.value, INT8)


def linear(
    em: Emitter,
    x: QTensor,
    weight: np.ndarray,
    bias: np.ndarray | None,
    out_scale: float,
    out_bits: int,
    conv: dict | None = None,
) -> QTensor:
    """x @ weight (+ bias) for a [K, N] weight, or a convolution of an [O, I/g, …] weight with
    ConvInteger attributes `conv`; output at `out_scale` with `out_bits` bits."""
    out_axis = 0 if conv is not None else 1
    w_q, w_scale = int8_per_channel(weight, out_axis, WEIGHT_QMAX)
    w_value = em.const(w_q, np.int8, hint="weight")
    if conv is not None:
        acc = em.op("ConvInteger", [as_int8(em, x), w_value], **conv)
        channel_shape = [-1] + [1] * (weight.ndim - 2)
    else:
        acc = em.op("MatMulInteger", [as_int8(em, x), w_value])
        channel_shape = [-1]
    acc_scale = x.scale * w_scale.astype(np.float64)
    if bias is not None:
        b = np.clip(np.round(bias / acc_scale), -_INT32_MAX, _INT32_MAX)
        acc = em.op("Add", [acc, em.const(b.reshape(channel_shape), np.int32, hint="bias")])
    gain = w_scale.astype(np.float64).reshape(channel_shape)
    return requantize(em, QTensor(acc, x.scale, 32), out_scale, out_bits, gain=gain)


def matmul(em: Emitter, a: QTensor, b: QTensor, out_scale: float, out_bits: int) -> QTensor:
    """a @ b of two integer activations (≤ 8 bit each)."""
    acc = em.op("MatMulInteger", [as_int8(em, a), as_int8(em, b)])
    return requantize(em, QTensor(acc, a.scale * b.scale, 32), out_scale, out_bits)
