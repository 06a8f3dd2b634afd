"""Tests for edgec.graph_params: parameter counts, bytes, dtypes and exclusions."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
from onnx import TensorProto, helper, numpy_helper
from support.onnx_build import model as _model
from support.onnx_build import value_info as _vi
from support.onnx_build import weight as _weight

from edgec.graph_stats import graph_stats

FLOAT = TensorProto.FLOAT


def test_parameter_count_dtypes_bytes_and_exclusions():
    w = _weight("w", [16, 8])  # float32: 128 elements, 512 bytes, shared by two MatMuls
    q = numpy_helper.from_array(np.ones([4, 4], dtype=np.int8), "q")  # 16 elements, 16 bytes
    shape = numpy_helper.from_array(np.array([8, 16], dtype=np.int64), "shape")  # excluded
    half = numpy_helper.from_array(np.ones([3], dtype=np.float16), "half")  # 3 el., 6 bytes
    const = helper.make_node("Constant", [], ["k"], name="k", value_float=0.5)  # 1 el., 4 B
    mm1 = helper.make_node("MatMul", ["x", "w"], ["h1"], name="mm1")
    mm2 = helper.make_node("MatMul", ["x", "w"], ["h2"], name="mm2")
    add = helper.make_node("Add", ["h1", "h2"], ["s"], name="add")
    mul = helper.make_node("Mul", ["s", "k"], ["y"], name="mul")
    reshape = helper.make_node("Reshape", ["y", "shape"], ["z"], name="reshape")
    # q and half are unused here: they still count, being in the file.
    model = _model(
        [const, mm1, mm2, add, mul, reshape],
        [_vi("x", [2, 16])],
        [_vi("z", [8, 16])],
        [w, q, shape, half],
    )
    stats = graph_stats(model)
    assert stats.parameter_count == 128 + 16 + 3 + 1
    assert stats.parameter_bytes == 512 + 16 + 6 + 4
    assert stats.parameter_tensors == 4
    assert stats.parameters_by_dtype == {"float32": 129, "int8": 16, "float16": 3}
    assert stats.excluded_elements == 2
    assert stats.macs == 2 * (2 * 16 * 8)


def test_int4_bytes_are_packed():
    tensor = ir.tensor(np.zeros([5], dtype=np.float32), name="unused")
    packed = ir.Tensor(np.zeros([7], dtype=np.uint8), dtype=ir.DataType.INT4, name="w4")
    model = _model([], [_vi("x", [1])], [_vi("x", [1])])
    for t in (tensor, packed):
        model.graph.register_initializer(ir.Value(name=t.name, const_value=t))
    stats = graph_stats(model)
    assert stats.parameter_count == 5 + 7
    assert stats.parameter_bytes == 20 + 4  # seven int4 elements take ceil(7/2) bytes
