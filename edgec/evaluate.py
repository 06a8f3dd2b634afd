"""`edgec eval DIR --data FILE [--reference REF]`: task metrics of an artifact on real data.

The artifact in DIR (an `edgec compile` output) and the float reference REF (another compile
output directory, e.g. the fp32 one, or an `.onnx`) run in ONNX Runtime on the samples of
FILE, prepared as `edgec.preprocess.read_model_inputs` describes (images with the model's
recorded preprocessing, or model-ready float32 tensors). Reported:

- classifiers (N×classes outputs): top-1 accuracy when FILE has `labels` (or `class_index`,
  the key of ImageNet sample files such as shared/data/imagenet_samples.npz), top-1
  agreement with the reference, output cosine similarity;
- segmentation (N×classes×H×W or N×classes×D×H×W logits): mIoU and Dice of the artifact's
  argmax masks against the reference's masks, and against `labels` (N×H×W) when present;
- anything else: cosine similarity with the reference.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgec.errors import UserError
from edgec.preprocess import read_model_inputs
from edgec.profile_artifact import read_output_dir
from edgec.sample_choice import spread


def evaluate_directory(
    directory: Path, data: Path, reference: Path | None = None, count: int = 10_000
) -> dict[str, Any]:
    """The metrics above as a dict (`text`: the lines a person reads)."""
    out = read_output_dir(Path(directory))
    samples = read_model_inputs(Path(data), out.preprocessing, count, "--data")
    labels = _labels(Path(data), len(samples))
    outputs = _run(out.artifact, out.model_input["name"], samples)
    result: dict[str, Any] = {"artifact": str(out.artifact), "samples": len(samples)}
    ref = None
    if reference is not None:
        ref_path = _reference_path(Path(reference))
        result["reference"] = str(ref_path)
        ref = _run(ref_path, out.model_input["name"], samples)
        result["cosine_mean"] = float(np.mean(_cosines(ref, outputs)))
        result["cosine_min"] = float(np.min(_cosines(ref, outputs)))
    if outputs.ndim == 2:
        if labels is not None:
            result["top1"] = float((outputs.argmax(1) == labels).mean())
            if ref is not None:
                result["reference_top1"] = float((ref.argmax(1) == labels).mean())
        if ref is not None:
            result["top1_agreement"] = float((outputs.argmax(1) == ref.argmax(1)).mean())
    elif outputs.ndim >= 4:
        classes = outputs.shape[1]
        masks = outputs.argmax(1)
        if ref is not None:
            result["vs_reference"] = _overlap(masks, ref.argmax(1), classes)
        if labels is not None:
            result["vs_labels"] = _overlap(masks, labels, classes)
    result["text"] = "\n".join(f"{k}: {v}" for k, v in result.items())
    return result


# keys an .npz may hold its class labels under, in order of preference
LABEL_KEYS = ("labels", "class_index")


def _labels(data: Path, count: int) -> np.ndarray | None:
    """The labels of the `count` samples `read_model_inputs` took from `data` (the same
    indices, spread over the file)."""
    if data.is_dir() or data.suffix != ".npz":
        return None
    with np.load(data, allow_pickle=False) as archive:
        key = next((k for k in LABEL_KEYS if k in archive), None)
        if key is None:
            return None
        labels, total = archive[key], _stored_samples(archive)
    if len(labels) != total:
        raise UserError(f"{data} has {len(labels)} labels for {total} samples")
    return labels[spread(total, count)]


def _stored_samples(archive) -> int:
    """How many samples an .npz that `read_model_inputs` reads holds."""
    if "offsets" in archive:
        return len(archive["offsets"]) - 1
    return len(archive["images"] if "images" in archive else archive["inputs"])


def _reference_path(reference: Path) -> Path:
    if reference.is_dir():
        return read_output_dir(reference).artifact
    if reference.suffix == ".onnx" and reference.is_file():
        return reference
    raise UserError(
        f"reference {reference} is neither a compile output directory nor an .onnx file",
        "compile the float model (--precision fp32) and pass its output directory",
    )


def _run(path: Path, input_name: str, samples: np.ndarray) -> np.ndarray:
    from edgec.runtimes import ort

    runner = ort.load(path, threads=1)
    name = runner.input_names[0] if input_name not in runner.input_names else input_name
    first = runner.output_names[0]
    return np.concatenate([runner.run({name: s[None]})[first] for s in samples])


def _cosines(ref: np.ndarray, got: np.ndarray) -> np.ndarray:
    a, b = ref.reshape(len(ref), -1), got.reshape(len(got), -1)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.sum(a * b, 1) / np.maximum(norms, 1e-30)


def _overlap(pred: np.ndarray, truth: np.ndarray, classes: int) -> dict[str, float]:
    """Mean IoU and mean Dice over the classes present in either mask."""
    ious, dices = [], []
    for c in range(classes):
        p, t = pred == c, truth == c
        union, total = np.logical_or(p, t).sum(), p.sum() + t.sum()
        if union:
            inter = np.logical_and(p, t).sum()
            ious.append(inter / union)
            dices.append(2 * inter / total)
    return {"miou": float(np.mean(ious)), "dice": float(np.mean(dices))}
