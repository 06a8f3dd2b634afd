"""EfficientTAM → several ONNX graphs (image encoder, prompt+mask decoder, memory encoder,
memory attention), each verified against PyTorch with ONNX Runtime.

The cut and each graph's inputs and outputs are `edgec.models.efficienttam.graphs`; the
memory bank that connects them runs in host code (`edgec.models.efficienttam.tracker`).
`export_graphs` writes `<out_dir>/<graph>.onnx` plus `graphs.json`, which lists every graph
with its inputs, outputs, dynamic dimensions, when the host runs it, which graph feeds which,
and the verification figure (max |Δ| vs PyTorch, bound 5e-5·max(1, max|ref|)). RoPE is real
cos/sin arithmetic (no complex tensors), so every graph is plain opset-18 ONNX.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx_ir as ir
import torch

from edgec.errors import UserError
from edgec.exporters.export import OPSET, _first_line, _quiet
from edgec.graph_stats import describe_value
from edgec.models.efficienttam.graphs import GraphSpec, graph_specs
from edgec.models.efficienttam.model import EfficientTAM

TOLERANCE = 5e-5
MANIFEST = "graphs.json"
# Which graph output feeds which graph input (the host carries them, through the bank).
CONNECTIONS = (
    ("image_encoder.vision_features_no_mem", "prompt_mask_decoder*.image_embed", "prompted frame"),
    ("image_encoder.vision_features", "memory_attention*.vision_features", "tracked frames"),
    ("memory_attention*.pix_feat_with_mem", "prompt_mask_decoder.image_embed", "tracked frames"),
    ("image_encoder.vision_features", "memory_encoder.vision_features", "every frame"),
    ("prompt_mask_decoder*.best_mask", "memory_encoder.mask", "every frame"),
    (
        "memory_encoder.maskmem_features",
        "memory_attention*.memory_features",
        "memory bank, last 6 frames + prompted frames (stored as bfloat16)",
    ),
    (
        "prompt_mask_decoder*.obj_ptr",
        "memory_attention*.obj_ptrs",
        "memory bank, last 15 frames + prompted frames",
    ),
)


def dynamic_record(spec: GraphSpec) -> dict:
    """The graph's dynamic dimensions for a manifest: input → {axis: [name, min, max]}."""
    return {k: {str(a): list(d) for a, d in v.items()} for k, v in spec.dynamic.items()}


def graph_record(spec: GraphSpec, model: ir.Model) -> dict:
    """A graph's entry in a manifest (graphs.json, a compile's `graphs[]`): its name, when the
    host runs it, the ONNX graph's inputs and outputs, and `spec`'s dynamic dims."""
    return {
        "name": spec.name,
        "used_when": spec.used_when,
        "inputs": [describe_value(v) for v in model.graph.inputs],
        "outputs": [describe_value(v) for v in model.graph.outputs],
        "dynamic": dynamic_record(spec),
    }


def dim_ranges(spec: GraphSpec) -> dict[str, list[int]]:
    """Each dynamic dim's [min, opt, max], opt = its size in the example inputs."""
    return {
        dim: [lo, int(spec.inputs[name].shape[axis]), hi]
        for name, axes in spec.dynamic.items()
        for axis, (dim, lo, hi) in axes.items()
    }


