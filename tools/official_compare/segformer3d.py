"""SegFormer3D: edgec against the official OSUPCVLab/SegFormer3D code, call by call.

Both attention scalings of the official code are compared:
- `attn_scale="head_dim"` against the current official code (`--official-repo`, HEAD, which
  uses scaled_dot_product_attention, 1/√head_dim);
- `attn_scale="num_heads"` against the original release (`--official-repo-2024`, a tree of
  commit 5a149a6 that trained the published weights, 1/√num_heads).

The official model is built by the official `build_segformer3d_model` from the released BraTS
config (`experiments/brats_2017/best_brats_2017_exp_dice_82.07/config.yaml`). One shim: the
HEAD code decorates `cube_root` with `@torch.jit.script`, which fails to compile under recent
torch (round() returns float against `-> int`); `torch.jit.script` is the identity while that
module is imported. The official code reshapes with a cube root, so only cubic volumes are
compared (edgec's non-cubic handling has its own tests).

Run (from the repository root; extract the trees with `git archive`, see docs/models.md):

    python tools/official_compare/segformer3d.py --official-repo /tmp/official/SegFormer3D \
        --official-repo-2024 /tmp/official/SegFormer3D_2024 [--size 64] [--batch 2]
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from unittest import mock

import compare_support as cs
import torch
import torch.nn.functional as F
import yaml

import edgec.models

MODULE = "architectures/segformer3d.py"
CONFIG = "experiments/brats_2017/best_brats_2017_exp_dice_82.07/config.yaml"


def load_official(tree: Path, label: str):
    """The official `architectures/segformer3d.py` of `tree`, as a fresh module."""
    spec = importlib.util.spec_from_file_location(f"official_segformer3d_{label}", tree / MODULE)
    module = importlib.util.module_from_spec(spec)
    with mock.patch.object(torch.jit, "script", lambda fn: fn):
        spec.loader.exec_module(module)
    return module


def compare_version(cmp, module, config: dict, attn_scale: str, args) -> None:
    """Official model of one code version vs edgec with the matching `attn_scale`."""
    torch.manual_seed(args.seed)
    official = module.build_segformer3d_model(config).eval()
    state = cs.seeded_state_dict(official.state_dict(), args.seed)
    official.load_state_dict(state, strict=True)
    ours = edgec.models.create("segformer3d", checkpoint=state, attn_scale=attn_scale)
    g = torch.Generator().manual_seed(args.seed + 1)
    x = torch.randn(
        args.batch, config["model_parameters"]["in_channels"], *[args.size] * 3, generator=g
    )
    tag = f"attn_scale={attn_scale}"
    with torch.no_grad():
        feats_ref = official.segformer_encoder(x)
        feats = ours.segformer_encoder(x)
        cmp.compare(f"{tag} segformer_encoder(x)", list(feats_ref), list(feats))
        # The same (official) features into both decoders. edgec's decoder stops at the 1/4
        # grid and its model applies the ×4 that the official decoder ends with.
        decoded = ours.segformer_decoder(list(feats_ref))
        upsampled = F.interpolate(
            decoded, scale_factor=ours.upscale, mode="trilinear", align_corners=False
        )
        cmp.compare(
            f"{tag} segformer_decoder(c1..c4)", official.segformer_decoder(*feats_ref), upsampled
        )
        reference = official(x)
        cmp.compare(f"{tag} model(x)", reference, ours(x))
        other = "num_heads" if attn_scale == "head_dim" else "head_dim"
        control = edgec.models.create("segformer3d", checkpoint=state, attn_scale=other)
        cmp.compare(f"{tag} vs edgec attn_scale={other} model(x)", reference, control(x), False)


def main() -> int:
    p = cs.parser(__doc__.splitlines()[0], "segformer3d")
    p.add_argument(
        "--official-repo-2024",
        type=Path,
        help="tree of commit 5a149a6 (1/√num_heads); without it only head_dim is compared",
    )
    p.add_argument("--size", type=int, default=64, help="cubic volume side (multiple of 32)")
    p.add_argument("--batch", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    head = cs.require(args.official_repo, MODULE)
    config = yaml.safe_load((head / CONFIG).read_text())
    cmp = cs.Comparison("segformer3d", args.rtol)
    cmp.source("head", head, config=CONFIG, attention="1/sqrt(head_dim) (SDPA)")
    compare_version(cmp, load_official(head, "head"), config, "head_dim", args)
    if args.official_repo_2024 is not None:
        old = cs.require(args.official_repo_2024, MODULE)
        cmp.source("2024", old, attention="1/sqrt(num_heads)")
        compare_version(cmp, load_official(old, "2024"), config, "num_heads", args)
    else:
        cmp.note("no --official-repo-2024: attn_scale='num_heads' not compared")
    cmp.note("official HEAD cube_root imported with torch.jit.script as the identity")
    settings = {"input": [args.batch, 4, args.size, args.size, args.size], "seed": args.seed}
    return cmp.write(args.out, started, settings)


if __name__ == "__main__":
    raise SystemExit(main())
