"""Which official checkpoint layout each model family has, and how to bring it to timm's names.

A family is found from the timm module that defines the architecture
(`timm.models.efficientvit_msra`, `.shvit`, `.lowformer`); other timm models have no official
layout and their checkpoints must already use timm's names.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

import torch

from edgec.models import remap_efficientvit, remap_lowformer, remap_shvit
from edgec.models.official_layout import count_2d_conv_weights


@dataclasses.dataclass(frozen=True)
class Layout:
    """An official checkpoint layout: how to recognise it and how to convert it."""

    family: str
    repo: str
    is_official: Callable[[Mapping[str, torch.Tensor]], bool]
    to_timm: Callable[[Mapping[str, torch.Tensor]], dict[str, torch.Tensor]]
    is_conv_weight: Callable[[str], bool] | None = None


LAYOUTS = {
    "efficientvit_msra": Layout(
        "EfficientViT-M",
        "microsoft/Cream",
        remap_efficientvit.is_official,
        remap_efficientvit.official_to_timm,
        remap_efficientvit.is_conv_weight,
    ),
    "shvit": Layout(
        "SHViT",
        "ysj9909/SHViT",
        remap_shvit.is_official,
        remap_shvit.official_to_timm,
        remap_shvit.is_conv_weight,
    ),
    "lowformer": Layout(
        "LowFormer",
        "altair199797/LowFormer",
        remap_lowformer.is_official,
        remap_lowformer.official_to_timm,
    ),
}


def timm_module(arch: str) -> str:
    """The short name of the timm module that defines `arch` (`efficientvit_msra`, ...)."""
    from timm.models import model_entrypoint

    return model_entrypoint(arch.split(".", 1)[0]).__module__.rsplit(".", 1)[-1]


def layout_for(arch: str) -> Layout | None:
    """The official layout of `arch`'s family, or None for other timm models."""
    return LAYOUTS.get(timm_module(arch))


def to_timm_layout(
    state_dict: Mapping[str, torch.Tensor], arch: str
) -> tuple[dict[str, torch.Tensor], str, list[str]]:
    """Detect the layout and convert it; returns (state_dict, layout name, notes)."""
    layout = layout_for(arch)
    if layout is None or not layout.is_official(state_dict):
        fixed = dict(state_dict)
        dropped = [k for k in fixed if k.endswith(remap_efficientvit.BIAS_IDXS_SUFFIX)]
        if layout is not None and layout.family == "EfficientViT-M" and dropped:
            for key in dropped:  # older timm saved the index table too: check, then drop
                remap_efficientvit.check_bias_idxs(key, fixed.pop(key), None)
        return fixed, "timm", []
    converted = layout.to_timm(state_dict)
    notes = [
        f"official {layout.family} layout ({layout.repo}) detected and remapped to timm names "
        f"({len(state_dict)} → {len(converted)} entries)"
    ]
    idxs = sum(1 for k in state_dict if k.endswith(remap_efficientvit.BIAS_IDXS_SUFFIX))
    if idxs:
        notes.append(f"{idxs} attention_bias_idxs tables checked equal to timm's and dropped")
    if layout.is_conv_weight is not None:
        shimmed = count_2d_conv_weights(state_dict, layout.is_conv_weight)
        if shimmed:
            notes.append(f"{shimmed} 2-D conv weights reshaped to [:, :, None, None]")
    return converted, "official", notes


def guess_family(keys: Mapping[str, object]) -> str | None:
    """A family name whose official or timm layout the keys look like (for hints)."""
    text = " ".join(keys)
    if "mixer.m.attn.qkvs" in text:
        return "EfficientViT-M (efficientvit_m0 … efficientvit_m5)"
    if "mixer.m.pre_norm" in text or "mixer.m.qkv.c" in text:
        return "SHViT (shvit_s1 … shvit_s4)"
    if "conv_proj" in text or "backbone.input_stem" in text or "total.0.0.main" in text:
        return "LowFormer (lowformer_b0 … lowformer_e3)"
    if "segformer_encoder." in text:
        return "SegFormer3D (segformer3d)"
    if "encoder.pos_embed" in text and "decoder.cls_emb" in text:
        return "Segmenter mask decoder (segmenter_vit_tiny_mask, isegmenter_vit_tiny)"
    if "encoder.pos_embed" in text and "decoder.head." in text:
        return "Segmenter linear decoder (segmenter_vit_tiny_linear)"
    return None
