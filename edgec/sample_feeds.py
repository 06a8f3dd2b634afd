"""Samples of a multi-input graph, one named feed per input, stored in one `.npz`.

A single-input image or volume model takes its calibration and verification data as a
batch (`edgec.preprocess.read_model_inputs`). A graph with several inputs — the EfficientTAM
decoder (image embedding, points, labels, mask) or memory attention (features, a memory bank
whose frame count varies from sample to sample) — cannot be stacked that way. Such samples
are stored as `<sample index>/<input name>` arrays, each the exact feed of that input:

    samples = [{"vision_features": (1, 256, 64, 64), "memory_features": (2, 64, 64, 64), ...},
               {"vision_features": (1, 256, 64, 64), "memory_features": (3, 64, 64, 64), ...}]
    save_feeds(path, samples)  →  keys 0/vision_features, 0/memory_features, …, 1/…
    load_feeds(path, ["vision_features", "memory_features", …], count=2) == samples
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgec.errors import UserError
from edgec.sample_choice import spread

Feeds = dict[str, np.ndarray]


def save_feeds(path: Path, samples: Sequence[Feeds]) -> None:
    """Write `samples` (one feed dict per sample) to the `.npz` at `path`."""
    arrays = {
        f"{i}/{name}": value for i, feeds in enumerate(samples) for name, value in feeds.items()
    }
    np.savez(path, **arrays)


def is_feeds_file(path: Path) -> bool:
    """Does `path` hold samples in the `<index>/<input>` layout?"""
    if path.is_dir() or path.suffix != ".npz":
        return False
    with np.load(path, allow_pickle=False) as data:
        return bool(data.files) and all("/" in key for key in data.files)


def load_feeds(path: Path, inputs: Sequence[str], count: int, purpose: str) -> list[Feeds]:
    """`count` samples of `path` spread over it (`edgec.sample_choice`), each with a feed for
    every name in `inputs`."""
    with np.load(path, allow_pickle=False) as data:
        by_index: dict[int, Feeds] = {}
        for key in data.files:
            index, name = key.split("/", 1)
            by_index.setdefault(int(index), {})[name] = data[key]
    indices = sorted(by_index)
    chosen = [indices[i] for i in spread(len(indices), count)]
    for i in chosen:
        missing = [name for name in inputs if name not in by_index[i]]
        if missing:
            raise UserError(
                f"{purpose} {path}: sample {i} has no feed for input(s) {missing}",
                f"store one `<index>/<input>` array per input: {', '.join(inputs)}",
            )
    return [{name: by_index[i][name] for name in inputs} for i in chosen]
