"""Which ONNX Runtime kernel computes each tensor: `kernels_by_output(model)`.

The model is optimized by ORT at ORT_ENABLE_EXTENDED (the QDQ → QLinear*/QGemm fusions and
constant folding happen there; the NCHWc layout pass of ORT_ENABLE_ALL only changes the
float layout) and read back: `{output tensor name: "domain::op_type" or op_type}` of the
nodes ORT will run. The quantization record reads it to say which kernel runs each layer.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import onnx
import onnx_ir as ir

from edgec.runtimes.ort_proto import model_proto
from edgec.runtimes.ort_session import CPU, import_ort, session_options


def kernels_by_output(model: ir.Model) -> dict[str, str]:
    """Tensor name → the op ORT runs to produce it, after ORT's own graph optimizations."""
    ort = import_ort()
    proto, _ = model_proto(model)
    with tempfile.TemporaryDirectory(prefix="edgec-kernels-") as scratch:
        optimized = Path(scratch) / "optimized.onnx"
        so = session_options(ort, threads=1, optimization="extended")
        so.optimized_model_filepath = str(optimized)
        ort.InferenceSession(proto.SerializeToString(), so, providers=CPU)
        graph = onnx.load(str(optimized), load_external_data=False).graph
    kernels = {}
    for node in graph.node:
        op = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}::{node.op_type}"
        for name in node.output:
            kernels[name] = op
    return kernels
