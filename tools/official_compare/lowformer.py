"""LowFormer: edgec against the official altair199797/LowFormer code, in PyTorch and compiled.

The official model is built the way the official loader builds it
(`lowformer_model.get_lowformer(configs/cls/imagenet/<name>.yaml, pretrained=False)`: the
yaml's `net_config` into `lowformer_cls_b1`), filled with seeded non-trivial weights
(BatchNorm statistics, GroupNorm/LayerNorm affines, conv and ConvTranspose biases) and saved
as `{"state_dict": state_dict}`, the container of the released `evalmodel.pt` files. That file
goes through `edgec.models.create` and through `edgec compile` (see `classifier_compare.py`).
The official code has no BN-fused form (its `--fusebn` import is commented out).

    python tools/official_compare/lowformer.py --official-repo /tmp/official/lowformer

No stubs: `lowformer_model.py` needs only torch and PyYAML.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import classifier_compare as cc
import torch

CONFIGS = {  # edgec name → official config name
    "lowformer_b0": "b0",
    "lowformer_b1": "b1",
    "lowformer_b15": "b15",
    "lowformer_b3": "b3",
    "lowformer_e1": "E1",
    "lowformer_e2": "E2",
    "lowformer_e3": "E3",
}


def build(arch: str) -> torch.nn.Module:
    """The official `get_lowformer(<config>.yaml, pretrained=False)` for edgec's name."""
    official = importlib.import_module("lowformer_model")
    configs = Path(official.__file__).parent / "configs" / "cls" / "imagenet"
    return official.get_lowformer(str(configs / f"{CONFIGS[arch]}.yaml"), pretrained=False)


FAMILY = cc.Family(
    name="lowformer",
    description=__doc__.splitlines()[0],
    inside="lowformer_model.py",
    import_root=".",
    variants=list(CONFIGS),
    default_variants=["lowformer_b0", "lowformer_e1"],
    container="state_dict",
    build=build,
    controls=[cc.swapped_blocks("backbone.stages.3.op_list.1", "backbone.stages.3.op_list.2")],
    notes=[
        "official model from the standalone lowformer_model.py (the README's reference); "
        "the checkpoint uses its head.op_list.* keys (the older head.opseq.* spelling is the "
        "one the official loader renames)",
        "E1 is an E-series variant (noattention, mlpremoved): a different key layout from B0",
        "inputs: edgec's preprocessing (crop_pct 0.95 from timm's config, as the official "
        "test_crop_ratio)",
    ],
)

if __name__ == "__main__":
    raise SystemExit(cc.run(FAMILY))
