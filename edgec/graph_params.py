"""Parameter count and size of a model, and the dtype names the statistics print.

Parameters are the elements of every initializer (main graph and subgraphs) and of every
Constant node's value whose data type is floating point or an integer type other than
int64/uint64. int64/uint64 tensors (shapes, axes, Gather indices such as EfficientViT's
`attention_bias_idxs`) and bool/string/complex constants are counted apart, as excluded
elements. Each tensor is counted once however many nodes use it. Parameter bytes are
`ceil(elements · bit width / 8)` per tensor (int4 packs two to a byte).
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter

import onnx_ir as ir

from edgec.graph_macs import DEFAULT_DOMAINS
from edgec.graph_shapes import static_shape

__all__ = ["PARAMS_CONVENTION", "Params", "count_parameters", "dtype_name"]

PARAMS_CONVENTION = (
    "elements of initializers and Constant values of floating-point or integer type other "
    "than int64/uint64 (shape and index tensors), each tensor counted once"
)

_DTYPE_NAMES = {
    ir.DataType.FLOAT: "float32",
    ir.DataType.DOUBLE: "float64",
    ir.DataType.FLOAT16: "float16",
    ir.DataType.BFLOAT16: "bfloat16",
}


@dataclasses.dataclass
class Params:
    """Running totals: counted elements, their bytes and tensors, and the excluded elements."""

    count: int = 0
    nbytes: int = 0
    tensors: int = 0
    excluded: int = 0
    by_dtype: Counter = dataclasses.field(default_factory=Counter)

    def add(self, dtype: ir.DataType, size: int) -> None:
        """Count one tensor of `size` elements (or exclude it, by its dtype)."""
        excluded = dtype in (ir.DataType.INT64, ir.DataType.UINT64) or not (
            dtype.is_floating_point() or dtype.is_integer()
        )
        if excluded:
            self.excluded += size
            return
        self.count += size
        self.nbytes += math.ceil(size * dtype.bitwidth / 8)
        self.tensors += 1
        self.by_dtype[dtype_name(dtype)] += size


def count_parameters(model: ir.Model) -> Params:
    """The parameters of `model`: initializers and Constant values of every graph."""
    params = Params()
    for graph in model.graphs():
        for value in graph.initializers.values():
            tensor = value.const_value
            if tensor is not None:
                params.add(tensor.dtype, tensor.size)
            elif value.dtype is not None and (shape := static_shape(value.shape)) is not None:
                params.add(value.dtype, math.prod(shape))
        for node in graph:
            if node.op_type != "Constant" or node.domain not in DEFAULT_DOMAINS:
                continue
            if (tensor := node.attributes.get_tensor("value", None)) is not None:
                params.add(tensor.dtype, tensor.size)
            elif node.attributes.get_float("value_float", None) is not None:
                params.add(ir.DataType.FLOAT, 1)
            elif (floats := node.attributes.get_floats("value_floats", None)) is not None:
                params.add(ir.DataType.FLOAT, len(floats))
            elif node.attributes.get_int("value_int", None) is not None:
                params.add(ir.DataType.INT64, 1)
            elif (ints := node.attributes.get_ints("value_ints", None)) is not None:
                params.add(ir.DataType.INT64, len(ints))
    return params


def dtype_name(dtype: ir.DataType | None) -> str:
    """numpy-style name (float32, int8, …); "?" when unknown."""
    if dtype is None:
        return "?"
    return _DTYPE_NAMES.get(dtype, dtype.name.lower())
