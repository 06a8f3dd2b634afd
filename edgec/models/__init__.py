"""Model families edgec provides, and the one way to create a model.

`create(name, checkpoint=None, num_classes=None, *, allow_pickle=False, **config)` builds
EfficientViT-M0…M5, SHViT-S1…S4, LowFormer B0/B1/B1.5/B3/E1/E2/E3 (or any other timm model)
through timm, from a seeded random initialisation or from a checkpoint in timm's or the
official layout. `zoo()` lists the built-in models; `preprocessing_for(model)` gives the input
recipe.
"""

from __future__ import annotations

from edgec.models.factory import ModelInfo, create, create_with_info, resolve_name
from edgec.models.preprocessing import preprocessing_for
from edgec.models.zoo import BUILTIN_NAMES, RANDOM_INIT_NOTE, ZooEntry, zoo, zoo_entry

__all__ = [
    "BUILTIN_NAMES",
    "RANDOM_INIT_NOTE",
    "ModelInfo",
    "ZooEntry",
    "create",
    "create_with_info",
    "preprocessing_for",
    "resolve_name",
    "zoo",
    "zoo_entry",
]
