"""Building blocks the quant passes share: new initializers with fresh names."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from edgec.passes._graph import Names


def add_initializer(model: ir.Model, names: Names, hint: str, array: np.ndarray) -> ir.Value:
    """Register `array` as an initializer named after `hint` (made unique); returns its value."""
    name = names.fresh(hint)
    value = ir.Value(name=name, const_value=ir.Tensor(array, name=name))
    value.dtype = value.const_value.dtype
    value.shape = ir.Shape(array.shape)
    model.graph.register_initializer(value)
    return value
