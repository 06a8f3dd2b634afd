"""Test support: official-layout checkpoints from the shared manifests, and the official forward.

`official_state_dict` builds non-trivial random tensors of every key/shape in
../shared/reference/checkpoints/<variant>.json. `official_forward` with `efficientvit_block` or
`shvit_block` is a small functional statement of the official EfficientViT-M / SHViT forwards
written from reference/models-a.md §1.2 / §2.2 (not the official code), used to check that
what edgec loads and exports computes what the official implementation computes.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
MANIFESTS = SHARED / "reference" / "checkpoints"


def levit_idxs(r: int) -> torch.Tensor:
    """The bias index table by its definition: offsets numbered in order of first appearance."""
    points = list(itertools.product(range(r), range(r)))
    seen: dict[tuple[int, int], int] = {}
    idxs = []
    for p1 in points:
        for p2 in points:
            off = (abs(p1[0] - p2[0]), abs(p1[1] - p2[1]))
            idxs.append(seen.setdefault(off, len(seen)))
    return torch.tensor(idxs).view(len(points), len(points))


# The last norm of each residual branch (EfficientViT/SHViT ffn/attention/dw, LowFormer blocks).
RESIDUAL_OUT_GAMMAS = (
    "pw2.bn.weight",
    "proj.1.bn.weight",
    ".m.bn.weight",
    "point_conv.norm.weight",
)


def manifest(variant: str) -> dict:
    return json.loads((MANIFESTS / f"{variant}.json").read_text())


def official_state_dict(variant: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """Non-trivial random tensors of every manifest key/shape (BN stats sane, biases random)."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for key, shape, dtype in manifest(variant)["state_dict"]:
        if key.endswith("attention_bias_idxs"):
            sd[key] = levit_idxs(round(shape[0] ** 0.5))
        elif dtype == "int64":
            sd[key] = torch.zeros(shape, dtype=torch.int64)
        elif key.endswith("running_var"):
            sd[key] = torch.rand(shape, generator=g) + 0.5
        elif key.endswith(RESIDUAL_OUT_GAMMAS):  # small, as in trained nets: no blow-up
            sd[key] = 0.2 * (1 + 0.2 * torch.randn(shape, generator=g))
        elif key.endswith(("bn.weight", "norm.weight", "pre_norm.weight")) or (
            len(shape) == 1 and key.endswith("weight")
        ):
            sd[key] = 1 + 0.2 * torch.randn(shape, generator=g)
        elif key.endswith("attention_biases"):
            sd[key] = torch.randn(shape, generator=g)
        elif len(shape) >= 2:
            fan_in = int(np.prod(shape[1:]))
            sd[key] = torch.randn(shape, generator=g) / fan_in**0.5
        else:
            sd[key] = 0.1 * torch.randn(shape, generator=g)
    return sd


# ---- functional statements of the official forwards (models-a.md §1.2, §2.2) ----------------


