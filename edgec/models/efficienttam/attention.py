"""Attention layers of the SAM heads and the memory attention, in the official layout.

All four keep `q_proj`, `k_proj` (`kv_in_dim` → internal), `v_proj`, `out_proj` and take
(B, N, C) tensors; `downsample_rate` shrinks the internal width (SAM cross-attention: 2).

- `Attention`: plain multi-head attention (SAM two-way transformer).
- `RoPEAttention`: 2-D axial RoPE on q and on the first `len(k) - num_k_exclude_rope` keys,
  the q table reused per memory frame (`rope_k_repeat`); full softmax attention.
- `EfficientRoPEAttention1` / `2`: the efficient memory cross-attention of EfficientTAM
  (paper §3.2): when there are at least two frames of spatial keys, keys and values (after
  projection; keys after RoPE) are average-pooled 2×2 per frame on the query grid, object-
  pointer tokens stay un-pooled, and ln(4) compensates the 4 merged tokens — added to the
  pooled logits (eq. 5, `…1`) or to the pooled key vectors (eq. 6, `…2`, as the official code
  does). With one frame or fewer they fall back to full attention, like the official code.
  The pooled path assumes a square query grid and one head, as the official reshape does.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from edgec.models.efficienttam.rope import cos_sin_tables, rotate

POOL = 2  # the official `s_kernel_size`
LOG_POOL_AREA = 2 * math.log(POOL)  # ln(4): 4 keys merged into one landmark


class Attention(nn.Module):
    """Multi-head attention with separate q/k/v/out projections."""

    def __init__(
        self,
        embedding_dim: int,
        num_heads: int,
        downsample_rate: int = 1,
        dropout: float = 0.0,
        kv_in_dim: int | None = None,
    ):
        super().__init__()
        self.embedding_dim = embedding_dim
        self.kv_in_dim = kv_in_dim if kv_in_dim is not None else embedding_dim
        self.internal_dim = embedding_dim // downsample_rate
        self.num_heads = num_heads
        if self.internal_dim % num_heads:
            raise ValueError("num_heads must divide embedding_dim // downsample_rate")
        self.q_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.k_proj = nn.Linear(self.kv_in_dim, self.internal_dim)
        self.v_proj = nn.Linear(self.kv_in_dim, self.internal_dim)
        self.out_proj = nn.Linear(self.internal_dim, embedding_dim)
        self.dropout_p = dropout

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        return x.reshape(b, n, self.num_heads, c // self.num_heads).transpose(1, 2)

    def _merge(self, x: torch.Tensor) -> torch.Tensor:
        b, h, n, c = x.shape
        return self.out_proj(x.transpose(1, 2).reshape(b, n, h * c))

    def _project(self, q, k, v) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self._heads(self.q_proj(q)), self._heads(self.k_proj(k)), self._heads(self.v_proj(v))

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        q, k, v = self._project(q, k, v)
        dropout = self.dropout_p if self.training else 0.0
        return self._merge(F.scaled_dot_product_attention(q, k, v, dropout_p=dropout))


class RoPEAttention(Attention):
    """Attention with 2-D axial RoPE (real cos/sin tables) on q and the spatial keys."""

    def __init__(
        self,
        *args,
        rope_theta: float = 10000.0,
        rope_k_repeat: bool = False,
        feat_sizes: tuple[int, int] = (64, 64),
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.rope_theta = rope_theta
        self.rope_k_repeat = rope_k_repeat
        cos, sin = cos_sin_tables(self.head_dim, feat_sizes[0], feat_sizes[1], rope_theta)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)

    @property
    def head_dim(self) -> int:
        return self.internal_dim // self.num_heads

    def _tables(self, tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The tables for a square grid of `tokens` queries (recomputed if not the default)."""
        if self.rope_cos.shape[0] == tokens:
            return self.rope_cos, self.rope_sin
        side = math.isqrt(tokens)
        if side * side != tokens:
            raise ValueError(f"RoPE needs a square query grid, got {tokens} tokens")
        cos, sin = cos_sin_tables(self.head_dim, side, side, self.rope_theta)
        return cos.to(self.rope_cos.device), sin.to(self.rope_sin.device)

    def forward(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, num_k_exclude_rope: int = 0
    ) -> torch.Tensor:
        q, k, v = self._project(q, k, v)
        nq = q.shape[-2]
        if nq != k.shape[-2] and not self.rope_k_repeat:
            raise ValueError("keys longer than queries need rope_k_repeat=True")
        cos, sin = self._tables(nq)
        num_k_rope = k.shape[-2] - num_k_exclude_rope
        q = rotate(q, cos, sin)
        k = torch.cat([rotate(k[:, :, :num_k_rope], cos, sin), k[:, :, num_k_rope:]], dim=2)
        return self._merge(self._attend(q, k, v, num_k_rope))

    def _attend(self, q, k, v, num_k_rope: int) -> torch.Tensor:
        dropout = self.dropout_p if self.training else 0.0
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout)


