"""W8A8 / W4A8 keep the accuracy of the trained CIFAR-10 EfficientViT-M0 (real data).

The checkpoint and the test images are in ../shared (read-only, present in CI). Calibration:
32 test images (index ≡ 0 mod 40); evaluation: 200 other test images, class-balanced,
prepared as the checkpoint's .json says. fp32 gets 85.43% on the full set. The bounds are
wide enough for 200 images and tight enough to catch a collapse (ORT's default PTQ on
EfficientViT-class models; peers.md §4 B). bench/quant.py measures the full set.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx_ir as ir
import onnxruntime as ort
import pytest

SHARED = Path(__file__).resolve().parents[4] / "shared"
CHECKPOINT = SHARED / "models" / "efficientvit_m0_cifar10.pt"
CIFAR = SHARED / "data" / "cifar10_test.npz"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHECKPOINT.exists(), reason="../shared/models is not checked out"),
]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    torch = pytest.importorskip("torch")
    import edgec.passes  # noqa: F401
    from edgec.exporters.export import export_onnx
    from edgec.exporters.load import load_model
    from edgec.pass_manager import run_passes
    from edgec.pipelines import pipeline
    from edgec.preprocess import read_images

    labels = np.load(CIFAR)["labels"]
    images = np.stack(read_images(CIFAR))
    index = np.arange(len(labels))
    calib = index[index % 40 == 0][:32]
    rest = index[index % 40 != 0]
    evaluation = rest[np.linspace(0, len(rest) - 1, 200).round().astype(int)]

    def ready(idx):
        x = torch.from_numpy(images[idx]).permute(0, 3, 1, 2).float() / 255
        x = torch.nn.functional.interpolate(x, (224, 224), mode="bilinear", align_corners=False)
        mean = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)
        std = torch.tensor([0.2470, 0.2435, 0.2616]).view(1, 3, 1, 1)
        return ((x - mean) / std).numpy()

    work = tmp_path_factory.mktemp("cifar")
    np.save(work / "calib.npy", ready(calib))
    loaded = load_model(str(CHECKPOINT), arch="efficientvit_m0", num_classes=10)
    model = export_onnx(loaded.module, (3, 224, 224))
    run_passes(model, pipeline("default"))
    return model, work / "calib.npy", ready(evaluation), labels[evaluation]


def _top1(model: ir.Model, x: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    so.log_severity_level = 3
    sess = ort.InferenceSession(ir.to_proto(model).SerializeToString(), so)
    name = sess.get_inputs()[0].name
    pred = np.array([sess.run(None, {name: s[None]})[0].argmax() for s in x])
    return float((pred == labels).mean()), pred


def _quantized(model: ir.Model, calib: Path, precision: str) -> ir.Model:
    """The passes `edgec compile --precision P` runs on ORT (7-bit-safe weights, as on AVX2)."""
    from edgec.pass_manager import run_passes
    from edgec.quant_plan import quant_passes

    model = ir.serde.deserialize_model(ir.serde.serialize_model(model))
    options = {
        "quant::calibrate": {"data": str(calib), "count": 32},
        "quant::weights": {"bits": 4 if precision == "w4a8" else 8, "reduce_range": True},
    }
    run_passes(model, quant_passes(precision, "onnxruntime"), options)
    return model


def test_w8a8_and_w4a8_keep_cifar10_accuracy(setup):
    model, calib, x, labels = setup
    fp32, ref = _top1(model, x, labels)
    assert fp32 > 0.8  # the checkpoint is what its .json says
    w8, pred8 = _top1(_quantized(model, calib, "w8a8"), x, labels)
    w4, pred4 = _top1(_quantized(model, calib, "w4a8"), x, labels)
    assert w8 >= fp32 - 0.025 and (pred8 == ref).mean() >= 0.95, (fp32, w8)
    assert w4 >= fp32 - 0.035 and (pred4 == ref).mean() >= 0.92, (fp32, w4)


def _kernels_run(model: ir.Model, tmp_path: Path, tag: str) -> list[str]:
    """The op types ONNX Runtime runs for `model`, in order, after all its graph optimizations."""
    import onnx

    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.optimized_model_filepath = str(tmp_path / f"{tag}.optimized.onnx")
    ort.InferenceSession(ir.to_proto(model).SerializeToString(), so)
    return [node.op_type for node in onnx.load(so.optimized_model_filepath).graph.node]


def test_w4a8_runs_the_same_kernels_as_w8a8(setup, tmp_path):
    """W4A8's 4-bit weights are widened at load, so it is no slower than W8A8 by construction:
    ORT runs the same op sequence (bench/quant.py measures the latency)."""
    model, calib, _, _ = setup
    w8 = _kernels_run(_quantized(model, calib, "w8a8"), tmp_path, "w8a8")
    w4 = _kernels_run(_quantized(model, calib, "w4a8"), tmp_path, "w4a8")
    assert w4 == w8 and w8.count("QLinearConv") > 60
