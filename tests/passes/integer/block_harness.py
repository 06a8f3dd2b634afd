"""Run one integer builder as a tiny ONNX graph in ONNX Runtime (CPU, optimizations off)."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import onnxruntime as ort

from edgec.passes.integer.checker import check_int_only
from edgec.passes.integer.emit import INT32, Emitter, QTensor


def run_block(build, inputs: list[tuple[np.ndarray, float, int]]):
    """`build(em, *qtensors) -> QTensor` on int32 inputs (array, scale, bits); returns the
    output array and its QTensor (scale, bits). The graph must be integer-only."""
    graph = ir.Graph([], [], nodes=[], opset_imports={"": 18}, name="block")
    qs = []
    for k, (array, scale, bits) in enumerate(inputs):
        value = ir.Value(name=f"x{k}", type=ir.TensorType(INT32), shape=ir.Shape(array.shape))
        graph.inputs.append(value)
        qs.append(QTensor(value, scale, bits))
    out = build(Emitter(graph), *qs)
    out.value.name = "y"
    graph.outputs.append(out.value)
    model = ir.Model(graph, ir_version=10)
    report = check_int_only(model)
    assert report.int_only, report.text()
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.intra_op_num_threads = 1
    proto = ir.to_proto(model).SerializeToString()
    session = ort.InferenceSession(proto, so, providers=["CPUExecutionProvider"])
    feeds = {f"x{k}": a.astype(np.int32) for k, (a, _, _) in enumerate(inputs)}
    return session.run(None, feeds)[0], out
