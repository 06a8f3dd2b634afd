"""Integer ReLU, Clip and Hardswish / Hardsigmoid on a `QTensor` (the scale carries through).

relu(x)        = max(x, 0)                                      scale S
clip(x; a, b)  = min(max(x, round(a/S)), round(b/S))            scale S
hardsigmoid(x) = clip(x + round(3/S), 0, round(6/S))            scale S / 6
hardswish(x)   = x · hardsigmoid_int(x)                          scale S² / 6
"""

from __future__ import annotations

import numpy as np

from edgec.passes.integer.emit import Emitter, QTensor


def relu(em: Emitter, x: QTensor) -> QTensor:
    return QTensor(em.op("Relu", [x.value]), x.scale, x.bits)


def clip(em: Emitter, x: QTensor, low: float | None, high: float | None) -> QTensor:
    value = em.to_int64(x.value)
    if low is not None:
        value = em.op("Max", [value, em.const(max(round(low / x.scale), -x.limit))])
    if high is not None:
        value = em.op("Min", [value, em.const(min(round(high / x.scale), x.limit))])
    return QTensor(value, x.scale, x.bits)


def hardsigmoid(em: Emitter, x: QTensor) -> QTensor:
    """relu6(x + 3) at scale S, standing for hardsigmoid(x) at scale S / 6."""
    three, six = round(3 / x.scale), round(6 / x.scale)
    shifted = em.op("Add", [em.to_int64(x.value), em.const(three)])
    value = em.op("Clip", [shifted, em.const(0), em.const(six)])
    bits = int(np.ceil(np.log2(six + 1))) + 1
    return QTensor(value, x.scale / 6, bits)


def hardswish(em: Emitter, x: QTensor) -> QTensor:
    gate = hardsigmoid(em, x)
    return QTensor(
        em.op("Mul", [em.to_int64(x.value), gate.value]), x.scale * gate.scale, x.bits + gate.bits
    )
