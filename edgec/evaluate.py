"""`edgec eval DIR --data FILE [--reference REF]`: task metrics of an artifact on real data.

The artifact in DIR (an `edgec compile` output) and the float reference REF (another compile
output directory, e.g. the fp32 one, or an `.onnx`) run in ONNX Runtime on the samples of
FILE, a chunk at a time (`edgec.preprocess.open_model_inputs`: images with the model's
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
from edgec.eval_metrics import EvalTally
from edgec.preprocess import ModelInputs, open_model_inputs
from edgec.profile_artifact import read_output_dir
from edgec.progress import Progress

CHUNK = 64  # samples prepared and run at a time


def evaluate_directory(
    directory: Path,
    data: Path,
    reference: Path | None = None,
    count: int = 10_000,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """The metrics above as a dict (`text`: the lines a person reads)."""
    out = read_output_dir(Path(directory))
    inputs = open_model_inputs(Path(data), out.preprocessing, count, "--data")
    labels = _labels(Path(data), inputs)
    result: dict[str, Any] = {"artifact": str(out.artifact), "samples": inputs.count}
    artifact = _Runner(out.artifact, out.model_input["name"])
    ref = None
    if reference is not None:
        ref_path = _reference_path(Path(reference))
        result["reference"] = str(ref_path)
        ref = _Runner(ref_path, out.model_input["name"])
    tally = EvalTally()
    progress = progress or Progress(enabled=False)
    every = max(1, -(-inputs.count // CHUNK) // 10)  # about ten progress lines
    with progress.step(f"running {inputs.count} samples", {}, "eval"):
        for start, batch in inputs.chunks(CHUNK):
            got = artifact.run(batch)
            chunk_labels = labels[start : start + len(batch)] if labels is not None else None
            tally.add(got, ref.run(batch) if ref is not None else None, chunk_labels)
            done = start + len(batch)
            if done == inputs.count or (start // CHUNK) % every == every - 1:
                progress.detail(f"{done}/{inputs.count}")
    result |= tally.result()
    result["text"] = "\n".join(f"{k}: {v}" for k, v in result.items())
    return result


# keys an .npz may hold its class labels under, in order of preference
LABEL_KEYS = ("labels", "class_index")


def _labels(data: Path, inputs: ModelInputs) -> np.ndarray | None:
    """The labels of the samples `inputs` took from `data` (the same indices)."""
    if data.is_dir() or data.suffix != ".npz":
        return None
    with np.load(data, allow_pickle=False) as archive:
        key = next((k for k in LABEL_KEYS if k in archive), None)
        if key is None:
            return None
        labels = archive[key]
    if len(labels) != inputs.stored:
        raise UserError(f"{data} has {len(labels)} labels for {inputs.stored} samples")
    return labels[inputs.indices]


def _reference_path(reference: Path) -> Path:
    if reference.is_dir():
        return read_output_dir(reference).artifact
    if reference.suffix == ".onnx" and reference.is_file():
        return reference
    raise UserError(
        f"reference {reference} is neither a compile output directory nor an .onnx file",
        "compile the float model (--precision fp32) and pass its output directory",
    )


class _Runner:
    """An ONNX Runtime session of one model at batch 1 (the size artifacts are exported at)."""

    def __init__(self, path: Path, input_name: str):
        from edgec.runtimes import ort

        self.runner = ort.load(path, threads=1)
        names = self.runner.input_names
        self.input = input_name if input_name in names else names[0]
        self.output = self.runner.output_names[0]

    def run(self, samples: np.ndarray) -> np.ndarray:
        return np.concatenate(
            [self.runner.run({self.input: s[None]})[self.output] for s in samples]
        )
