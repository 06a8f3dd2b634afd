"""SHViT: official ysj9909/SHViT state_dict → timm `shvit` names.

timm keeps the official module names (`patch_embed.{0,2,4,6}.c`, `c`/`bn`, `head.l`) and only
regroups the stages, so the rules are:

* `blocks{n}.{i}` → `stages.{n-1}`; a stage's leading downsample entries (children that are
  not block parts `conv/mixer/ffn`) are `[Sequential(res dw, res FFN), PatchMerging,
  Sequential(res dw, res FFN)]` officially and one flat `downsample` Sequential in timm, so
  entry e, child j maps to flat index (sizes of the entries before e) + j;
* the blocks after them are renumbered from 0 under `stages.{n-1}.blocks`;
* 2-D conv weights get the official loader's `[:, :, None, None]`;
* a distillation head (`head_dist`, averaged with `head` in the official eval forward) is
  folded into `head` (`official_layout.fold_distillation_head`).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from edgec.models.official_layout import (
    downsample_entries,
    fold_distillation_head,
    has_blocks_keys,
    nested_sizes,
    split_blocks_key,
    unsqueeze_2d_conv_weights,
)

BLOCK_CHILDREN = {"conv", "mixer", "ffn"}


def is_official(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """True for the official layout (`blocks1.*`); timm's layout uses `stages.*`."""
    return has_blocks_keys(state_dict)


def is_conv_weight(key: str) -> bool:
    """Keys of conv weights (Conv2d_BN convs and the SE 1×1 convs)."""
    return key.endswith((".c.weight", "se.fc1.weight", "se.fc2.weight"))


def official_to_timm(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map an official-layout SHViT state_dict onto timm's names (see module doc)."""
    state_dict = fold_distillation_head(state_dict)
    downs = downsample_entries(state_dict, BLOCK_CHILDREN)
    starts: dict[int, dict[int, int]] = {}
    for stage, entries in downs.items():
        sizes = nested_sizes(state_dict, stage, entries)
        offset, starts[stage] = 0, {}
        for entry in entries:
            starts[stage][entry] = offset
            offset += sizes[entry]
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        out[_rename(key, downs, starts)] = value
    return unsqueeze_2d_conv_weights(out, is_conv_weight)


def _rename(key: str, downs: dict[int, list[int]], starts: dict[int, dict[int, int]]) -> str:
    parts = split_blocks_key(key)
    if parts is None:
        return key
    stage, entry, rest = parts
    down = downs.get(stage, [])
    if entry not in down:
        return f"stages.{stage - 1}.blocks.{entry - len(down)}.{rest}"
    head, _, tail = rest.partition(".")
    if head.isdigit():  # a child of a Sequential(Residual, Residual) entry
        return f"stages.{stage - 1}.downsample.{starts[stage][entry] + int(head)}.{tail}"
    return f"stages.{stage - 1}.downsample.{starts[stage][entry]}.{rest}"
