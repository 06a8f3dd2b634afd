"""The integer graph under construction: an `onnx_ir` tape with named integer constants, and
`QTensor`, an integer tensor with the real scale it stands for.

A `QTensor` is `value` (an int32 or int64 ONNX tensor) with `real ≈ scale · value`, symmetric
(no zero point), its magnitude bounded by `2^(bits−1) − 1`. Every builder in this package takes
and returns `QTensor`s; the scale is a compile-time number and never appears in the graph.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx_ir as ir

INT32 = ir.DataType.INT32
INT64 = ir.DataType.INT64


@dataclasses.dataclass(frozen=True)
class QTensor:
    value: ir.Value
    scale: float
    bits: int

    @property
    def limit(self) -> int:
        return 2 ** (self.bits - 1) - 1


class Emitter:
    """Appends integer nodes and initializers to `graph`, with fresh deterministic names."""

    def __init__(self, graph: ir.Graph, prefix: str = "int"):
        self.graph = graph
        self.tape = ir.tape.Tape(graph)
        self._prefix = prefix
        self._count = 0

    def name(self, hint: str) -> str:
        self._count += 1
        return f"{self._prefix}/{hint}_{self._count}"

    def const(self, array: np.ndarray | int, dtype: type = np.int64, hint: str = "c") -> ir.Value:
        """An initializer holding `array` as `dtype` (integers only, by construction)."""
        data = np.asarray(array)
        if not np.issubdtype(dtype, np.integer) and dtype is not np.bool_:
            raise TypeError(f"integer graph constants must be integers, not {dtype}")
        if np.issubdtype(data.dtype, np.floating) and not np.array_equal(data, np.round(data)):
            raise ValueError(f"constant {hint} is not integral")
        value = ir.Value(name=self.name(hint), const_value=ir.tensor(data.astype(dtype)))
        value.dtype = ir.DataType.from_numpy(np.dtype(dtype))
        value.shape = ir.Shape(data.shape)
        self.graph.register_initializer(value)
        return value

    def op(self, op_type: str, inputs: list[ir.Value | None], **attributes) -> ir.Value:
        return self.tape.op(op_type, inputs, attributes or None, name=self.name(op_type))

    def cast(self, value: ir.Value, dtype: ir.DataType) -> ir.Value:
        out = self.op("Cast", [value], to=dtype)
        out.dtype = dtype
        return out

    def to_int64(self, value: ir.Value) -> ir.Value:
        return value if value.dtype == INT64 else self.cast(value, INT64)

    def axes(self, axes: list[int]) -> ir.Value:
        return self.const(np.array(axes, np.int64), hint="axes")
