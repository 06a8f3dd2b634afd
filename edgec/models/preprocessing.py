"""The input recipe a model expects: size, mean/std, resize interpolation, crop, layout."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def preprocessing_for(model: torch.nn.Module, img_size: Any = None) -> dict[str, Any]:
    """The preprocessing of `model` from its timm `pretrained_cfg` (ImageNet defaults without).

    Returns mean, std, input_size (C, H, W), interpolation, crop_pct, crop_mode,
    fixed_input_size, layout "NCHW", color "RGB", and `source` (where the values came from).
    `img_size` (as given to timm.create_model) overrides the configured input size.
    """
    return preprocessing_from_cfg(getattr(model, "pretrained_cfg", None) or {}, img_size)


def preprocessing_from_cfg(cfg: Mapping[str, Any], img_size: Any = None) -> dict[str, Any]:
    """`preprocessing_for`'s dict from a timm pretrained_cfg mapping (may be empty)."""
    input_size = tuple(cfg.get("input_size", (3, 224, 224)))
    if img_size is not None:
        h, w = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
        input_size = (input_size[0], int(h), int(w))
    return {
        "input_size": list(input_size),
        "mean": list(cfg.get("mean", IMAGENET_MEAN)),
        "std": list(cfg.get("std", IMAGENET_STD)),
        "interpolation": cfg.get("interpolation", "bicubic"),
        "crop_pct": float(cfg.get("crop_pct", 0.875)),
        "crop_mode": cfg.get("crop_mode", "center"),
        "fixed_input_size": bool(cfg.get("fixed_input_size", False)),
        "layout": "NCHW",
        "color": "RGB",
        "source": "timm pretrained_cfg" if cfg else "ImageNet defaults (model has no config)",
    }
