"""Run a float graph on calibration samples and observe chosen intermediate tensors.

The graph is copied with the observed tensors added as outputs and run in ONNX Runtime (CPU,
graph optimizations off, so the values are those of the graph as written), one sample at a
time. Also used by the sensitivity analysis to score candidate graphs.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import onnx_ir as ir


def session(model: ir.Model, extra_outputs: list[str] = ()):
    """An ORT session of a copy of `model` that also outputs the tensors `extra_outputs`."""
    import onnxruntime as ort

    proto = ir.serde.serialize_model(model)
    present = {o.name for o in proto.graph.output}
    for name in extra_outputs:
        if name not in present:
            proto.graph.output.add().name = name
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 3
    return ort.InferenceSession(proto.SerializeToString(), so, providers=["CPUExecutionProvider"])


def observe(
    model: ir.Model, samples: np.ndarray, names: list[str]
) -> Iterator[dict[str, np.ndarray]]:
    """For each sample, the values of the tensors `names` (name → array)."""
    sess = session(model, names)
    input_name = model.graph.inputs[0].name
    for sample in samples:
        yield dict(zip(names, sess.run(names, {input_name: sample[None]}), strict=True))


def outputs(model: ir.Model, samples: np.ndarray) -> np.ndarray:
    """The first graph output on every sample, stacked (N × …)."""
    sess = session(model)
    input_name = model.graph.inputs[0].name
    first = sess.get_outputs()[0].name
    return np.concatenate([sess.run([first], {input_name: s[None]})[0] for s in samples])
