"""Task metrics of `edgec eval`, accumulated chunk by chunk so that memory stays flat.

Per chunk of outputs (the artifact's, the reference's when given, the labels when the data
has them), `EvalTally.add` keeps only what the metrics need: per-sample cosine similarities,
top-1 hits for classifiers (N×classes), and per-class pixel counts for segmentation
(N×classes×H×W or ×D×H×W logits), whose mIoU and Dice are pooled over all samples:

    IoU_c = Σ|pred=c ∧ truth=c| / Σ|pred=c ∨ truth=c|,   Dice_c = 2·Σ|∧| / (Σ|pred=c| + Σ|truth=c|)

averaged over the classes present in either mask.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class Overlap:
    """Pooled per-class pixel counts of predicted vs true masks."""

    def __init__(self, classes: int):
        self.inter = np.zeros(classes, np.int64)
        self.union = np.zeros(classes, np.int64)
        self.total = np.zeros(classes, np.int64)

    def add(self, pred: np.ndarray, truth: np.ndarray) -> None:
        for c in range(len(self.inter)):
            p, t = pred == c, truth == c
            self.inter[c] += np.logical_and(p, t).sum()
            self.union[c] += np.logical_or(p, t).sum()
            self.total[c] += p.sum() + t.sum()

    def result(self) -> dict[str, float]:
        present = self.union > 0
        iou = self.inter[present] / self.union[present]
        dice = 2 * self.inter[present] / self.total[present]
        return {"miou": float(np.mean(iou)), "dice": float(np.mean(dice))}


class EvalTally:
    """What `edgec eval` reports, from outputs given a chunk at a time."""

    def __init__(self) -> None:
        self.samples = 0
        self.classifier = self.has_labels = False
        self.cosines: list[np.ndarray] = []
        self.hits = {"top1": 0, "reference_top1": 0, "top1_agreement": 0}
        self.overlaps: dict[str, Overlap] = {}

    def add(self, got: np.ndarray, ref: np.ndarray | None, labels: np.ndarray | None) -> None:
        """One chunk: the artifact's outputs, the reference's (or None), labels (or None)."""
        self.samples += len(got)
        self.classifier, self.has_labels = got.ndim == 2, labels is not None
        if ref is not None:
            self.cosines.append(cosines(ref, got))
        if got.ndim == 2:
            pred = got.argmax(1)
            if labels is not None:
                self.hits["top1"] += int((pred == labels).sum())
            if ref is not None and labels is not None:
                self.hits["reference_top1"] += int((ref.argmax(1) == labels).sum())
            if ref is not None:
                self.hits["top1_agreement"] += int((pred == ref.argmax(1)).sum())
        elif got.ndim >= 4:
            masks = got.argmax(1)
            if ref is not None:
                self._overlap("vs_reference", got.shape[1]).add(masks, ref.argmax(1))
            if labels is not None:
                self._overlap("vs_labels", got.shape[1]).add(masks, labels)

    def result(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        has_reference = bool(self.cosines)
        if has_reference:
            every = np.concatenate(self.cosines)
            out["cosine_mean"], out["cosine_min"] = float(every.mean()), float(every.min())
        if self.classifier:
            wanted = {"top1": self.has_labels}
            wanted["reference_top1"] = self.has_labels and has_reference
            wanted["top1_agreement"] = has_reference
            out |= {k: self.hits[k] / self.samples for k, on in wanted.items() if on}
        out |= {name: overlap.result() for name, overlap in self.overlaps.items()}
        return out

    def _overlap(self, name: str, classes: int) -> Overlap:
        return self.overlaps.setdefault(name, Overlap(classes))


def cosines(ref: np.ndarray, got: np.ndarray) -> np.ndarray:
    """Per sample (first axis), the cosine similarity of `got` with `ref`, flattened."""
    a, b = ref.reshape(len(ref), -1), got.reshape(len(got), -1)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.sum(a * b, 1) / np.maximum(norms, 1e-30)
