"""EfficientTAM cut into the graphs a device runs; the memory bank stays in host code.

- `image_encoder`: image (1, 3, S, S) → vision_features, vision_features_no_mem
  (1, 256, h, w).
- `prompt_mask_decoder` (multimask) / `prompt_mask_decoder_single`: image_embed
  (1, 256, h, w), point_coords (1, N, 2) in S-pixels, point_labels (1, N), mask_input
  (1, 1, 4h, 4w), has_mask_input (1,) → masks (1, M, 4h, 4w), ious (1, M), best_mask
  (1, 1, 4h, 4w), obj_ptr (1, 256), object_score_logits (1, 1).
- `memory_encoder`: vision_features, mask (1, 1, 4h, 4w) low-res logits, binarize (1,) →
  maskmem_features (1, 64, h, w).
- `memory_attention` (+ `memory_attention_1frame` for pooled variants): vision_features,
  memory_features (T, 64, h, w), memory_tpos (T,) int64, obj_ptrs (P, 256) →
  pix_feat_with_mem (1, 256, h, w).

h = w = S/16. Shape-only constants are folded in: the trunk's bicubic-resized absolute
position table, the neck's sine PE (`curr_pos` of memory attention), the memory sine PE.
`vision_features_no_mem` is the conditioning-frame input of the decoder (`+ no_mem_embed`).
The decoder pads the points with (0, 0, label -1) as the official prompt encoder does;
`has_mask_input` 0 uses `no_mask_embed` (the official `masks=None`). The memory encoder
upsamples the mask to S×S itself (bilinear) and applies (mask > 0) when `binarize` is 1
(frames with clicks) or sigmoid, then ×20 − 10. Memory attention adds the temporal encoding
`maskmem_tpos_enc[memory_tpos[t]]` to frame t's sine PE and splits each 256-d object pointer
into 4 tokens of 64 (zero PE), all as the official `_prepare_memory_conditioned_features`.
The pooled cross-attention of `_1`/`_2` variants only pools with ≥ 2 memory frames, so those
variants get a second memory-attention graph for T = 1 (full attention), as the official
code's branch does.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from edgec.models.efficienttam import config as C
from edgec.models.efficienttam.model import EfficientTAM

# Dynamic-dimension ranges: points per prompt, spatial memory frames, object pointers.
MAX_POINTS = 16
MAX_PTRS = C.MAX_OBJ_PTRS


@dataclasses.dataclass(frozen=True)
class GraphSpec:
    """One exported graph: its module, named example inputs, dynamic dims and outputs."""

    name: str
    module: nn.Module
    inputs: dict[str, torch.Tensor]
    outputs: tuple[str, ...]
    dynamic: dict[str, dict[int, tuple[str, int, int]]]  # input → {axis: (dim name, min, max)}
    used_when: str


class ImageEncoderGraph(nn.Module):
    """image → (vision_features, vision_features + no_mem_embed)."""

    def __init__(self, model: EfficientTAM):
        super().__init__()
        self.trunk = model.image_encoder.trunk
        self.neck = model.image_encoder.neck
        self.no_mem_embed = model.no_mem_embed
        side = model.config.feat_size
        self.register_buffer(
            "abs_pos", self.trunk.abs_pos(side, side).detach().clone(), persistent=False
        )

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.neck.convs[0](self.trunk.forward_with_pos(image, self.abs_pos)[0])
        return feats, feats + self.no_mem_embed.reshape(1, -1, 1, 1)


class PromptMaskDecoderGraph(nn.Module):
    """Prompt encoder + mask decoder + object-score/pointer post-processing."""

    def __init__(self, model: EfficientTAM, multimask: bool):
        super().__init__()
        self.model = model
        self.multimask = multimask

    def forward(self, image_embed, point_coords, point_labels, mask_input, has_mask_input):
        encoder = self.model.sam_prompt_encoder
        sparse, no_mask = encoder(points=(point_coords, point_labels), boxes=None, masks=None)
        has = has_mask_input.reshape(-1, 1, 1, 1)
        dense = has * encoder.mask_downscaling(mask_input) + (1 - has) * no_mask
        return self.model.sam_heads(image_embed, sparse, dense, self.multimask)


class MemoryEncoderGraph(nn.Module):
    """(vision_features, low-res mask logits, binarize) → maskmem_features."""

    def __init__(self, model: EfficientTAM):
        super().__init__()
        self.model = model

    def forward(self, vision_features, mask, binarize) -> torch.Tensor:
        model = self.model
        mem_mask = model.mask_for_memory(
            model.upsample_to_image(mask), binarize.reshape(-1, 1, 1, 1)
        )
        return model.memory_encoder(vision_features, mem_mask, skip_mask_sigmoid=True)[
            "vision_features"
        ]


class MemoryAttentionGraph(nn.Module):
    """Current features + memory bank (T frames, P pointers) → memory-conditioned features."""

    def __init__(self, model: EfficientTAM):
        super().__init__()
        self.model = model
        side = model.config.feat_size
        neck_pe = model.image_encoder.neck.position_encoding.encoding(side, side)
        mem_pe = model.memory_encoder.position_encoding.encoding(side, side)
        self.register_buffer(
            "curr_pos", neck_pe.flatten(2).permute(2, 0, 1).clone(), persistent=False
        )
        self.register_buffer(
            "memory_pe", mem_pe.flatten(2).permute(0, 2, 1).clone(), persistent=False
        )

    def forward(self, vision_features, memory_features, memory_tpos, obj_ptrs) -> torch.Tensor:
        model = self.model
        b, c, h, w = vision_features.shape
        curr = vision_features.flatten(2).permute(2, 0, 1)
        spatial = memory_features.flatten(2).permute(0, 2, 1)  # (T, HW, 64)
        tpos = model.maskmem_tpos_enc.reshape(C.NUM_MASKMEM, 1, C.MEM_DIM)[memory_tpos]
        spatial_pos = self.memory_pe + tpos  # (T, HW, 64)
        split = C.HIDDEN_DIM // C.MEM_DIM
        ptrs = obj_ptrs.reshape(-1, 1, split, C.MEM_DIM).permute(0, 2, 1, 3).flatten(0, 1)
        memory = torch.cat([spatial.reshape(-1, 1, C.MEM_DIM), ptrs], dim=0)
        memory_pos = torch.cat(
            [spatial_pos.reshape(-1, 1, C.MEM_DIM), torch.zeros_like(ptrs)], dim=0
        )
        out = model.memory_attention(
            curr=curr,
            memory=memory,
            curr_pos=self.curr_pos,
            memory_pos=memory_pos,
            num_obj_ptr_tokens=ptrs.shape[0],
        )
        return out.permute(1, 2, 0).reshape(b, c, h, w)


def _example(shape, generator: torch.Generator, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(shape, generator=generator) * scale


def graph_specs(model: EfficientTAM, seed: int = 0) -> list[GraphSpec]:
    """Every graph of `model` with example inputs (seeded) and dynamic dims, in run order."""
    g = torch.Generator().manual_seed(seed)
    s, f = model.image_size, model.config.feat_size
    feats = _example((1, C.HIDDEN_DIM, f, f), g)
    decoder_inputs = {
        "image_embed": feats,
        "point_coords": torch.rand((1, 2, 2), generator=g) * s,
        "point_labels": torch.tensor([[1, 0]], dtype=torch.int64),
        "mask_input": _example((1, 1, 4 * f, 4 * f), g, 4.0),
        "has_mask_input": torch.ones(1),
    }
    points = {
        "point_coords": {1: ("num_points", 1, MAX_POINTS)},
        "point_labels": {1: ("num_points", 1, MAX_POINTS)},
    }
    decoder_out = ("masks", "ious", "best_mask", "obj_ptr", "object_score_logits")
    frames = 3 if model.config.pooled else 2

    def attention_inputs(t: int) -> dict[str, torch.Tensor]:
        return {
            "vision_features": feats,
            "memory_features": _example((t, C.MEM_DIM, f, f), g),
            "memory_tpos": torch.arange(C.NUM_MASKMEM - t, C.NUM_MASKMEM, dtype=torch.int64).flip(
                0
            ),
            "obj_ptrs": _example((3, C.HIDDEN_DIM), g),
        }

    min_frames = 2 if model.config.pooled else 1
    frame_dims = {0: ("num_frames", min_frames, C.NUM_MASKMEM)}
    ptr_dims = {"obj_ptrs": {0: ("num_ptrs", 1, MAX_PTRS)}}
    specs = [
        GraphSpec(
            "image_encoder",
            ImageEncoderGraph(model),
            {"image": _example((1, 3, s, s), g)},
            ("vision_features", "vision_features_no_mem"),
            {},
            "every frame",
        ),
        GraphSpec(
            "prompt_mask_decoder",
            PromptMaskDecoderGraph(model, multimask=True),
            decoder_inputs,
            decoder_out,
            points,
            "tracking frames, and prompts of at most one point",
        ),
        GraphSpec(
            "prompt_mask_decoder_single",
            PromptMaskDecoderGraph(model, multimask=False),
            decoder_inputs,
            decoder_out,
            points,
            "prompts of two or more points, or a box",
        ),
        GraphSpec(
            "memory_encoder",
            MemoryEncoderGraph(model),
            {
                "vision_features": feats,
                "mask": _example((1, 1, 4 * f, 4 * f), g, 4.0),
                "binarize": torch.zeros(1),
            },
            ("maskmem_features",),
            {},
            "every frame, after the decoder",
        ),
        GraphSpec(
            "memory_attention",
            MemoryAttentionGraph(model),
            attention_inputs(frames),
            ("pix_feat_with_mem",),
            {"memory_features": frame_dims, "memory_tpos": frame_dims, **ptr_dims},
            f"frames after the prompted one, {min_frames}..{C.NUM_MASKMEM} memory frames",
        ),
    ]
    if model.config.pooled:
        specs.append(
            GraphSpec(
                "memory_attention_1frame",
                MemoryAttentionGraph(model),
                attention_inputs(1),
                ("pix_feat_with_mem",),
                ptr_dims,
                "frames with exactly one memory frame (full attention, no pooling)",
            )
        )
    return specs
