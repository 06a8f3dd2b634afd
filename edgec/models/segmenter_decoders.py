"""Segmenter's two decoders: per-patch linear, and the mask transformer.

Written from reference/models-b.md §3.2 (not the official code); parameter names follow
rstrudel/segmenter (`decoder.head.*`; `decoder.cls_emb`, `proj_dec`, `blocks.N.*`,
`decoder_norm`, `proj_patch`, `proj_classes`, `mask_norm`).

Both take the encoder's patch tokens (B, gh·gw, d) in row-major grid order and the patch grid
(gh, gw), and return class masks (B, n_cls, gh, gw) on the patch grid.

Mask transformer, `l2_normalize=True` (Segmenter):

    tokens ─ proj_dec ─ cat(cls_emb) ─ blocks ─ decoder_norm ─┬─ patches @ proj_patch ─ /‖·‖₂ ─┐
                                                              └─ classes @ proj_classes ─ /‖·‖₂ ─┤
                            masks = patches · classesᵀ ─ mask_norm (LN over classes) ◄────────┘

`l2_normalize=False` (I-Segmenter) drops both divisions: masks = (patches·P)(classes·C)ᵀ → LN.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from edgec.models.segmenter_blocks import Block


def patches_to_grid(x: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """(B, gh·gw, C) row-major tokens → (B, C, gh, gw)."""
    return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], *grid)


class DecoderLinear(nn.Module):
    """A Linear(d → n_cls) per patch."""

    def __init__(self, num_classes: int, d_encoder: int):
        super().__init__()
        self.num_classes = num_classes
        self.head = nn.Linear(d_encoder, num_classes)

    def forward(self, x: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        return patches_to_grid(self.head(x), grid)


class MaskTransformer(nn.Module):
    """Learned class embeddings attend jointly with the patches; masks are their products."""

    def __init__(
        self,
        num_classes: int,
        d_encoder: int,
        n_layers: int,
        n_heads: int,
        d_model: int,
        d_ff: int,
        act: Callable[[], nn.Module],
        l2_normalize: bool = True,
    ):
        super().__init__()
        self.num_classes = num_classes
        self.l2_normalize = l2_normalize
        scale = d_model**-0.5
        self.cls_emb = nn.Parameter(torch.zeros(1, num_classes, d_model))
        self.proj_patch = nn.Parameter(scale * torch.randn(d_model, d_model))
        self.proj_classes = nn.Parameter(scale * torch.randn(d_model, d_model))
        self.blocks = nn.ModuleList(Block(d_model, n_heads, d_ff, act) for _ in range(n_layers))
        self.proj_dec = nn.Linear(d_encoder, d_model)
        self.decoder_norm = nn.LayerNorm(d_model)
        self.mask_norm = nn.LayerNorm(num_classes)
        nn.init.normal_(self.cls_emb, std=0.02)  # official trunc_normal_ cuts at 100σ

    def forward(self, x: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        x = self.proj_dec(x)
        x = torch.cat((x, self.cls_emb.expand(x.shape[0], -1, -1)), dim=1)
        for block in self.blocks:
            x = block(x)
        x = self.decoder_norm(x)
        n = self.num_classes
        patches = x[:, :-n] @ self.proj_patch
        classes = x[:, -n:] @ self.proj_classes
        if self.l2_normalize:
            patches = patches / patches.norm(dim=-1, keepdim=True)
            classes = classes / classes.norm(dim=-1, keepdim=True)
        masks = self.mask_norm(patches @ classes.transpose(1, 2))
        return patches_to_grid(masks, grid)
