"""Rules shared by the official EfficientViT-M (microsoft/Cream) and SHViT (ysj9909/SHViT) layouts.

Both official models keep their three stages in `blocks1`, `blocks2`, `blocks3`
(`nn.Sequential`). A stage entered by a downsample starts with three downsample entries
(`Sequential(Residual dw-conv, Residual FFN)`, `PatchMerging`, `Sequential(...)`), then its
blocks. timm keeps the same modules under `stages.{n-1}`, with the downsample entries under
`stages.{n-1}.downsample` and the blocks under `stages.{n-1}.blocks`.

These helpers split an official key into (stage, entry, rest), tell downsample entries from
blocks by the names of their children, apply the official loader's 2-D → 4-D weight shim, and
fold a distillation head (`head_dist`, which timm's modules lack) into `head`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping

import torch

from edgec.errors import ModelLoadError

_BLOCKS_KEY = re.compile(r"^blocks(?P<stage>\d+)\.(?P<entry>\d+)\.(?P<rest>.+)$")


def split_blocks_key(key: str) -> tuple[int, int, str] | None:
    """`blocks2.4.mixer.m.qkv.c.weight` → (2, 4, 'mixer.m.qkv.c.weight'); None for other keys."""
    match = _BLOCKS_KEY.match(key)
    if match is None:
        return None
    return int(match["stage"]), int(match["entry"]), match["rest"]


def has_blocks_keys(keys: Iterable[str]) -> bool:
    """True when any key uses the official `blocks{n}.{i}.` naming."""
    return any(_BLOCKS_KEY.match(k) for k in keys)


def downsample_entries(keys: Iterable[str], block_children: set[str]) -> dict[int, list[int]]:
    """Per official stage, the sorted entry indices that are downsample parts, not blocks.

    An entry is a block when any name right below it is one of `block_children` (e.g. `dw0`,
    `mixer`); an entry with none of them (`0.m...`, `conv1`, `se`) belongs to the downsample.
    Downsample entries must come before every block of their stage.
    """
    entries: dict[int, set[int]] = {}
    blocks: dict[int, set[int]] = {}
    for key in keys:
        parts = split_blocks_key(key)
        if parts is None:
            continue
        stage, entry, rest = parts
        entries.setdefault(stage, set()).add(entry)
        if rest.split(".", 1)[0] in block_children:
            blocks.setdefault(stage, set()).add(entry)
    result = {}
    for stage in sorted(entries):
        bs = sorted(blocks.get(stage, ()))
        ds = sorted(entries[stage] - set(bs))
        if (ds and bs and max(ds) > min(bs)) or ds != list(range(len(ds))):
            raise ModelLoadError(
                f"official checkpoint layout not understood: blocks{stage} mixes downsample "
                f"entries {ds} and blocks {bs}",
                "check that the checkpoint belongs to the architecture given with --arch",
            )
        result[stage] = ds
    return result


def nested_sizes(keys: Iterable[str], stage: int, entries: list[int]) -> dict[int, int]:
    """For each downsample entry, how many children it has if it is a Sequential (else 1)."""
    children: dict[int, set[int]] = {e: set() for e in entries}
    for key in keys:
        parts = split_blocks_key(key)
        if parts is None or parts[0] != stage or parts[1] not in children:
            continue
        head = parts[2].split(".", 1)[0]
        if head.isdigit():
            children[parts[1]].add(int(head))
    return {e: (max(c) + 1 if c else 1) for e, c in children.items()}


def rename_component(key: str, old: str, new: str) -> str:
    """Replace each dotted path component equal to `old` by `new` (`a.c.w` → `a.conv.w`)."""
    return ".".join(new if part == old else part for part in key.split("."))


def unsqueeze_2d_conv_weights(
    state_dict: Mapping[str, torch.Tensor], is_conv_weight: Callable[[str], bool]
) -> dict[str, torch.Tensor]:
    """The official loaders' shim: a 2-D 1×1-conv weight becomes `w[:, :, None, None]`."""
    return {
        k: v[:, :, None, None] if v.ndim == 2 and is_conv_weight(k) else v
        for k, v in state_dict.items()
    }


def count_2d_conv_weights(
    state_dict: Mapping[str, torch.Tensor], is_conv_weight: Callable[[str], bool]
) -> int:
    """How many conv weights the 2-D → 4-D shim would reshape."""
    return sum(1 for k, v in state_dict.items() if v.ndim == 2 and is_conv_weight(k))


def fold_distillation_head(
    state_dict: Mapping[str, torch.Tensor], eps: float = 1e-5
) -> dict[str, torch.Tensor]:
    """Fold an official distillation head into `head`; other state_dicts come back unchanged.

    Trained with distillation, both official models have `head` and `head_dist`, each a
    `BN_Linear` (BatchNorm1d `bn`, then Linear `l`) on the same pooled features, and their eval
    forward returns `(head(x) + head_dist(x)) / 2`. In eval a BN_Linear is affine:
    `W·(s⊙x + t) + b` with `s = γ/√(var + eps)`, `t = β − mean·s`. The average is one
    BN_Linear, written into `head`: an identity BatchNorm (γ 1, β 0, mean 0, var 1 − eps) and
    `W = (W₁·diag(s₁) + W₂·diag(s₂)) / 2`, `b = (W₁t₁ + b₁ + W₂t₂ + b₂) / 2` (float64 math).
    """
    if not any(k.startswith("head_dist.") for k in state_dict):
        return dict(state_dict)
    weight, bias = torch.zeros(()), torch.zeros(())
    for head in ("head", "head_dist"):
        missing = [
            f"{head}.{name}"
            for name in ("bn.weight", "bn.bias", "bn.running_mean", "bn.running_var", "l.weight")
            if f"{head}.{name}" not in state_dict
        ]
        if missing:
            raise ModelLoadError(
                f"official checkpoint with a distillation head lacks {', '.join(missing)}",
                "the file is incomplete: re-save both heads (head.*, head_dist.*)",
            )
        sd = {k: v.double() for k, v in state_dict.items() if k.startswith(f"{head}.")}
        scale = sd[f"{head}.bn.weight"] / (sd[f"{head}.bn.running_var"] + eps).sqrt()
        shift = sd[f"{head}.bn.bias"] - sd[f"{head}.bn.running_mean"] * scale
        w = sd[f"{head}.l.weight"]
        b = sd.get(f"{head}.l.bias", torch.zeros(w.shape[0], dtype=w.dtype))
        weight = weight + w * scale / 2
        bias = bias + (w @ shift + b) / 2
    out = {k: v for k, v in state_dict.items() if not k.startswith("head_dist.")}
    dtype = state_dict["head.l.weight"].dtype
    width = weight.shape[1]
    out["head.bn.weight"] = torch.ones(width, dtype=dtype)
    out["head.bn.bias"] = torch.zeros(width, dtype=dtype)
    out["head.bn.running_mean"] = torch.zeros(width, dtype=dtype)
    out["head.bn.running_var"] = torch.full((width,), 1 - eps, dtype=dtype)
    out["head.l.weight"] = weight.to(dtype)
    out["head.l.bias"] = bias.to(dtype)
    return out
