"""The image-encoder trunk: a plain ViT (ViTDet style) with 14×14 window attention.

Official layout (backbones/vitdet.py): `patch_embed.proj` Conv 16×16/16, `pos_embed`
(1, 1 + 14², D) pretrained at 224 with a cls slot, `blocks.{i}` pre-norm blocks
(`norm1`, `attn.qkv`, `attn.proj`, `norm2`, `mlp.layers.{0,1}`), LayerNorm eps 1e-6, erf-GELU,
no relative position bias. Blocks 2, 5, 8, 11 attend globally; the others attend within
zero-padded 14×14 windows. The output is the last block, NCHW.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from edgec.models.efficienttam.layers import MLP

WINDOW_BLOCKS = (0, 1, 3, 4, 6, 7, 9, 10)


def window_partition(x: torch.Tensor, window: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """(B, H, W, C) → (B·nW, window, window, C), zero-padding H, W up to multiples of window."""
    b, h, w, c = x.shape
    pad_h, pad_w = (window - h % window) % window, (window - w % window) % window
    if pad_h or pad_w:
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    hp, wp = h + pad_h, w + pad_w
    x = x.view(b, hp // window, window, wp // window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window, window, c), (hp, wp)


def window_unpartition(
    windows: torch.Tensor, window: int, padded: tuple[int, int], size: tuple[int, int]
) -> torch.Tensor:
    """Inverse of `window_partition`: back to (B, H, W, C) without the padding."""
    hp, wp = padded
    h, w = size
    b = windows.shape[0] // (hp * wp // window // window)
    x = windows.reshape(b, hp // window, wp // window, window, window, -1)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(b, hp, wp, -1)
    return x[:, :h, :w, :] if hp > h or wp > w else x


class PatchEmbed(nn.Module):
    """Conv patchify, then NCHW → NHWC."""

    def __init__(self, patch: int, in_chans: int, embed_dim: int):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch, stride=patch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).permute(0, 2, 3, 1)


class Attention(nn.Module):
    """Multi-head self-attention over the tokens of an (B, H, W, C) map."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, _ = x.shape
        qkv = self.qkv(x).reshape(b, h * w, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        x = F.scaled_dot_product_attention(q, k, v)
        x = x.view(b, self.num_heads, h, w, -1).permute(0, 2, 3, 1, 4).reshape(b, h, w, -1)
        return self.proj(x)


class Block(nn.Module):
    """Pre-norm block: x + Attn(LN(x)) (windowed when window > 0), then x + MLP(LN(x))."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, window: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = MLP(dim, int(dim * mlp_ratio), dim, num_layers=2, activation=nn.GELU)
        self.window = window

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.norm1(x)
        if self.window > 0:
            size = (x.shape[1], x.shape[2])
            x, padded = window_partition(x, self.window)
            x = window_unpartition(self.attn(x), self.window, padded, size)
        else:
            x = self.attn(x)
        x = shortcut + x
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module):
    """Plain ViT trunk; `forward` returns [last block as (B, D, H/16, W/16)] (the official list)."""

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        depth: int = 12,
        patch_size: int = 16,
        mlp_ratio: float = 4.0,
        window_size: int = 14,
        window_block_indexes: tuple[int, ...] = WINDOW_BLOCKS,
        pretrain_img_size: int = 224,
    ):
        super().__init__()
        self.patch_embed = PatchEmbed(patch_size, 3, embed_dim)
        positions = (pretrain_img_size // patch_size) ** 2 + 1  # + the pretraining cls slot
        self.pos_embed = nn.Parameter(torch.zeros(1, positions, embed_dim))
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio, window_size if i in window_block_indexes else 0)
            for i in range(depth)
        )
        self.channel_list = [embed_dim]

    def abs_pos(self, h: int, w: int) -> torch.Tensor:
        """`pos_embed` without its cls slot, bicubic-resized to (1, h, w, D) (`get_abs_pos`)."""
        grid = self.pos_embed[:, 1:]
        size = math.isqrt(grid.shape[1])
        grid = grid.reshape(1, size, size, -1)
        if (size, size) == (h, w):
            return grid
        resized = F.interpolate(
            grid.permute(0, 3, 1, 2), size=(h, w), mode="bicubic", align_corners=False
        )
        return resized.permute(0, 2, 3, 1)

    def forward_with_pos(self, x: torch.Tensor, abs_pos: torch.Tensor) -> list[torch.Tensor]:
        """The trunk with a given (1, h, w, D) absolute position table (a constant in export)."""
        x = self.patch_embed(x) + abs_pos
        for block in self.blocks:
            x = block(x)
        return [x.permute(0, 3, 1, 2)]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        patch = self.patch_embed.proj.stride[0]
        return self.forward_with_pos(x, self.abs_pos(x.shape[-2] // patch, x.shape[-1] // patch))
