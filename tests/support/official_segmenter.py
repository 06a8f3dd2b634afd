"""Test support: a functional statement of the official Segmenter forward, and its weights.

`segmenter_forward(image, state_dict)` restates what rstrudel/segmenter's `Segmenter.forward`
computes (reference/models-b.md §3.2), written as plain tensor functions over the official
state_dict (not the official code, and sharing nothing with edgec's modules), including the
official quirks: the position embedding is resized only when the *token count* differs from
the trained one, bilinearly with align_corners=False; padding is zeros at the bottom/right.
The I-Segmenter changes are arguments: `l2_normalize`, `act`, `upsample` (ISEGMENTER).

`segmenter_state_dict(variant)` is the manifest's tensors with magnitudes that make every
part matter (position embedding, cls token and class embeddings as large as the patch
features), so a misplaced embedding or a wrong resize cannot hide under the tolerance.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from support.official import official_state_dict

PATCH = 16


def shift_gelu(x: torch.Tensor, lam: float = 1.702) -> torch.Tensor:
    return x * torch.sigmoid(lam * x)


# I-Segmenter as edgec reads it: no L2 normalisation, x·σ(1.702x), nearest ×16 upsampling.
ISEGMENTER = {"l2_normalize": False, "act": shift_gelu, "upsample": "nearest"}


def segmenter_state_dict(variant: str, seed: int = 0) -> dict[str, torch.Tensor]:
    sd = official_state_dict(variant, seed)
    g = torch.Generator().manual_seed(seed + 100)
    for key in ("encoder.pos_embed", "encoder.cls_token", "decoder.cls_emb"):
        if key in sd:
            sd[key] = 0.5 * torch.randn(sd[key].shape, generator=g)
    return sd


def gelu_erf(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))


def _ln(x, sd, p):
    return F.layer_norm(x, x.shape[-1:], sd[f"{p}.weight"], sd[f"{p}.bias"], 1e-5)


def _lin(x, sd, p):
    return F.linear(x, sd[f"{p}.weight"], sd[f"{p}.bias"])


def _block(x, sd, p, heads, act):
    b, n, d = x.shape
    qkv = _lin(_ln(x, sd, f"{p}.norm1"), sd, f"{p}.attn.qkv")
    q, k, v = qkv.view(b, n, 3, heads, d // heads).unbind(2)  # (b, n, heads, dh) each
    logits = torch.einsum("bqhc,bkhc->bhqk", q, k) / math.sqrt(d // heads)
    y = torch.einsum("bhqk,bkhc->bqhc", logits.softmax(-1), v).reshape(b, n, d)
    x = x + _lin(y, sd, f"{p}.attn.proj")
    y = _lin(act(_lin(_ln(x, sd, f"{p}.norm2"), sd, f"{p}.mlp.fc1")), sd, f"{p}.mlp.fc2")
    return x + y


def _depth(sd, prefix):
    return len({k.split(".")[2] for k in sd if k.startswith(f"{prefix}.blocks.")})


def segmenter_forward(
    image: torch.Tensor,
    sd: dict[str, torch.Tensor],
    *,
    l2_normalize: bool = True,
    act=gelu_erf,
    upsample: str = "bilinear",
    resize_when: str = "token_count",
) -> torch.Tensor:
    """Logits (B, n_cls, H, W) of the official Segmenter (ViT, 3 heads per 192 channels)."""
    b, _, h0, w0 = image.shape
    image = F.pad(image, (0, (PATCH - w0 % PATCH) % PATCH, 0, (PATCH - h0 % PATCH) % PATCH))
    gh, gw = image.shape[2] // PATCH, image.shape[3] // PATCH
    w = sd["encoder.patch_embed.proj.weight"]
    x = F.conv2d(image, w, sd["encoder.patch_embed.proj.bias"], stride=PATCH)
    d = w.shape[0]
    x = torch.cat([sd["encoder.cls_token"].expand(b, 1, d), x.reshape(b, d, -1).mT], 1)
    pos = sd["encoder.pos_embed"]
    old = math.isqrt(pos.shape[1] - 1)  # the trained grid is square (512² → 32×32)
    differs = x.shape[1] != pos.shape[1] if resize_when == "token_count" else (gh, gw) != (old,) * 2
    if differs:
        grid = pos[0, 1:].reshape(old, old, d).permute(2, 0, 1)[None]
        grid = F.interpolate(grid, size=(gh, gw), mode="bilinear", align_corners=False)
        pos = torch.cat([pos[:, :1], grid[0].reshape(d, -1).T[None]], 1)
    x = x + pos
    for i in range(_depth(sd, "encoder")):
        x = _block(x, sd, f"encoder.blocks.{i}", d // 64, act)
    x = _ln(x, sd, "encoder.norm")[:, 1:]
    if "decoder.head.weight" in sd:
        masks = _lin(x, sd, "decoder.head")
    else:
        n_cls = sd["decoder.cls_emb"].shape[1]
        x = torch.cat([_lin(x, sd, "decoder.proj_dec"), sd["decoder.cls_emb"].expand(b, -1, -1)], 1)
        for i in range(_depth(sd, "decoder")):
            x = _block(x, sd, f"decoder.blocks.{i}", d // 64, act)
        x = _ln(x, sd, "decoder.decoder_norm")
        patches = x[:, :-n_cls] @ sd["decoder.proj_patch"]
        classes = x[:, -n_cls:] @ sd["decoder.proj_classes"]
        if l2_normalize:
            patches = F.normalize(patches, dim=-1, eps=0.0)
            classes = F.normalize(classes, dim=-1, eps=0.0)
        masks = _ln(patches @ classes.mT, sd, "decoder.mask_norm")
    masks = masks.mT.reshape(b, -1, gh, gw)
    size = (gh * PATCH, gw * PATCH)
    if upsample == "bilinear":
        masks = F.interpolate(masks, size=size, mode="bilinear", align_corners=False)
    else:
        masks = masks.repeat_interleave(PATCH, 2).repeat_interleave(PATCH, 3)
    return masks[:, :, :h0, :w0]
