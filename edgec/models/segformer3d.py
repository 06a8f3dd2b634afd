"""SegFormer3D (Perera et al., CVPR-W 2024): a 4.5 M-parameter 3-D medical segmentation ViT.

Written from reference/models-b.md §2 (not the official code). `SegFormer3D().state_dict()`
has exactly the keys, shapes and dtypes of the official checkpoint (OSUPCVLab/SegFormer3D,
accelerate `pytorch_model.bin`), so official weights load with strict=True.

Differences from the official code, on purpose:
- the token grid (D, H, W) is carried through every block, so any D×H×W divisible by 32 is
  computed correctly (the official code un-flattens with a cube root: cubic volumes only);
- sizes not divisible by 32 raise `UserError` instead of failing or mis-reshaping later;
- `attn_scale` selects the attention-logit scale of the two official code versions:
  "num_heads" (default; 1/√num_heads, commit 5a149a6, which trained the published weights)
  or "head_dim" (1/√head_dim, the current code using scaled_dot_product_attention).

Input: (B, 4, D, H, W) (FLAIR, T1w, T1gd, T2w for BraTS). Output: logits (B, num_classes,
D, H, W); the official inference applies sigmoid + threshold 0.5 per channel.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from edgec.errors import UserError
from edgec.models.segformer3d_blocks import (
    ATTN_SCALES,
    PatchEmbedding,
    TransformerBlock,
    tokens_to_volume,
    volume_to_tokens,
)

FAMILY = "SegFormer3D"
REPO = "OSUPCVLab/SegFormer3D"
CLASSIFIER_KEY = "segformer_decoder.linear_pred.weight"
KEY_PREFIXES = ("segformer_encoder.", "segformer_decoder.")
SIZE_MULTIPLE = 32  # total downsampling of the encoder (4·2·2·2)
# The released BraTS configuration (config.yaml `model_parameters`).
DEFAULT_CONFIG = {
    "in_channels": 4,
    "embed_dims": (32, 64, 160, 256),
    "depths": (2, 2, 2, 2),
    "num_heads": (1, 2, 5, 8),
    "sr_ratios": (4, 2, 1, 1),
    "mlp_ratios": (4, 4, 4, 4),
    "patch_kernel_size": (7, 3, 3, 3),
    "patch_stride": (4, 2, 2, 2),
    "patch_padding": (3, 1, 1, 1),
    "decoder_head_embedding_dim": 256,
    "num_classes": 3,
    "decoder_dropout": 0.0,
}


def check_volume(x: torch.Tensor, in_channels: int) -> None:
    """Raise UserError unless x is (B, in_channels, D, H, W) with D, H, W multiples of 32."""
    if x.ndim != 5 or x.shape[1] != in_channels:
        raise UserError(
            f"SegFormer3D takes a (B, {in_channels}, D, H, W) volume, got shape {tuple(x.shape)}",
            f"give a 5-D batch with {in_channels} channels (one per MRI modality)",
        )
    spatial = tuple(int(s) for s in x.shape[2:])
    if any(s % SIZE_MULTIPLE or s == 0 for s in spatial):
        fixed = tuple(
            max(SIZE_MULTIPLE, math.ceil(s / SIZE_MULTIPLE) * SIZE_MULTIPLE) for s in spatial
        )
        raise UserError(
            f"SegFormer3D needs D, H, W divisible by {SIZE_MULTIPLE}, got {spatial}",
            f"pad or crop the volume (e.g. pad to {fixed}), or use "
            "edgec.models.sliding_window with a 128³ window",
        )


class MixVisionTransformer3D(nn.Module):
    """The 4-stage encoder; returns the stage outputs c1..c4 as (B, C_i, D_i, H_i, W_i)."""

    def __init__(self, cfg: dict, attn_scale: str):
        super().__init__()
        channels = [cfg["in_channels"], *cfg["embed_dims"][:-1]]
        for i in range(4):
            dim = cfg["embed_dims"][i]
            embed = PatchEmbedding(
                channels[i],
                dim,
                cfg["patch_kernel_size"][i],
                cfg["patch_stride"][i],
                cfg["patch_padding"][i],
            )
            blocks = nn.ModuleList(
                TransformerBlock(
                    dim,
                    cfg["num_heads"][i],
                    cfg["mlp_ratios"][i],
                    cfg["sr_ratios"][i],
                    attn_scale,
                )
                for _ in range(cfg["depths"][i])
            )
            self.add_module(f"embed_{i + 1}", embed)
            self.add_module(f"tf_block{i + 1}", blocks)
            self.add_module(f"norm{i + 1}", nn.LayerNorm(dim))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for i in range(1, 5):
            x, dims = getattr(self, f"embed_{i}")(x)
            for block in getattr(self, f"tf_block{i}"):
                x = block(x, dims)
            x = tokens_to_volume(getattr(self, f"norm{i}")(x), dims)
            outputs.append(x)
        return outputs


class _LinearLN(nn.Module):
    """Per-voxel Linear(C_i → E) + LayerNorm(E) (the official name of the LN is `bn`)."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.proj = nn.Linear(in_dim, out_dim)
        self.bn = nn.LayerNorm(out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens, dims = volume_to_tokens(x)
        return tokens_to_volume(self.bn(self.proj(tokens)), dims)


class SegFormerDecoderHead3D(nn.Module):
    """All-MLP decoder: project c1..c4 to E, upsample to c1's grid, fuse, predict."""

    def __init__(self, in_dims, embed_dim: int, num_classes: int, dropout: float):
        super().__init__()
        for i, dim in enumerate(in_dims, start=1):
            self.add_module(f"linear_c{i}", _LinearLN(dim, embed_dim))
        self.linear_fuse = nn.Sequential(
            nn.Conv3d(4 * embed_dim, embed_dim, 1, bias=False),
            nn.BatchNorm3d(embed_dim),
            nn.ReLU(),
        )
        self.dropout = nn.Dropout(dropout)
        self.linear_pred = nn.Conv3d(embed_dim, num_classes, 1)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        size = tuple(features[0].shape[2:])
        fused = []
        for i in (4, 3, 2, 1):
            y = getattr(self, f"linear_c{i}")(features[i - 1])
            if i > 1:
                y = F.interpolate(y, size=size, mode="trilinear", align_corners=False)
            fused.append(y)
        return self.linear_pred(self.dropout(self.linear_fuse(torch.cat(fused, dim=1))))


class SegFormer3D(nn.Module):
    """SegFormer3D in the official checkpoint layout; see the module docstring."""

    def __init__(self, attn_scale: str = "num_heads", **config):
        super().__init__()
        unknown = sorted(set(config) - set(DEFAULT_CONFIG))
        if unknown:
            raise TypeError(f"SegFormer3D got unexpected option(s) {unknown}")
        if attn_scale not in ATTN_SCALES:
            raise UserError(
                f"unknown attn_scale {attn_scale!r}",
                "use 'num_heads' (published weights, 2024 code) or 'head_dim' (current code)",
            )
        cfg = {**DEFAULT_CONFIG, **config}
        self.config = cfg
        self.attn_scale = attn_scale
        self.in_channels = cfg["in_channels"]
        self.num_classes = cfg["num_classes"]
        self.segformer_encoder = MixVisionTransformer3D(cfg, attn_scale)
        self.segformer_decoder = SegFormerDecoderHead3D(
            cfg["embed_dims"],
            cfg["decoder_head_embedding_dim"],
            cfg["num_classes"],
            cfg["decoder_dropout"],
        )
        self.upscale = cfg["patch_stride"][0]
        self.apply(_init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_volume(x, self.in_channels)
        logits = self.segformer_decoder(self.segformer_encoder(x))
        return F.interpolate(
            logits, scale_factor=self.upscale, mode="trilinear", align_corners=False
        )


@torch.no_grad()
def _init_weights(m: nn.Module) -> None:
    """The official initialisation (models-b.md §2.3 Init)."""
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, (nn.LayerNorm, nn.BatchNorm3d)):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)
    elif isinstance(m, nn.Conv3d):
        fan_out = math.prod(m.kernel_size) * m.out_channels // m.groups
        nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
        if m.bias is not None:
            nn.init.zeros_(m.bias)
