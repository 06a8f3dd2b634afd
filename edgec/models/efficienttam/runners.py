"""Two ways to run the EfficientTAM graphs by name, with the same numpy-in/numpy-out call:
`TorchGraphs` (the PyTorch modules that are exported) and `OrtGraphs` (the exported .onnx
files in ONNX Runtime). The tracker takes either, so both loops are the same host code.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from edgec.models.efficienttam.graphs import graph_specs
from edgec.models.efficienttam.model import EfficientTAM


class TorchGraphs:
    """Run the graph modules of `model` in PyTorch (fp32, inference mode)."""

    def __init__(self, model: EfficientTAM):
        model.eval()
        self.specs = {spec.name: spec for spec in graph_specs(model)}

    def __call__(self, name: str, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        spec = self.specs[name]
        with torch.inference_mode():
            out = spec.module(
                **{k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in feeds.items()}
            )
        out = out if isinstance(out, tuple) else (out,)
        return {n: t.float().numpy() for n, t in zip(spec.outputs, out, strict=True)}


class OrtGraphs:
    """Run exported graphs (name → .onnx path) in ONNX Runtime on the CPU."""

    def __init__(
        self, paths: Mapping[str, str | Path], *, threads: int = 1, optimization: str = "disabled"
    ):
        from edgec.runtimes.ort_session import CPU, import_ort, session_options

        ort = import_ort()
        options = session_options(ort, threads=threads, optimization=optimization)
        self.sessions = {
            name: ort.InferenceSession(str(path), sess_options=options, providers=CPU)
            for name, path in paths.items()
        }

    def __call__(self, name: str, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        session = self.sessions[name]
        wanted = {i.name for i in session.get_inputs()}
        outputs = session.run(None, {k: v for k, v in feeds.items() if k in wanted})
        return {o.name: v for o, v in zip(session.get_outputs(), outputs, strict=True)}