def pool_per_frame(x: torch.Tensor, num_rope: int, nq: int) -> torch.Tensor:
    """Average-pool 2×2 the first `num_rope` tokens frame by frame on the √nq × √nq grid.

    (B, 1, T·nq + P, d) → (B, 1, T·nq/4, d), in the official order (per frame, row-major).
    """
    b, _, _, d = x.shape
    side = math.isqrt(nq)
    spatial = x[:, :, :num_rope, :].reshape(b, -1, nq, d).transpose(-2, -1)
    pooled = F.avg_pool2d(spatial.reshape(b, -1, side, side), POOL, stride=POOL)
    return pooled.reshape(b, -1, d, nq // (POOL * POOL)).transpose(-2, -1).reshape(b, 1, -1, d)


class _PooledRoPEAttention(RoPEAttention):
    """Shared pooling path of the two efficient variants; `_pooled` differs."""

    def _attend(self, q, k, v, num_k_rope: int) -> torch.Tensor:
        nq = q.shape[-2]
        if not self.rope_k_repeat or num_k_rope <= nq:
            return super()._attend(q, k, v, num_k_rope)
        k_pool = pool_per_frame(k, num_k_rope, nq)
        v_all = torch.cat([pool_per_frame(v, num_k_rope, nq), v[:, :, num_k_rope:]], dim=2)
        return self._pooled(q, k_pool, k[:, :, num_k_rope:], v_all)

    def _pooled(self, q, k_pool, k_rest, v_all) -> torch.Tensor:
        raise NotImplementedError


class EfficientRoPEAttention1(_PooledRoPEAttention):
    """Eq. (5): softmax([q·k̄ᵀ/√d + ln 4, q·k_ptrᵀ/√d]) · [v̄, v_ptr]."""

    def _pooled(self, q, k_pool, k_rest, v_all) -> torch.Tensor:
        scale = 1 / math.sqrt(q.shape[-1])
        logits = torch.cat(
            [
                q @ k_pool.transpose(-2, -1) * scale + LOG_POOL_AREA,
                q @ k_rest.transpose(-2, -1) * scale,
            ],
            dim=-1,
        )
        weights = torch.softmax(logits, dim=-1)
        weights = torch.dropout(weights, self.dropout_p, train=self.training)
        return weights @ v_all


class EfficientRoPEAttention2(_PooledRoPEAttention):
    """Eq. (6) as the official code has it: SDPA(q, [k̄ + ln 4, k_ptr], [v̄, v_ptr])."""

    def _pooled(self, q, k_pool, k_rest, v_all) -> torch.Tensor:
        k_all = torch.cat([k_pool + LOG_POOL_AREA, k_rest], dim=2)
        dropout = self.dropout_p if self.training else 0.0
        return F.scaled_dot_product_attention(q, k_all, v_all, dropout_p=dropout)


CROSS_ATTENTION = {
    "full": RoPEAttention,
    "pooled_logits": EfficientRoPEAttention1,
    "pooled_keys": EfficientRoPEAttention2,
}
