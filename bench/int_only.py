"""Integer-only fidelity on real data and ONNX Runtime latency of fp32 vs W8A8 vs int-only.

Every model is exported once and cleaned (`cleanup`); the three variants start from that
graph: fp32 as is, W8A8 by the `--precision w8a8` ORT passes (`quant_plan.quant_passes`),
int-only by `integer::int_only`. Calibration uses the first `--calib` samples, evaluation the
next `--count` (disjoint).

- `efficientvit_m0_cifar10`: the trained checkpoint ../shared/models/efficientvit_m0_cifar10.pt,
  top-1 on ../shared/data/cifar10_test.npz (a seeded shuffle of the class-sorted file).
- `segmenter_vit_tiny_mask`, `segmenter_vit_tiny_linear`, `isegmenter_vit_tiny` (150 classes)
  and `shvit_s1`: **seeded-init weights** (no trained checkpoint ships here), on the real photos
  of ../shared/data/imagenet_samples.npz. Segmenters at `--seg-size`² (the 32×32 position
  table is resized to the grid and folded at compile time): output cosine similarity to fp32,
  and mask agreement — mIoU of the argmax masks against the fp32 argmax masks, over the
  classes either holds, pooled over the images — plus pixel agreement. SHViT-S1: cosine and
  top-1 agreement with fp32.

Latency: 1 thread, variants interleaved round by round; p50 wall-clock
(`runtimes.measure.measure_interleaved`) and the median thread CPU time per inference (what a
shared, loaded machine does not inflate).

    python bench/int_only.py --count 16 --calib 8 --seg-size 256

Prints JSON and saves bench/results/int_only.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx_ir as ir
import onnxruntime as ort
import torch
from PIL import Image

import edgec.passes  # noqa: F401  (registers the passes)
from edgec.config import CompileConfig
from edgec.device_profile import all_profiles, host_facts
from edgec.exporters.export import export_onnx
from edgec.exporters.load import load_model
from edgec.models import create
from edgec.pass_manager import run_passes
from edgec.passes.integer.checker import check_int_only
from edgec.passes.quant.calibrate import model_preprocessing
from edgec.pipelines import pipeline
from edgec.preprocess import read_model_inputs
from edgec.quant_plan import quant_options, quant_passes
from edgec.runtimes.measure import measure_interleaved

sys.path.insert(0, str(Path(__file__).parent))
from quant import cpu_ms_interleaved

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
PHOTOS = SHARED / "data" / "imagenet_samples.npz"
CIFAR_MEAN, CIFAR_STD = [0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616]
M0_CIFAR = "efficientvit_m0_cifar10"
SEGMENTERS = ("segmenter_vit_tiny_mask", "segmenter_vit_tiny_linear", "isegmenter_vit_tiny")
MODELS = (M0_CIFAR, *SEGMENTERS, "shvit_s1")
HOST = all_profiles()["host"]


def cifar(first: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Model-ready N×3×224×224 float32 CIFAR-10 test images [first, first+count) and labels."""
    d = np.load(SHARED / "data" / "cifar10_test.npz")
    jpeg, off = d["jpeg"], d["offsets"]
    # class-sorted file: a stride covers every class
    index = np.arange(10000)[np.random.default_rng(0).permutation(10000)][first : first + count]
    images = np.stack([
        np.asarray(Image.open(io.BytesIO(jpeg[off[i] : off[i + 1]].tobytes())).convert("RGB"))
        for i in index
    ])  # fmt: skip
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    x = torch.nn.functional.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False)
    x = (x - torch.tensor(CIFAR_MEAN).view(1, 3, 1, 1)) / torch.tensor(CIFAR_STD).view(1, 3, 1, 1)
    return x.numpy(), d["labels"][index]


def float_graph(name: str, seg_size: int) -> ir.Model:
    if name == M0_CIFAR:
        path = SHARED / "models" / "efficientvit_m0_cifar10.pt"
        module = load_model(str(path), arch="efficientvit_m0", num_classes=10).module
        size = 224
    else:
        torch.manual_seed(0)
        module = create(name).eval()
        size = seg_size if name in SEGMENTERS else 224
    model = export_onnx(module, (3, size, size))
    run_passes(model, pipeline("cleanup"))
    return model


def samples(name: str, model: ir.Model, calib: int, count: int):
    """(calibration inputs, evaluation inputs, evaluation labels or None)."""
    if name == M0_CIFAR:
        (x, _), (y, labels) = cifar(0, calib), cifar(calib, count)
        return x, y, labels
    x = read_model_inputs(PHOTOS, model_preprocessing(model), calib + count)
    return x[:calib], x[calib:], None