def conv_bn(x, sd, p, stride=1):
    w = sd[f"{p}.c.weight"]
    x = F.conv2d(x, w, None, stride, w.shape[-1] // 2, 1, x.shape[1] // w.shape[1])
    bn = [sd[f"{p}.bn.{n}"] for n in ("running_mean", "running_var", "weight", "bias")]
    return F.batch_norm(x, *bn, False, 0.0, 1e-5)


def ffn(x, sd, p):
    return conv_bn(F.relu(conv_bn(x, sd, f"{p}.pw1")), sd, f"{p}.pw2")


def patch_merging(x, sd, p):
    x = F.relu(conv_bn(F.relu(conv_bn(x, sd, f"{p}.conv1")), sd, f"{p}.conv2", stride=2))
    s = x.mean((2, 3), keepdim=True)
    s = F.relu(F.conv2d(s, sd[f"{p}.se.fc1.weight"], sd[f"{p}.se.fc1.bias"]))
    x = x * torch.sigmoid(F.conv2d(s, sd[f"{p}.se.fc2.weight"], sd[f"{p}.se.fc2.bias"]))
    return conv_bn(x, sd, f"{p}.conv3")


def stem(x, sd):
    for i in (0, 2, 4):
        x = F.relu(conv_bn(x, sd, f"patch_embed.{i}", stride=2))
    return conv_bn(x, sd, "patch_embed.6", stride=2)


def head(x, sd):
    x = x.mean((2, 3))
    bn = [sd[f"head.bn.{n}"] for n in ("running_mean", "running_var", "weight", "bias")]
    return F.linear(F.batch_norm(x, *bn, False, 0.0, 1e-5), sd["head.l.weight"], sd["head.l.bias"])


def cascaded_group_attention(x, sd, p):
    b, _, h, w = x.shape
    biases, idxs = sd[f"{p}.attention_biases"], sd[f"{p}.attention_bias_idxs"]
    heads = biases.shape[0]
    splits, outs = x.chunk(heads, dim=1), []
    for i in range(heads):
        feat = splits[i] if i == 0 else outs[-1] + splits[i]  # the cascade
        qkv = conv_bn(feat, sd, f"{p}.qkvs.{i}")
        q, k, v = qkv.split([16, 16, qkv.shape[1] - 32], dim=1)
        q = conv_bn(q, sd, f"{p}.dws.{i}")  # per-head dw kernel on q only
        q, k, v = q.flatten(2), k.flatten(2), v.flatten(2)
        attn = (q.transpose(1, 2) @ k) * 0.25 + biases[i][idxs]
        outs.append((v @ attn.softmax(-1).transpose(1, 2)).view(b, -1, h, w))
    return conv_bn(F.relu(torch.cat(outs, 1)), sd, f"{p}.proj.1")


def local_window_attention(x, sd, p, ws=7):
    b, c, h, w = x.shape
    if h <= ws and w <= ws:
        return cascaded_group_attention(x, sd, p)
    ph, pw = -h % ws, -w % ws
    x = F.pad(x, (0, pw, 0, ph))
    nh, nw = (h + ph) // ws, (w + pw) // ws
    win = x.view(b, c, nh, ws, nw, ws).permute(0, 2, 4, 1, 3, 5).reshape(-1, c, ws, ws)
    win = cascaded_group_attention(win, sd, p)
    x = win.view(b, nh, nw, c, ws, ws).permute(0, 3, 1, 4, 2, 5).reshape(b, c, nh * ws, nw * ws)
    return x[:, :, :h, :w]


def shsa(x, sd, p):
    b, c, h, w = x.shape
    pdim = sd[f"{p}.pre_norm.weight"].shape[0]
    x1, x2 = x.split([pdim, c - pdim], dim=1)
    x1 = F.group_norm(x1, 1, sd[f"{p}.pre_norm.weight"], sd[f"{p}.pre_norm.bias"], 1e-5)
    q, k, v = conv_bn(x1, sd, f"{p}.qkv").flatten(2).split([16, 16, pdim], dim=1)
    attn = ((q.transpose(1, 2) @ k) * 0.25).softmax(-1)
    x1 = (v @ attn.transpose(1, 2)).view(b, pdim, h, w)
    return conv_bn(F.relu(torch.cat([x1, x2], 1)), sd, f"{p}.proj.1")


def official_forward(x, sd, block):
    """Stem, blocks1..3 (downsample entries recognised by their keys, blocks by `block`), head."""
    x = stem(x, sd)
    for n in (1, 2, 3):
        entries = sorted({int(k.split(".")[1]) for k in sd if k.startswith(f"blocks{n}.")})
        for j in entries:
            p = f"blocks{n}.{j}"
            if f"{p}.conv1.c.weight" in sd:
                x = patch_merging(x, sd, p)
            elif f"{p}.0.m.c.weight" in sd:
                x = x + conv_bn(x, sd, f"{p}.0.m")
                x = x + ffn(x, sd, f"{p}.1.m")
            else:
                x = block(x, sd, p)
    return head(x, sd)


def efficientvit_block(x, sd, p):
    x = x + conv_bn(x, sd, f"{p}.dw0.m")
    x = x + ffn(x, sd, f"{p}.ffn0.m")
    x = x + local_window_attention(x, sd, f"{p}.mixer.m.attn")
    x = x + conv_bn(x, sd, f"{p}.dw1.m")
    return x + ffn(x, sd, f"{p}.ffn1.m")


def shvit_block(x, sd, p):
    x = x + conv_bn(x, sd, f"{p}.conv.m")
    if f"{p}.mixer.m.qkv.c.weight" in sd:
        x = x + shsa(x, sd, f"{p}.mixer.m")
    return x + ffn(x, sd, f"{p}.ffn.m")
