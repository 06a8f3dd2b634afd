"""EfficientTAM (Efficient Track Anything, yformer/EfficientTAM), implemented by edgec.

- `build(name, image_size=None)` / `edgec.models.create(name)`: the official configurations
  `efficienttam_{ti,s}{,_1,_2,_512x512}` in the official module tree (`model.EfficientTAM`);
  official checkpoints load strictly into the whole model and into each part.
- `graphs.graph_specs(model)`: the model cut into device graphs (image encoder, prompt + mask
  decoder, memory encoder, memory attention); `edgec.exporters.efficienttam.export_graphs`
  writes and verifies them.
- `Tracker`: the host-side memory bank and per-frame loop, over `TorchGraphs` (PyTorch) or
  `OrtGraphs` (the exported ONNX files in ONNX Runtime).

One module per part: `vit` (trunk), `image_encoder` (+ neck), `prompt_encoder`,
`mask_decoder` (+ `two_way`), `memory_encoder`, `memory_attention`, `attention` (plain, RoPE
and the two pooled efficient cross-attentions), `rope` (real cos/sin tables), `position`.
"""

from __future__ import annotations

from edgec.models.efficienttam.config import VARIANTS, EfficientTAMConfig
from edgec.models.efficienttam.model import EfficientTAM, build
from edgec.models.efficienttam.runners import OrtGraphs, TorchGraphs
from edgec.models.efficienttam.tracker import FrameResult, Tracker, per_frame_iou

__all__ = [
    "VARIANTS",
    "EfficientTAM",
    "EfficientTAMConfig",
    "FrameResult",
    "OrtGraphs",
    "TorchGraphs",
    "Tracker",
    "build",
    "per_frame_iou",
]
