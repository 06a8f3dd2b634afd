"""Integer-only fidelity on real data: the trained EfficientViT-M0 CIFAR-10 checkpoint
(../shared/models/efficientvit_m0_cifar10.pt) compiled fp32 and `integer::int_only`, top-1 on
../shared/data/cifar10_test.npz, plus ONNX Runtime latency (1 thread) of both.

Calibration: the first `--calib` test images (preprocessed as the checkpoint's JSON says);
evaluation: the next `--count` images, disjoint from the calibration ones.

    python bench/int_only.py --count 2000 --calib 64

Prints a table and saves bench/results/int_only.json.
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx_ir as ir
import onnxruntime as ort
import torch
from PIL import Image

import edgec.passes  # noqa: F401  (registers the passes)
from edgec.exporters.export import export_onnx
from edgec.exporters.load import load_model
from edgec.pass_manager import create_pass, run_passes
from edgec.passes.integer.checker import check_int_only
from edgec.pipelines import pipeline

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
MEAN, STD = [0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616]


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
    x = (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    return x.numpy(), d["labels"][index]


def session(model: ir.Model) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    proto = ir.to_proto(model).SerializeToString()
    return ort.InferenceSession(proto, so, providers=["CPUExecutionProvider"])


def evaluate(sess: ort.InferenceSession, x: np.ndarray) -> np.ndarray:
    name = sess.get_inputs()[0].name
    return np.concatenate([sess.run(None, {name: x[i : i + 1]})[0] for i in range(len(x))])


def latency_ms(sess: ort.InferenceSession, x: np.ndarray, runs: int = 30) -> float:
    name = sess.get_inputs()[0].name
    for _ in range(5):
        sess.run(None, {name: x[:1]})
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        sess.run(None, {name: x[:1]})
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--calib", type=int, default=64)
    parser.add_argument("--method", default="minmax")
    args = parser.parse_args()
    loaded = load_model(
        str(SHARED / "models" / "efficientvit_m0_cifar10.pt"),
        arch="efficientvit_m0",
        num_classes=10,
    )
    model = export_onnx(loaded.module, (3, 224, 224))
    run_passes(model, pipeline("cleanup"))
    float_sess = session(model)
    calib, _ = cifar(0, args.calib)
    x, labels = cifar(args.calib, args.count)
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "calib.npy", calib)
        start = time.perf_counter()
        create_pass(
            "integer::int_only",
            {"data": str(Path(tmp) / "calib.npy"), "count": args.calib, "method": args.method},
        )(model)
        compile_s = time.perf_counter() - start
    report = check_int_only(model)
    int_sess = session(model)
    ref, got = evaluate(float_sess, x), evaluate(int_sess, x)
    cos = np.sum(ref * got, 1) / np.linalg.norm(ref, axis=1) / np.linalg.norm(got, axis=1)
    result = {
        "images": args.count,
        "calibration_images": args.calib,
        "method": args.method,
        "top1_fp32": float((ref.argmax(1) == labels).mean()),
        "top1_int_only": float((got.argmax(1) == labels).mean()),
        "top1_agreement": float((ref.argmax(1) == got.argmax(1)).mean()),
        "cosine_mean": float(cos.mean()),
        "int_only": report.int_only,
        "ops": report.ops,
        "int_only_pass_s": round(compile_s, 1),
        "latency_ms_1_thread": {
            "fp32": latency_ms(float_sess, x),
            "int_only": latency_ms(int_sess, x),
        },
    }
    print(json.dumps(result, indent=1))
    out = ROOT / "bench" / "results" / "int_only.json"
    out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
