"""SHViT: edgec against the official ysj9909/SHViT code, in PyTorch and compiled.

The official model is built by the official constructors (`shvit_s1` … `shvit_s4` in
`model/build.py`, `pretrained=False`, `distillation=False`), filled with seeded non-trivial
weights (BatchNorm statistics and the GroupNorm pre-norms included) and saved as
`{"model": state_dict}`, the container `build.py` reads. That file goes through
`edgec.models.create` and through `edgec compile` (see `classifier_compare.py`); S4 runs at
256×256, its evaluation size. The official BN-fused form (`replace_batchnorm`, which also
re-parameterises `x + dwconv(x)` into one conv) is compared with the compiled artifact too.
Also compared: a checkpoint trained with distillation (`head_dist`, which the official eval
forward averages with `head`; timm has one head, and edgec's remap folds the two).

    python tools/official_compare/shvit.py --official-repo /tmp/official/shvit

Only stub: timm's `register_model` is a no-op while `model/build.py` imports — the official
names `shvit_s1`… are timm's own, and registering them would replace timm's constructors.
"""

from __future__ import annotations

import importlib

import classifier_compare as cc
import torch

VARIANTS = [f"shvit_s{i}" for i in range(1, 5)]


def build(arch: str, **options) -> torch.nn.Module:
    """The official `model.build.shvit_sN(pretrained=False)` for edgec's `shvit_sN`."""
    return getattr(importlib.import_module("model.build"), arch)(pretrained=False, **options)


FAMILY = cc.Family(
    name="shvit",
    description=__doc__.splitlines()[0],
    inside="model/shvit.py",
    import_root=".",
    variants=VARIANTS,
    default_variants=["shvit_s1", "shvit_s4"],
    container="model",
    build=build,
    fuse_module="model.build",
    distillation_probe="shvit_s1",
    controls=[cc.swapped_blocks("blocks3.3", "blocks3.4")],
    notes=[
        "official model built with model/build.py constructors (pretrained=False, "
        "distillation=False); export_model.py reads checkpoints under 'state_dict' instead of "
        "'model' (edgec unwraps both)",
        "inputs: edgec's preprocessing at the model's size (224; 256 for S4)",
    ],
)

if __name__ == "__main__":
    raise SystemExit(cc.run(FAMILY))