def variants(model: ir.Model, calib_path: Path, calib: int) -> dict[str, ir.Model]:
    """fp32, and W8A8 / int-only as `edgec compile --target host --precision …` quantizes."""
    graphs = {"fp32": model}
    for precision in ("w8a8", "int-only"):
        config = CompileConfig(model="-", precision=precision, calib=str(calib_path))
        config = dataclasses.replace(config, calib_count=calib)
        graph = ir.serde.deserialize_model(ir.serde.serialize_model(model))
        run_passes(graph, quant_passes(precision, "onnxruntime"), quant_options(config, HOST))
        graphs[precision.replace("-", "_")] = graph
    return graphs


def session(model: ir.Model) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = 1, 1
    so.log_severity_level = 3
    proto = ir.to_proto(model).SerializeToString()
    return ort.InferenceSession(proto, so, providers=["CPUExecutionProvider"])


def outputs(sess: ort.InferenceSession, x: np.ndarray) -> np.ndarray:
    name = sess.get_inputs()[0].name
    return np.concatenate([sess.run(None, {name: x[i : i + 1]})[0] for i in range(len(x))])


def cosines(ref: np.ndarray, got: np.ndarray) -> np.ndarray:
    a, b = ref.reshape(len(ref), -1), got.reshape(len(got), -1)
    return np.sum(a * b, 1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def mask_iou(ref: np.ndarray, got: np.ndarray) -> float:
    """mIoU of argmax masks `got` against `ref` (N×H×W), over the classes either holds."""
    ious = []
    for c in np.union1d(np.unique(ref), np.unique(got)):
        a, b = ref == c, got == c
        ious.append((a & b).sum() / (a | b).sum())
    return float(np.mean(ious))


def fidelity(name: str, out: dict[str, np.ndarray], labels) -> dict:
    ref, result = out["fp32"], {}
    if labels is not None:
        result["top1"] = {k: float((v.argmax(1) == labels).mean()) for k, v in out.items()}
    for tag in ("w8a8", "int_only"):
        cos = cosines(ref, out[tag])
        row = {"cosine_mean": float(cos.mean()), "cosine_min": float(cos.min())}
        if name in SEGMENTERS:
            masks_ref, masks = ref.argmax(1), out[tag].argmax(1)
            row["mask_miou_vs_fp32"] = mask_iou(masks_ref, masks)
            row["pixel_agreement"] = float((masks_ref == masks).mean())
        else:
            row["top1_agreement"] = float((ref.argmax(1) == out[tag].argmax(1)).mean())
        result[tag] = row
    return result


def latency(sessions: dict[str, ort.InferenceSession], x: np.ndarray, rounds: int, per_round: int):
    name = next(iter(sessions.values())).get_inputs()[0].name
    fns = {tag: (lambda s=s: s.run(None, {name: x[:1]})) for tag, s in sessions.items()}
    wall = measure_interleaved(fns, rounds=rounds, per_round=per_round, warmup=2, threads=1)
    cpu = cpu_ms_interleaved(fns, rounds, per_round)
    return {
        "p50_ms": {tag: round(s.p50_ms, 3) for tag, s in wall.items()},
        "cpu_ms": {tag: round(v, 3) for tag, v in cpu.items()},
    }


def bench_model(name: str, args) -> dict:
    start = time.perf_counter()
    model = float_graph(name, args.seg_size)
    calib_x, x, labels = samples(name, model, args.calib, args.count)
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "calib.npy", calib_x)
        graphs = variants(model, Path(tmp) / "calib.npy", args.calib)
    report = check_int_only(graphs["int_only"])
    sessions = {tag: session(g) for tag, g in graphs.items()}
    out = {tag: outputs(s, x) for tag, s in sessions.items()}
    return {
        "weights": "trained (CIFAR-10)" if name == M0_CIFAR else "seeded init (torch seed 0)",
        "input": list(x.shape[1:]),
        "images": len(x),
        "calibration_images": args.calib,
        **fidelity(name, out, labels),
        "int_only_checker": report.int_only,
        "int_only_nodes": sum(report.ops.values()),
        "latency_1_thread": latency(sessions, x, args.rounds, args.per_round),
        "bench_s": round(time.perf_counter() - start, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--count", type=int, default=16, help="evaluation samples per model")
    parser.add_argument("--calib", type=int, default=8)
    parser.add_argument("--seg-size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--per-round", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "int_only.json")
    args = parser.parse_args()
    results = {}
    for name in args.models:
        results[name] = bench_model(name, args)
        print(name, json.dumps(results[name], indent=1), flush=True)
    settings = {k: v for k, v in vars(args).items() if k not in ("models", "out")}
    report = {"settings": settings, "host": host_facts(), "models": results}
    args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
