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
from edgec.preprocess import Preprocessing, read_images, synthetic_images

Outputs = dict[str, np.ndarray]


def verification_inputs(
    model: ir.Model, preprocessing: Preprocessing, images: str | None, count: int
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The model-ready batch to verify on (user images or edgec's synthetic ones) and a record."""
    graph_input = model.graph.inputs[0]
    dims = [d if isinstance(d, int) else None for d in graph_input.shape]
    if len(model.graph.inputs) != 1 or len(dims) != 4 or None in dims[1:]:
        raise UserError(
            f"model inputs {[v.name for v in model.graph.inputs]} (first: shape "
            f"{list(graph_input.shape)}): edgec compiles single-input N×C×H×W image models "
            "with a static C, H, W",
            "export the model with one image input of a fixed size",
        )
    size = tuple(dims[1:])
    if size != tuple(preprocessing.input_size):
        preprocessing = Preprocessing.from_dict({**preprocessing.to_dict(), "input_size": size})
    if images:
        pictures = read_images(Path(images), limit=count)
        info = {"source": str(images), "count": len(pictures), "kind": "user images"}
    else:
        pictures = synthetic_images(count, size[1], size[2])
        info = {"source": "edgec synthetic images (seed 0)", "count": count, "kind": "synthetic"}
    return {graph_input.name: preprocessing.apply(pictures)}, info


class GraphChecker:
    """Runs graphs on fixed inputs and compares their outputs with a reference."""

    def __init__(self, feeds: dict[str, np.ndarray], scratch: Path):
        ((self.input_name, self.batch),) = feeds.items()
        self.scratch = scratch

    def run(self, model: ir.Model) -> Outputs:
        """`model`'s outputs on the batch (ORT, optimizations off, one sample at a time)."""
        from edgec.runtimes import ort

        path = self.scratch / "check.onnx"
        ir.save(model, path)
        runner = ort.load(path, threads=1, optimization="disabled")
        results = [runner.run({self.input_name: sample[None]}) for sample in self.batch]
        return {k: np.concatenate([r[k] for r in results]) for k in results[0]}

    def torch_reference(self, module, output_names: list[str]) -> Outputs:
        """The PyTorch module's outputs on the same batch, one sample at a time."""
        from edgec.exporters.export import torch_outputs

        outputs = [torch_outputs(module, sample[None]) for sample in self.batch]
        return {n: np.concatenate([o[k] for o in outputs]) for k, n in enumerate(output_names)}

    def check(self, reference: Outputs, model: ir.Model, what: str, hint: str) -> tuple:
        """Compare `model` with `reference`; raises VerificationError naming `what` if off.

        Returns (comparison dict for the manifest, the model's outputs).
        """
        from edgec.runtimes.compare import compare_outputs

        outputs = self.run(model)
        result = compare_outputs(reference, outputs)
        if not result.passed:
            raise VerificationError(
                f"{what} beyond the float bound:\n  " + "\n  ".join(result.failures()), hint
            )
        return result.to_dict(), outputs
