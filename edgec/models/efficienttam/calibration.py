"""Calibration samples for every EfficientTAM graph, recorded while tracking a clip.

A quantized graph needs samples of the inputs it sees in use. Only the image encoder sees
images; the decoder, memory encoder and memory attention see features, masks and a memory
bank that exist only mid-track. So the calibration frames are tracked as a clip — one click
at the centre of the first frame, then `Tracker.track` — in PyTorch (`TorchGraphs`), and
every graph call's feeds are recorded:

    frames 0…n-1 ─ Tracker(TorchGraphs) ─ image_encoder {image}                × n
                                        ─ prompt_mask_decoder {image_embed, …} × n
                                        ─ memory_encoder {vision_features, …}  × n
                                        ─ memory_attention[_1frame] {…, memory bank} × n-1

`prompt_mask_decoder_single`, which a one-click prompt never runs, takes the multimask
decoder's feeds (same inputs, other head). Pooled variants run `memory_attention_1frame` on
the second frame and `memory_attention` from the third on (two memory frames), so they need a
clip of three frames or more. A folder of a real clip's frames gives the graphs the
statistics they will meet; unrelated photos still give every graph real features and masks.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from edgec.errors import UserError
from edgec.models.efficienttam.model import EfficientTAM
from edgec.models.efficienttam.runners import TorchGraphs
from edgec.models.efficienttam.tracker import Tracker

Feeds = dict[str, np.ndarray]
# graph → the graph whose feeds it takes: a one-click prompt never runs the single-mask decoder
TWINS = {"prompt_mask_decoder_single": "prompt_mask_decoder"}


class _Recording:
    """A `Graphs` callable that runs `inner` and keeps every call's feeds (the tracker builds
    fresh arrays for each call and never writes into one it has fed, so no copies)."""

    def __init__(self, inner):
        self.inner = inner
        self.feeds: dict[str, list[Feeds]] = defaultdict(list)

    def __call__(self, name: str, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.feeds[name].append(dict(feeds))
        return self.inner(name, feeds)


def graph_samples(
    model: EfficientTAM,
    frames: Sequence[np.ndarray],
    names: Sequence[str],
    on_frame: Callable[[int, int], None] | None = None,
) -> dict[str, list[Feeds]]:
    """Per graph in `names`, the feeds it received while `frames` (H×W×3 uint8) were tracked.

    `on_frame(done, total)` is called after each frame (progress for long clips)."""
    if len(frames) < 2:
        raise UserError(
            f"calibrating EfficientTAM needs at least 2 frames (the memory graphs only run from "
            f"the second frame on); got {len(frames)}",
            "give a folder of a clip's frames (or more images) as --calib, --calib-count ≥ 2",
        )
    recording = _Recording(TorchGraphs(model))
    tracker = Tracker(recording, model.image_size, model.config.pooled)
    height, width = frames[0].shape[:2]
    for i, frame in enumerate(frames):
        if i == 0:
            tracker.start(frame, points=[[width / 2, height / 2]], labels=[1])
        else:
            tracker.track(frame)
        if on_frame:
            on_frame(i + 1, len(frames))
    samples = {}
    for name in names:
        recorded = recording.feeds.get(name) or recording.feeds.get(TWINS.get(name, ""))
        if not recorded:
            raise UserError(
                f"tracking {len(frames)} calibration frames never ran graph {name}",
                "give more frames with --calib / --calib-count",
            )
        samples[name] = recorded
    return samples
