"""EfficientViT-M: official microsoft/Cream state_dict → timm `efficientvit_msra` names.

The rules (no per-key table):

* stem `patch_embed.{0,2,4,6}` (Sequential with ReLUs between) → `patch_embed.conv{1..4}`;
* `blocks{n}.{i}` → `stages.{n-1}`; a stage's leading downsample entries (the ones whose
  children are not block parts `dw0/ffn0/mixer/dw1/ffn1`) become `downsample.res1`,
  `downsample.patchmerge`, `downsample.res2`; the blocks after them are renumbered from 0;
* Conv2d_BN's conv child `c` → `conv`; BN_Linear's linear child `l` → `linear`;
* `attention_bias_idxs` (a persistent buffer officially, computed by timm) is dropped, but only
  after checking it equals the table timm builds for the same window;
* 2-D conv weights get the official loader's `[:, :, None, None]`;
* a distillation head (`head_dist`, averaged with `head` in the official eval forward) is
  folded into `head` (`official_layout.fold_distillation_head`).

The bias index table is the LeViT one: for window points p1, p2 in row-major order the offset
(|dy|, |dx|) is numbered in order of first appearance, which (the first row visits every offset
in row-major order) is simply `|dy| * r + |dx|`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

from edgec.errors import ModelLoadError
from edgec.models.official_layout import (
    downsample_entries,
    fold_distillation_head,
    has_blocks_keys,
    rename_component,
    split_blocks_key,
    unsqueeze_2d_conv_weights,
)

BLOCK_CHILDREN = {"dw0", "ffn0", "mixer", "dw1", "ffn1"}
DOWNSAMPLE_NAMES = ("res1", "patchmerge", "res2")
BIAS_IDXS_SUFFIX = "attention_bias_idxs"


def is_official(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """True for the official layout (`blocks1.*`, `patch_embed.0.c.weight`)."""
    return has_blocks_keys(state_dict) or "patch_embed.0.c.weight" in state_dict


def is_conv_weight(key: str) -> bool:
    """Keys of conv weights in either layout (Conv2d_BN convs and the SE 1×1 convs)."""
    return key.endswith((".c.weight", ".conv.weight", "se.fc1.weight", "se.fc2.weight"))


def bias_idxs(resolution: int) -> torch.Tensor:
    """The (r², r²) int64 attention-bias index table of an r×r window (LeViT offsets)."""
    ys, xs = torch.meshgrid(torch.arange(resolution), torch.arange(resolution), indexing="ij")
    ys, xs = ys.flatten(), xs.flatten()
    dy = (ys[:, None] - ys[None, :]).abs()
    dx = (xs[:, None] - xs[None, :]).abs()
    return (dy * resolution + dx).to(torch.int64)


def check_bias_idxs(key: str, idxs: torch.Tensor, biases: torch.Tensor | None) -> None:
    """Raise unless `idxs` is the table timm computes (and fits the bias table beside it)."""
    n = idxs.shape[0] if idxs.ndim == 2 else -1
    r = math.isqrt(max(n, 0))
    problem = None
    if idxs.ndim != 2 or idxs.shape[0] != idxs.shape[1] or r * r != n:
        problem = f"has shape {list(idxs.shape)}, not (r², r²) of a square window"
    elif not torch.equal(idxs.to(torch.int64), bias_idxs(r)):
        problem = f"differs from the {r}×{r}-window index table that timm computes"
    elif biases is not None and biases.shape[-1] != r * r:
        problem = f"indexes {r * r} offsets but attention_biases has {biases.shape[-1]}"
    if problem:
        raise ModelLoadError(
            f"official EfficientViT checkpoint: {key} {problem}",
            "the checkpoint was built for another window layout or is damaged; "
            "check --arch and the file",
        )


def official_to_timm(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map an official-layout EfficientViT-M state_dict onto timm's names (see module doc)."""
    state_dict = fold_distillation_head(state_dict)
    for key, value in state_dict.items():
        if key.endswith(BIAS_IDXS_SUFFIX):
            prefix = key[: -len(BIAS_IDXS_SUFFIX)]
            check_bias_idxs(key, value, state_dict.get(prefix + "attention_biases"))
    downs = downsample_entries(state_dict, BLOCK_CHILDREN)
    for stage, entries in downs.items():
        if entries and len(entries) != len(DOWNSAMPLE_NAMES):
            raise ModelLoadError(
                f"official EfficientViT checkpoint: blocks{stage} starts with {len(entries)} "
                f"downsample entries, expected {len(DOWNSAMPLE_NAMES)} "
                "(dw+FFN, PatchMerging, dw+FFN)",
                "check that the checkpoint is an EfficientViT-M one and --arch names its variant",
            )
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        if key.endswith(BIAS_IDXS_SUFFIX):
            continue
        out[_rename(key, downs)] = value
    return unsqueeze_2d_conv_weights(out, is_conv_weight)


def _rename(key: str, downs: dict[int, list[int]]) -> str:
    parts = split_blocks_key(key)
    if parts is not None:
        stage, entry, rest = parts
        down = downs.get(stage, [])
        if entry in down:
            key = f"stages.{stage - 1}.downsample.{DOWNSAMPLE_NAMES[entry]}.{rest}"
        else:
            key = f"stages.{stage - 1}.blocks.{entry - len(down)}.{rest}"
    elif key.startswith("patch_embed."):
        _, index, rest = key.split(".", 2)
        if index.isdigit():
            key = f"patch_embed.conv{int(index) // 2 + 1}.{rest}"
    elif key.startswith("head."):
        key = rename_component(key, "l", "linear")
    return rename_component(key, "c", "conv")
