"""Tiny helpers to build ONNX test graphs with onnx.helper and load them into onnx_ir."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
from onnx import TensorProto, helper, numpy_helper


def model(nodes, inputs, outputs, initializers=(), opset=18, extra_opsets=()) -> ir.Model:
    """An onnx_ir model of one graph `g` with the given nodes, I/O and initializers."""
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    opsets = [helper.make_opsetid("", opset), *extra_opsets]
    proto = helper.make_model(graph, opset_imports=opsets, producer_name="test")
    return ir.serde.deserialize_model(proto)


def weight(name, shape, dtype=np.float32):
    """An initializer of ones."""
    return numpy_helper.from_array(np.ones(shape, dtype=dtype), name)


def value_info(name, shape, elem=TensorProto.FLOAT):
    """A graph input/output declaration."""
    return helper.make_tensor_value_info(name, elem, shape)
