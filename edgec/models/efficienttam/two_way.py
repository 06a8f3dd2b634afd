"""SAM's two-way transformer (depth 2, 8 heads, MLP 2048 ReLU, cross-attention width 128).

Official layout (sam/transformer.py): `layers.{i}.{self_attn, norm1, cross_attn_token_to_image,
norm2, mlp.layers.{0,1}, norm3, norm4, cross_attn_image_to_token}`,
`final_attn_token_to_image`, `norm_final_attn`. Post-norm; the first layer's self-attention
sees no PE and has no residual.
"""

from __future__ import annotations

import torch
from torch import nn

from edgec.models.efficienttam.attention import Attention
from edgec.models.efficienttam.layers import MLP


class TwoWayAttentionBlock(nn.Module):
    """Token self-attn → token→image attn → token MLP → image→token attn (each + LN)."""

    def __init__(
        self, dim: int, num_heads: int, mlp_dim: int, downsample: int, skip_first_pe: bool
    ):
        super().__init__()
        self.self_attn = Attention(dim, num_heads)
        self.norm1 = nn.LayerNorm(dim)
        self.cross_attn_token_to_image = Attention(dim, num_heads, downsample_rate=downsample)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, mlp_dim, dim, num_layers=2, activation=nn.ReLU)
        self.norm3 = nn.LayerNorm(dim)
        self.norm4 = nn.LayerNorm(dim)
        self.cross_attn_image_to_token = Attention(dim, num_heads, downsample_rate=downsample)
        self.skip_first_layer_pe = skip_first_pe

    def forward(self, queries, keys, query_pe, key_pe) -> tuple[torch.Tensor, torch.Tensor]:
        if self.skip_first_layer_pe:
            queries = self.self_attn(q=queries, k=queries, v=queries)
        else:
            q = queries + query_pe
            queries = queries + self.self_attn(q=q, k=q, v=queries)
        queries = self.norm1(queries)
        q, k = queries + query_pe, keys + key_pe
        queries = self.norm2(queries + self.cross_attn_token_to_image(q=q, k=k, v=keys))
        queries = self.norm3(queries + self.mlp(queries))
        q, k = queries + query_pe, keys + key_pe
        keys = self.norm4(keys + self.cross_attn_image_to_token(q=k, k=q, v=queries))
        return queries, keys


class TwoWayTransformer(nn.Module):
    """Tokens attend to the image and the image to the tokens, `depth` times, then a final
    token→image attention. Returns (tokens, image tokens (B, HW, C))."""

    def __init__(
        self,
        depth: int,
        embedding_dim: int,
        num_heads: int,
        mlp_dim: int,
        attention_downsample_rate: int = 2,
    ):
        super().__init__()
        self.layers = nn.ModuleList(
            TwoWayAttentionBlock(
                embedding_dim, num_heads, mlp_dim, attention_downsample_rate, i == 0
            )
            for i in range(depth)
        )
        self.final_attn_token_to_image = Attention(
            embedding_dim, num_heads, downsample_rate=attention_downsample_rate
        )
        self.norm_final_attn = nn.LayerNorm(embedding_dim)

    def forward(
        self, image_embedding, image_pe, point_embedding
    ) -> tuple[torch.Tensor, torch.Tensor]:
        keys = image_embedding.flatten(2).permute(0, 2, 1)
        key_pe = image_pe.flatten(2).permute(0, 2, 1)
        queries = point_embedding
        for layer in self.layers:
            queries, keys = layer(queries, keys, point_embedding, key_pe)
        q, k = queries + point_embedding, keys + key_pe
        queries = self.norm_final_attn(queries + self.final_attn_token_to_image(q=q, k=k, v=keys))
        return queries, keys
