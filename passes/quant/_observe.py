"""Run a float graph on calibration samples and observe chosen intermediate tensors.

The graph is copied with the observed tensors added as outputs and run in ONNX Runtime (CPU,
graph optimizations off, so the values are those of the graph as written), one sample at a
time. Also used by the sensitivity analysis to score candidate graphs.

`Samples` are a model-ready batch (N × input shape, one sample of a single-input graph per
row) or a list of feed dicts (a multi-input graph; `edgec.sample_feeds`).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import onnx_ir as ir

Samples = np.ndarray | list[dict[str, np.ndarray]]


def feeds_of(model: ir.Model, samples: Samples) -> Iterator[dict[str, np.ndarray]]:
    """Each sample as the feeds of one run of `model` (a batch row gets its batch dim back)."""
    if isinstance(samples, np.ndarray):
        input_name = model.graph.inputs[0].name
        for sample in samples:
            yield {input_name: sample[None]}
    else:
        yield from samples


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


def observe(model: ir.Model, samples: Samples, names: list[str]) -> Iterator[dict[str, np.ndarray]]:
    """For each sample, the values of the tensors `names` (name → array)."""
    sess = session(model, names)
    for feeds in feeds_of(model, samples):
        yield dict(zip(names, sess.run(names, feeds), strict=True))


def outputs(model: ir.Model, samples: Samples) -> np.ndarray:
    """The first graph output on every sample, concatenated on the batch axis (N × …)."""
    sess = session(model)
    first = sess.get_outputs()[0].name
    return np.concatenate([sess.run([first], feeds)[0] for feeds in feeds_of(model, samples)])
