"""SegFormer3D building blocks: patch embedding, efficient self-attention, Mix-FFN, block.

Written from reference/models-b.md §2.3 (not the official code). Module and parameter names
follow the official checkpoint layout (OSUPCVLab/SegFormer3D), so its state_dict loads as is.

Tokens are (B, N, C) with N = D·H·W in row-major (D, H, W) order, exactly as
`x.flatten(2).transpose(1, 2)` produces them. Unlike the official code, which recovers the
grid with a cube root (wrong for non-cubic volumes), every block is given the grid `dims`
= (D, H, W) explicitly.
"""

from __future__ import annotations

import math

import torch
from torch import nn

Dims = tuple[int, int, int]
ATTN_SCALES = ("num_heads", "head_dim")


def tokens_to_volume(x: torch.Tensor, dims: Dims) -> torch.Tensor:
    """(B, N, C) tokens → (B, C, D, H, W) volume."""
    return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], *dims)


def volume_to_tokens(x: torch.Tensor) -> tuple[torch.Tensor, Dims]:
    """(B, C, D, H, W) volume → (B, N, C) tokens and the grid (D, H, W)."""
    dims = (int(x.shape[2]), int(x.shape[3]), int(x.shape[4]))
    return x.flatten(2).transpose(1, 2), dims


class PatchEmbedding(nn.Module):
    """Overlapping patch embedding: Conv3d(k, s, p) → tokens → LayerNorm."""

    def __init__(self, in_channels: int, dim: int, kernel: int, stride: int, padding: int):
        super().__init__()
        self.patch_embeddings = nn.Conv3d(in_channels, dim, kernel, stride, padding)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, Dims]:
        tokens, dims = volume_to_tokens(self.patch_embeddings(x))
        return self.norm(tokens), dims


class SelfAttention(nn.Module):
    """Multi-head attention with keys/values from a grid reduced by a strided Conv3d (sr).

    `attn_scale` picks the logit scale: "num_heads" → 1/√num_heads (the 2024 release that
    produced the published weights), "head_dim" → 1/√head_dim (the current official code).
    """

    def __init__(self, dim: int, num_heads: int, sr_ratio: int, attn_scale: str = "num_heads"):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        if attn_scale not in ATTN_SCALES:
            raise ValueError(f"attn_scale must be one of {ATTN_SCALES}, not {attn_scale!r}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.attn_scale = attn_scale
        self.scale = 1 / math.sqrt(num_heads if attn_scale == "num_heads" else self.head_dim)
        self.query = nn.Linear(dim, dim)
        self.key_value = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        self.sr_ratio = sr_ratio
        if sr_ratio > 1:
            self.sr = nn.Conv3d(dim, dim, sr_ratio, sr_ratio)
            self.sr_norm = nn.LayerNorm(dim)

    def _heads(self, x: torch.Tensor, parts: int) -> torch.Tensor:
        b, n, _ = x.shape
        return x.reshape(b, n, parts, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)

    def forward(self, x: torch.Tensor, dims: Dims) -> torch.Tensor:
        b, n, c = x.shape
        q = self._heads(self.query(x), 1)[0]
        kv_in = x
        if self.sr_ratio > 1:
            kv_in = self.sr_norm(volume_to_tokens(self.sr(tokens_to_volume(x, dims)))[0])
        k, v = self._heads(self.key_value(kv_in), 2)
        attn = torch.softmax((q @ k.transpose(-2, -1)) * self.scale, dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))


class DWConv(nn.Module):
    """Depthwise Conv3d 3³ + BatchNorm3d on the token grid."""

    def __init__(self, dim: int):
        super().__init__()
        self.dwconv = nn.Conv3d(dim, dim, 3, 1, 1, groups=dim)
        self.bn = nn.BatchNorm3d(dim)

    def forward(self, x: torch.Tensor, dims: Dims) -> torch.Tensor:
        return volume_to_tokens(self.bn(self.dwconv(tokens_to_volume(x, dims))))[0]


class MixFFN(nn.Module):
    """Linear(C, rC) → DWConv+BN → GELU → Linear(rC, C)."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.dwconv = DWConv(hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor, dims: Dims) -> torch.Tensor:
        return self.fc2(self.act(self.dwconv(self.fc1(x), dims)))


class TransformerBlock(nn.Module):
    """Pre-norm block: x += Attn(LN(x)); x += MixFFN(LN(x))."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: int, sr_ratio: int, attn_scale: str):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attention = SelfAttention(dim, num_heads, sr_ratio, attn_scale)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MixFFN(dim, dim * mlp_ratio)

    def forward(self, x: torch.Tensor, dims: Dims) -> torch.Tensor:
        x = x + self.attention(self.norm1(x), dims)
        return x + self.mlp(self.norm2(x), dims)
