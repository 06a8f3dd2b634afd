"""Segmenter's transformer block (pre-norm ViT block) and its activations.

Written from reference/models-b.md §3.2 (not the official code). Module and parameter names
follow rstrudel/segmenter (`norm1`, `attn.qkv`, `attn.proj`, `norm2`, `mlp.fc1`, `mlp.fc2`),
so the encoder's and the mask decoder's blocks load official weights as they are.

    x ─┬─ LN ─ qkv ─ softmax(q·kᵀ·d_h^-½) · v ─ proj ─(+)─┬─ LN ─ fc1 ─ act ─ fc2 ─(+)─►
       └───────────────────────────────────────────────┘  └───────────────────────┘

Inference only: dropout and drop-path are identities in eval mode and are left out.

`act` is the MLP activation:
- "gelu": exact GELU (erf), as in Segmenter;
- "lambda_shift_gelu": x·σ(λ·x), the float function that I-ViT's ShiftGELU approximates in
  integer arithmetic (there λ = 1.702). I-Segmenter's λ-ShiftGELU makes λ a chosen constant;
  its paper (arXiv 2509.10334) is not readable here, so the float form x·σ(λx) with
  λ = 1.702 by default is edgec's choice, and `gelu_lambda` sets it (see docs/models.md).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

ACTIVATIONS = ("gelu", "lambda_shift_gelu")
SHIFT_GELU_LAMBDA = 1.702  # GELU(x) ≈ x·σ(1.702x) (Hendrycks & Gimpel; I-ViT's ShiftGELU)


class LambdaShiftGELU(nn.Module):
    """x·σ(λ·x): the float form of λ-ShiftGELU (λ a constant, not a parameter)."""

    def __init__(self, lam: float = SHIFT_GELU_LAMBDA):
        super().__init__()
        if not lam > 0:
            raise ValueError(f"λ must be positive, got {lam}")
        self.lam = float(lam)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.lam * x)

    def extra_repr(self) -> str:
        return f"lambda={self.lam}"


def activation(name: str, lam: float) -> Callable[[], nn.Module]:
    """A maker of the MLP activation called `name` (one of ACTIVATIONS)."""
    if name == "gelu":
        return nn.GELU
    if name == "lambda_shift_gelu":
        return lambda: LambdaShiftGELU(lam)
    raise ValueError(f"activation must be one of {ACTIVATIONS}, not {name!r}")


class FeedForward(nn.Module):
    """fc1 → activation → fc2."""

    def __init__(self, dim: int, hidden: int, act: Callable[[], nn.Module]):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = act()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Attention(nn.Module):
    """Multi-head self-attention with one fused qkv projection; scale 1/√head_dim."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))


class Block(nn.Module):
    """Pre-norm transformer block (LayerNorm eps 1e-5, the PyTorch default Segmenter uses)."""

    def __init__(self, dim: int, heads: int, hidden: int, act: Callable[[], nn.Module]):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.mlp = FeedForward(dim, hidden, act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))
