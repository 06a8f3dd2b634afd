"""Memory attention: condition the current frame's features on the memory bank.

Official layout (memory_attention.py): `layers.{0..3}.{self_attn, cross_attn_image, linear1,
linear2, norm1, norm2, norm3}` and a final `norm`. Each layer is pre-norm: RoPE self-attention
(q = k = v = LN(x), no PE add), RoPE cross-attention to the memory (keys = memory +
memory_pos, `kv_in_dim` 64; the last `num_obj_ptr_tokens` keys get no RoPE), then a ReLU FFN
(256→2048→256). The input gets `0.1 · curr_pos` first. Tensors are sequence-first (L, B, C),
as in the official call `forward(curr, memory, curr_pos, memory_pos, num_obj_ptr_tokens)`.
"""

from __future__ import annotations

import torch
from torch import nn

from edgec.models.efficienttam.attention import RoPEAttention


class MemoryAttentionLayer(nn.Module):
    """Self-attention, cross-attention to memory, FFN; each pre-norm with a residual."""

    def __init__(
        self,
        d_model: int,
        dim_feedforward: int,
        self_attention: RoPEAttention,
        cross_attention: RoPEAttention,
        dropout: float = 0.1,
    ):
        super().__init__()
        self.self_attn = self_attention
        self.cross_attn_image = cross_attention
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)
        self.activation = nn.ReLU()

    def forward(
        self, tgt, memory, pos=None, query_pos=None, num_k_exclude_rope: int = 0
    ) -> torch.Tensor:
        x = self.norm1(tgt)
        tgt = tgt + self.dropout1(self.self_attn(x, x, v=x))
        x = self.norm2(tgt)
        x = self.cross_attn_image(
            q=x, k=memory + pos, v=memory, num_k_exclude_rope=num_k_exclude_rope
        )
        tgt = tgt + self.dropout2(x)
        x = self.linear2(self.dropout(self.activation(self.linear1(self.norm3(tgt)))))
        return tgt + self.dropout3(x)


class MemoryAttention(nn.Module):
    """Stack of memory-attention layers and a final LayerNorm (sequence-first I/O)."""

    def __init__(self, d_model: int, layers: list[MemoryAttentionLayer]):
        super().__init__()
        self.d_model = d_model
        self.layers = nn.ModuleList(layers)
        self.num_layers = len(layers)
        self.norm = nn.LayerNorm(d_model)

    def forward(
        self,
        curr: torch.Tensor,
        memory: torch.Tensor,
        curr_pos: torch.Tensor,
        memory_pos: torch.Tensor,
        num_obj_ptr_tokens: int = 0,
    ) -> torch.Tensor:
        if isinstance(curr, list):
            (curr,), (curr_pos,) = curr, curr_pos
        if curr.shape[1] != memory.shape[1]:
            raise ValueError("batch size must be the same for curr and memory")
        output = curr + 0.1 * curr_pos
        output, curr_pos = output.transpose(0, 1), curr_pos.transpose(0, 1)
        memory, memory_pos = memory.transpose(0, 1), memory_pos.transpose(0, 1)
        for layer in self.layers:
            output = layer(
                output,
                memory,
                pos=memory_pos,
                query_pos=curr_pos,
                num_k_exclude_rope=num_obj_ptr_tokens,
            )
        return self.norm(output).transpose(0, 1)