def export_graph(spec: GraphSpec) -> ir.Model:
    """Export one graph with its named inputs/outputs and dynamic dims (dynamo, opset 18).

    The dims' ranges go into the model's metadata `edgec.dim_ranges` (JSON, `dim_ranges`):
    runtimes that build for a shape range (TensorRT's optimisation profile) read them there.
    """
    dims = {}
    shapes = {}
    for name, axes in spec.dynamic.items():
        shapes[name] = {}
        for axis, (dim, lo, hi) in axes.items():
            dims.setdefault(dim, torch.export.Dim(dim, min=lo, max=hi))
            shapes[name][axis] = dims[dim]
    dynamic_shapes = {name: shapes.get(name, {}) for name in spec.inputs} if shapes else None
    try:
        with _quiet(), torch.inference_mode(False):
            program = torch.onnx.export(
                spec.module,
                (),
                kwargs=dict(spec.inputs),
                input_names=list(spec.inputs),
                output_names=list(spec.outputs),
                opset_version=OPSET,
                dynamo=True,
                dynamic_shapes=dynamic_shapes,
            )
    except Exception as exc:
        raise UserError(
            f"EfficientTAM graph {spec.name!r} failed to export: "
            f"{type(exc).__name__}: {_first_line(exc)}",
            "report this with the model name and image size",
        ) from exc
    if spec.dynamic:
        program.model.metadata_props["edgec.dim_ranges"] = json.dumps(dim_ranges(spec))
    return program.model


def torch_reference(spec: GraphSpec, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The graph's PyTorch outputs on numpy inputs."""
    with torch.inference_mode():
        out = spec.module(**{k: torch.from_numpy(v) for k, v in inputs.items()})
    out = out if isinstance(out, tuple) else (out,)
    return [t.float().numpy() for t in out]


def max_error(got: list[np.ndarray], ref: list[np.ndarray]) -> tuple[float, float]:
    """(max |Δ| over outputs, the bound 5e-5·max(1, max|ref|) of the worst output)."""
    worst, bound = 0.0, TOLERANCE
    for a, b in zip(got, ref, strict=True):
        err = float(np.max(np.abs(a - b))) if a.size else 0.0
        lim = TOLERANCE * max(1.0, float(np.max(np.abs(b))) if b.size else 1.0)
        if err / lim > worst / bound:
            worst, bound = err, lim
    return worst, bound


def host_contract(model: EfficientTAM) -> dict:
    """What the app's host code must do between the graphs (memory bank, preprocessing)."""
    return {
        "num_maskmem": model.num_maskmem,
        "max_obj_ptrs": model.max_obj_ptrs_in_encoder,
        "memory_tpos": "index into maskmem_tpos_enc: 6 for a prompted frame, k - 1 for "
        "the frame k frames back (k = 1..6)",
        "preprocessing": "RGB resized to S×S, /255, ImageNet mean/std",
    }


def export_graphs(model: EfficientTAM, out_dir: Path, *, verify: bool = True) -> dict:
    """Write every graph of `model` to `out_dir` and the graphs manifest; returns the manifest.

    With `verify`, each graph runs in ONNX Runtime (optimisations off) on its example inputs
    and must match PyTorch within the bound, else `UserError`.
    """
    from edgec.models.efficienttam.runners import OrtGraphs

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.eval()
    entries = []
    for spec in graph_specs(model):
        onnx_model = export_graph(spec)
        path = out_dir / f"{spec.name}.onnx"
        ir.save(onnx_model, path)
        entry = {**graph_record(spec, onnx_model), "file": path.name}
        if verify:
            feeds = {k: v.numpy() for k, v in spec.inputs.items()}
            got = OrtGraphs({spec.name: path})(spec.name, feeds)
            err, bound = max_error([got[n] for n in spec.outputs], torch_reference(spec, feeds))
            if not err <= bound:
                raise UserError(
                    f"EfficientTAM graph {spec.name!r}: ONNX Runtime differs from PyTorch by "
                    f"{err:.3g} (bound {bound:.3g})",
                    "report this with the model name and image size",
                )
            entry["verification"] = {"max_abs_diff": err, "bound": bound, "runtime": "onnxruntime"}
        entries.append(entry)
    manifest = {
        "family": "EfficientTAM",
        "variant": model.config.name,
        "image_size": model.image_size,
        "opset": OPSET,
        "graphs": entries,
        "connections": [{"from": a, "to": b, "when": w} for a, b, w in CONNECTIONS],
        "host": host_contract(model),
    }
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest
