"""Static shapes of graph values, as the cost counters in `edgec.graph_costs` need them.

`recorded_shape(value)` is the shape the graph records on a value (a constant: its tensor's
shape). `inferred_shapes(model, dims)` runs `onnx.shape_inference.infer_shapes(...,
data_prop=True)` on a proto copy of the model, never on the model itself. Only fully static
shapes are returned: a shape with a symbolic or unknown dimension counts as unknown, so the
caller reports the node as uncounted rather than guessing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import onnx
import onnx_ir as ir

__all__ = [
    "ShapeFn",
    "inferred_shapes",
    "node_input",
    "node_output",
    "numel",
    "recorded_shape",
    "static_shape",
]

# value -> its static shape, or None when unknown (or the value is absent).
ShapeFn = Callable[["ir.Value | None"], "tuple[int, ...] | None"]

# Integer initializers up to this many elements stay in the copy: data propagation reads
# them (Reshape targets, Slice bounds, …). Every other weight only needs its type and shape.
_KEPT_INT_ELEMENTS = 4096


def recorded_shape(value: ir.Value | None) -> tuple[int, ...] | None:
    """The value's static shape as recorded on the graph (constants: their tensor's shape)."""
    if value is None:
        return None
    if value.const_value is not None:
        return tuple(value.const_value.shape)
    return static_shape(value.shape)


def static_shape(shape: ir.Shape | None) -> tuple[int, ...] | None:
    """`shape` as ints, or None when it is absent or has a symbolic or unknown dimension."""
    if shape is None:
        return None
    dims = tuple(shape)
    return dims if all(isinstance(d, int) and d >= 0 for d in dims) else None


def inferred_shapes(model: ir.Model, dims: Mapping[str, int]) -> dict[str, tuple[int, ...]]:
    """Static shapes of the main graph's values after ONNX shape inference on a proto copy.

    Weights other than small integer tensors become typed graph inputs in the copy: their
    values are not needed (data propagation only follows int shape tensors) and the copy then
    stays far below protobuf's 2 GB limit. Symbolic input dims named in `dims` are bound.
    """
    proto = ir.serde.serialize_model(model)
    graph = proto.graph
    input_names = {i.name for i in graph.input}
    kept = []
    for init in graph.initializer:
        small_int = init.data_type in (onnx.TensorProto.INT64, onnx.TensorProto.INT32) and (
            math.prod(init.dims) <= _KEPT_INT_ELEMENTS
        )
        if small_int:
            kept.append(init)
        elif init.name not in input_names:
            graph.input.append(
                onnx.helper.make_tensor_value_info(init.name, init.data_type, list(init.dims))
            )
    del graph.initializer[:]
    graph.initializer.extend(kept)
    for inp in graph.input:
        for dim in inp.type.tensor_type.shape.dim:
            if dim.HasField("dim_param") and dim.dim_param in dims:
                dim.dim_value = int(dims[dim.dim_param])
    inferred = onnx.shape_inference.infer_shapes(proto, strict_mode=False, data_prop=True)

    shapes: dict[str, tuple[int, ...]] = {}
    g = inferred.graph
    for info in [*g.input, *g.value_info, *g.output]:
        tensor_type = info.type.tensor_type
        if not tensor_type.HasField("shape"):
            continue
        dim_values = [
            d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim
        ]
        if all(d is not None for d in dim_values):
            shapes[info.name] = tuple(dim_values)
    for init in g.initializer:
        shapes[init.name] = tuple(init.dims)
    return shapes


def node_input(node: ir.Node, i: int) -> ir.Value | None:
    """The node's i-th input, or None when it has fewer (an omitted optional input is None)."""
    return node.inputs[i] if i < len(node.inputs) else None


def node_output(node: ir.Node, i: int) -> ir.Value | None:
    """The node's i-th output, or None when it has fewer."""
    return node.outputs[i] if i < len(node.outputs) else None


def numel(shape: tuple[int, ...] | None) -> int | None:
    """Element count of a static shape; None stays None."""
    return None if shape is None else math.prod(shape)
