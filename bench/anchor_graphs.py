"""Export the graph of every anchor network as a weight-free "skeleton" ONNX file.

The cost model needs shapes, not weight values, so each exported graph is saved with every
tensor above 4 KB moved to an external-data file that is then deleted: the `.onnx` that is kept
holds the whole graph, every shape and the small integer tensors (Reshape targets, axes) in a
few hundred KB. `bench/estimator.py` reads these files; onnx_ir loads them without the data.

Each network is built without weights (timm `pretrained=False`; SegFormer-B0 from its default
Hugging Face config), put in its deployment form (`timm.utils.reparameterize_model`: MobileOne,
FastViT and RepViT are measured re-parameterised) and exported by edgec's own exporter
(torch.onnx dynamo, opset 18) at the anchor's resolution and batch 1.

    python bench/anchor_graphs.py --out bench/results/anchor_graphs --jobs 4

Exporting ~40 networks takes tens of minutes on two cores; it was run once on a 16-core
machine and the skeletons kept (see docs/latency.md).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from anchor_models import BUILDERS, graph_file

ANCHORS = Path(__file__).resolve().parents[2] / "shared" / "reference" / "latency_anchors.json"


def wanted(anchor_files: list[Path]) -> list[tuple[str, list[int]]]:
    """(model, [H, W]) of every anchor whose network edgec can rebuild, without repeats."""
    records = [
        r for path in anchor_files for r in json.loads(path.read_text(encoding="utf-8"))["records"]
    ]
    seen: dict[str, tuple[str, list[int]]] = {}
    for r in records:
        if r["model"] in BUILDERS and r.get("resolution"):
            seen.setdefault(graph_file(r["model"], r["resolution"]), (r["model"], r["resolution"]))
    return sorted(seen.values())


def build(model: str):
    import torch

    spec = BUILDERS[model]
    torch.manual_seed(0)
    if spec == "transformers:segformer-b0":
        from transformers import SegformerConfig, SegformerForSemanticSegmentation

        net = SegformerForSemanticSegmentation(SegformerConfig(num_labels=150)).eval()

        class LogitsOnly(torch.nn.Module):  # the exporter wants tensors, not a ModelOutput
            def __init__(self):
                super().__init__()
                self.net = net

            def forward(self, x):
                return self.net(pixel_values=x).logits

        return LogitsOnly().eval()
    import timm
    from timm.utils.model import reparameterize_model

    return reparameterize_model(timm.create_model(spec, pretrained=False).eval())


def export_one(job: tuple[str, list[int], str]) -> tuple[str, str]:
    model, resolution, out_dir = job
    import onnx_ir as ir
    import torch

    torch.set_num_threads(1)
    from edgec.exporters.export import export_onnx

    name = graph_file(model, resolution)
    target = Path(out_dir) / name
    if target.exists():
        return name, "cached"
    start = time.perf_counter()
    try:
        graph = export_onnx(build(model), (3, *resolution))
    except Exception as exc:  # one network that fails to export must not stop the rest
        return name, f"failed: {type(exc).__name__}: {str(exc)[:200]}"
    weights = target.with_suffix(".weights")
    ir.save(graph, target, external_data=weights.name, size_threshold_bytes=4096)
    weights.unlink(missing_ok=True)
    return name, f"{time.perf_counter() - start:.0f} s, {len(graph.graph)} nodes"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--anchors", type=Path, nargs="+", default=[ANCHORS])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--jobs", type=int, default=max(1, (os.cpu_count() or 2) // 2))
    parser.add_argument("--models", nargs="*", help="only these anchor model names")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    jobs = [
        (m, res, str(args.out))
        for m, res in wanted(args.anchors)
        if not args.models or m in args.models
    ]
    with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
        for name, status in pool.imap_unordered(export_one, jobs):
            print(f"{name:<40} {status}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
