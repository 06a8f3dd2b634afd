"""Does a graph compute what its reference computes? Inputs, reference outputs, the check.

Graphs run in ONNX Runtime with every graph optimization off (so ORT's own rewrites cannot
hide a wrong export or pass), one sample at a time, and are held to the float bound of the
architecture: max |Δ| ≤ 5e-5·max(1, max|ref|) per output.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx_ir as ir

from edgec.errors import UserError, VerificationError
from edgec.preprocess import Preprocessing, read_model_inputs

Outputs = dict[str, np.ndarray]


def verification_inputs(
    model: ir.Model, preprocessing: Preprocessing, images: str | None, count: int
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The model-ready batch to verify on (user data or edgec's synthetic inputs) and a record.

    Image models (N×C×H×W) verify on images; volumetric ones (N×C×D×H×W) on volumes.
    """
    graph_input = model.graph.inputs[0]
    dims = [d if isinstance(d, int) else None for d in graph_input.shape]
    if len(model.graph.inputs) != 1 or len(dims) not in (4, 5) or None in dims[1:]:
        raise UserError(
            f"model inputs {[v.name for v in model.graph.inputs]} (first: shape "
            f"{list(graph_input.shape)}): edgec compiles single-input N×C×H×W image and "
            "N×C×D×H×W volume models with static sizes after the batch",
            "export the model with one input of a fixed size (or pass --input-size)",
        )
    size = tuple(dims[1:])
    if size != tuple(preprocessing.input_size):
        preprocessing = Preprocessing.from_dict({**preprocessing.to_dict(), "input_size": size})
    what = "volumes" if preprocessing.volumetric else "images"
    if images:
        batch = read_model_inputs(Path(images), preprocessing, count)
        info = {"source": str(images), "count": len(batch), "kind": f"user {what}"}
    else:
        batch = preprocessing.synthetic_inputs(count)
        info = {"source": f"edgec synthetic {what} (seed 0)", "count": count, "kind": "synthetic"}
    return {graph_input.name: batch}, info


class GraphChecker:
    """Runs graphs on fixed inputs and compares their outputs with a reference.

    A single-input batch runs one sample at a time (batch 1, the size graphs are exported
    at); several named inputs (e.g. one graph of a multi-graph model) run together once.
    """

    def __init__(self, feeds: dict[str, np.ndarray], scratch: Path):
        self.feeds = feeds
        self.scratch = scratch

    def run(self, model: ir.Model) -> Outputs:
        """`model`'s outputs on the feeds (ORT, optimizations off)."""
        from edgec.runtimes import ort

        path = self.scratch / "check.onnx"
        ir.save(model, path)
        runner = ort.load(path, threads=1, optimization="disabled")
        if len(self.feeds) > 1:
            return runner.run(self.feeds)
        ((name, batch),) = self.feeds.items()
        results = [runner.run({name: sample[None]}) for sample in batch]
        return {k: np.concatenate([r[k] for r in results]) for k in results[0]}

    def torch_reference(self, module, output_names: list[str]) -> Outputs:
        """The PyTorch module's outputs on the same batch, one sample at a time."""
        from edgec.exporters.export import torch_outputs

        ((_, batch),) = self.feeds.items()
        outputs = [torch_outputs(module, sample[None]) for sample in batch]
        return {n: np.concatenate([o[k] for o in outputs]) for k, n in enumerate(output_names)}

    def check(self, reference: Outputs, model: ir.Model, what: str, hint: str, **bounds) -> tuple:
        """Compare `model` with `reference`; raises VerificationError naming `what` if off.

        `bounds` go to `compare_outputs` (quantized graphs: `bound=None, min_cosine=…`).

        Returns (comparison dict for the manifest, the model's outputs).
        """
        from edgec.runtimes.compare import compare_outputs

        outputs = self.run(model)
        result = compare_outputs(reference, outputs, **bounds)
        if not result.passed:
            raise VerificationError(
                f"{what} beyond the bound:\n  " + "\n  ".join(result.failures()), hint
            )
        return result.to_dict(), outputs
