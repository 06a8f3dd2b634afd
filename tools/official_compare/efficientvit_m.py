"""EfficientViT-M: edgec against the official microsoft/Cream code, in PyTorch and compiled.

The official model is built by the official constructors (`EfficientViT_M0` … `EfficientViT_M5`
in `EfficientViT/classification/model/build.py`, `pretrained=False`, `distillation=False`),
filled with seeded non-trivial weights (BatchNorm statistics and `attention_biases` included),
switched to `eval()` after loading (the official attention caches its bias table there) and
saved as `{"model": state_dict}`, the container of the released `.pth` files. That file goes
through `edgec.models.create` and through `edgec compile` (see `classifier_compare.py`). The
official BN-fused form (`replace_batchnorm`, what `speed_test.py` times) is compared with the
compiled artifact too.

Also compared: a checkpoint trained with distillation (`head_dist`, which the official eval
forward averages with `head`; timm has one head, and edgec's remap folds the two).

    python tools/official_compare/efficientvit_m.py --official-repo /tmp/official/cream

Only stub: timm's `register_model` is a no-op while `build.py` imports.
"""

from __future__ import annotations

import importlib

import classifier_compare as cc
import torch

VARIANTS = [f"efficientvit_m{i}" for i in range(6)]


def official_builder(arch: str):
    """The official constructor for edgec's name (`efficientvit_m4` → `EfficientViT_M4`)."""
    build = importlib.import_module("model.build")
    return getattr(build, f"EfficientViT_M{arch.removeprefix('efficientvit_m')}")


def build(arch: str, **options) -> torch.nn.Module:
    return official_builder(arch)(pretrained=False, **options)


def stale_bias_cache(build_official, state: dict) -> tuple[str, torch.nn.Module]:
    """The official pitfall: `eval()` before `load_state_dict` keeps the initial bias cache."""
    model = build_official().eval()
    model.load_state_dict(state)
    return "official eval() before load_state_dict (stale `ab`) vs edgec", model


FAMILY = cc.Family(
    name="efficientvit_m",
    description=__doc__.splitlines()[0],
    inside="EfficientViT/classification/model/efficientvit.py",
    import_root="EfficientViT/classification",
    variants=VARIANTS,
    default_variants=["efficientvit_m0", "efficientvit_m4"],
    container="model",
    build=build,
    fuse_module="model.build",
    distillation_probe="efficientvit_m0",
    controls=[stale_bias_cache, cc.swapped_blocks("blocks3.3", "blocks3.4")],
    notes=[
        "official model built with build.py constructors (pretrained=False, distillation=False)",
        "official eval() is called after load_state_dict (cached attention-bias table `ab`)",
        "inputs: edgec's preprocessing (resize short side to size/0.875, bicubic, centre crop); "
        "the official eval transform is Resize(int(256/224*R)) + CenterCrop(R): both models "
        "get the same tensor, so this does not affect the comparison",
    ],
)

if __name__ == "__main__":
    raise SystemExit(cc.run(FAMILY))
