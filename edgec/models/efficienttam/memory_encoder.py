"""The memory encoder: fuse the frame's image features with its predicted mask.

Official layout (memory_encoder.py): `mask_downsampler.encoder.{0,1,3,4,6,7,9,10,12}`
(4 × [Conv k3 s2 p1 → LN2d → GELU], channels 1→4→16→64→256, then Conv1×1 256→256),
`pix_feat_proj` (Conv1×1 256→256), `fuser.layers.{0,1}` (ConvNeXt blocks: dw 7×7 → LN2d →
Linear 256→1024 → GELU → Linear → ×gamma, residual), `out_proj` (Conv1×1 256→64).
`forward(pix_feat, masks, skip_mask_sigmoid=False)` returns {"vision_features": (B, 64, h, w),
"vision_pos_enc": [64-channel sine PE]}.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from edgec.models.efficienttam.layers import LayerNorm2d
from edgec.models.efficienttam.position import PositionEmbeddingSine


class MaskDownSampler(nn.Module):
    """Downsample a mask by `total_stride` in steps of `stride`, then project to embed_dim."""

    def __init__(
        self,
        embed_dim: int = 256,
        kernel_size: int = 3,
        stride: int = 2,
        padding: int = 1,
        total_stride: int = 16,
    ):
        super().__init__()
        num_layers = round(math.log2(total_stride) / math.log2(stride))
        self.encoder = nn.Sequential()
        channels = 1
        for _ in range(num_layers):
            out = channels * stride**2
            self.encoder.append(
                nn.Conv2d(channels, out, kernel_size, stride=stride, padding=padding)
            )
            self.encoder.append(LayerNorm2d(out))
            self.encoder.append(nn.GELU())
            channels = out
        self.encoder.append(nn.Conv2d(channels, embed_dim, kernel_size=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)


class CXBlock(nn.Module):
    """ConvNeXt block: x + gamma · Linear(GELU(Linear(LN2d(dwconv(x))))) (channels last)."""

    def __init__(
        self, dim: int, kernel_size: int = 7, padding: int = 3, layer_scale_init_value: float = 1e-6
    ):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size, padding=padding, groups=dim)
        self.norm = LayerNorm2d(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(layer_scale_init_value * torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm(self.dwconv(x)).permute(0, 2, 3, 1)
        y = self.gamma * self.pwconv2(self.act(self.pwconv1(y)))
        return x + y.permute(0, 3, 1, 2)


class Fuser(nn.Module):
    """`num_layers` CXBlocks."""

    def __init__(self, dim: int, num_layers: int):
        super().__init__()
        self.layers = nn.ModuleList(CXBlock(dim) for _ in range(num_layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class MemoryEncoder(nn.Module):
    """Encode (image features, mask logits) of a frame into a 64-channel memory."""

    def __init__(self, out_dim: int = 64, in_dim: int = 256, fuser_layers: int = 2):
        super().__init__()
        self.mask_downsampler = MaskDownSampler(in_dim)
        self.pix_feat_proj = nn.Conv2d(in_dim, in_dim, kernel_size=1)
        self.fuser = Fuser(in_dim, fuser_layers)
        self.position_encoding = PositionEmbeddingSine(out_dim)
        self.out_proj = nn.Conv2d(in_dim, out_dim, kernel_size=1)

    def forward(
        self, pix_feat: torch.Tensor, masks: torch.Tensor, skip_mask_sigmoid: bool = False
    ) -> dict:
        if not skip_mask_sigmoid:
            masks = torch.sigmoid(masks)
        x = self.pix_feat_proj(pix_feat) + self.mask_downsampler(masks)
        x = self.out_proj(self.fuser(x))
        return {"vision_features": x, "vision_pos_enc": [self.position_encoding(x)]}
