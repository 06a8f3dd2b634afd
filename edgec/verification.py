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
    model: ir.Model,
    preprocessing: Preprocessing,
    images: str | None,
    count: int,
    calib: str | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The model-ready batch to verify on and a record of where it came from.

    In order of preference: the user's verification data (`images`); the calibration data
    (`calib`, given for quantized precisions: real inputs, on which a quantized graph's cosine
    says far more than on synthetic pictures far from the training distribution); edgec's
    synthetic inputs. Image models (N×C×H×W) verify on images; volumetric ones (N×C×D×H×W)
    on volumes.
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
    source, kind, purpose = (
        (images, "user", "input data") if images else (calib, "calibration", "--calib")
    )
    if source:
        batch = read_model_inputs(Path(source), preprocessing, count, purpose)
        info = {"source": str(source), "count": len(batch), "kind": f"{kind} {what}"}
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
        self.noise_floor: dict[str, float] = {}  # set by torch_reference

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
        reference = {n: np.concatenate([o[k] for o in outputs]) for k, n in enumerate(output_names)}
        self.noise_floor = _fp32_noise(module, batch, reference)
        return reference

    def check(self, reference: Outputs, model: ir.Model, what: str, hint: str, **bounds) -> tuple:
        """Compare `model` with `reference`; raises VerificationError naming `what` if off.

        `bounds` go to `compare_outputs` (quantized graphs: `bound=None, min_cosine=…`).

        Returns (comparison dict for the manifest, the model's outputs).
        """
        from edgec.runtimes.compare import compare_outputs

        outputs = self.run(model)
        result = compare_outputs(reference, outputs, noise_floor=self.noise_floor, **bounds)
        if not result.passed:
            raise VerificationError(
                f"{what} beyond the bound:\n  " + "\n  ".join(result.failures()), hint
            )
        return result.to_dict(), outputs


def refuse_nan(reference: dict[str, np.ndarray], source: str) -> None:
    """Stop the compile when the reference outputs hold NaN: a broken model would otherwise
    match its broken artifact exactly. `source` names whose outputs they are."""
    for name, values in reference.items():
        if np.isnan(values).any():
            raise UserError(
                f"{source} output {name!r} on the verification inputs holds NaN "
                f"({int(np.isnan(values).sum())} of {values.size} values): the model is "
                "broken, and an artifact that matches it would be too",
                "check the weights (and inputs: --verify-images) for NaN or overflow",
            )


def _fp32_noise(module, batch: np.ndarray, reference: Outputs) -> dict[str, float]:
    """Per output, max |PyTorch fp32 − PyTorch fp64| on the batch: how ill-conditioned the
    model is on these inputs (random weights and noisy images can make fp32 round-off alone
    move logits by whole units). Empty when the module cannot run in float64."""
    import copy

    import torch

    from edgec.exporters.export import torch_outputs

    try:
        twin = copy.deepcopy(module).double().eval()
        with torch.inference_mode():
            exact = [torch_outputs(twin, sample[None].astype(np.float64)) for sample in batch]
    except Exception:  # no float64 twin only means no widening: the strict bound holds
        return {}
    return {
        name: float(np.abs(np.concatenate([o[k] for o in exact]) - ref).max())
        for k, (name, ref) in enumerate(reference.items())
    }


def ill_conditioned_notes(comparison: dict[str, Any]) -> list[str]:
    """Notes for outputs whose budget had to grow to PyTorch's own fp32 noise: there the
    check proves agreement only to that noise, and real inputs would say more."""
    return [
        f"output {o['name']}: PyTorch's own fp32 result is {o['fp32_noise']:.3g} away from "
        f"float64 on the verification inputs (max |output| {o['max_ref']:.3g}), so the check "
        f"allowed {o['allowed']:.3g}; the model is ill-conditioned on them — verify on real "
        "data with --verify-images"
        for o in comparison["outputs"]
        if o.get("fp32_noise") is not None and o["allowed"] == 2 * o["fp32_noise"]
    ]
