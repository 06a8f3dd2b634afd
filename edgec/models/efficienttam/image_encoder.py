"""The image encoder: ViT trunk + ViTDet neck (1×1 conv → LN2d → 3×3 conv → LN2d, 256 ch).

Official layout (backbones/image_encoder.py): `trunk.*`, `neck.convs.0.{conv_1x1, norm_0,
conv_3x3, norm_1}` (convs without bias), and a parameter-free sine position encoding.
`forward` returns the official dict: `vision_features` (B, 256, S/16, S/16),
`vision_pos_enc` [sine PE] and `backbone_fpn` [features] (one level: `scalp` 0).
"""

from __future__ import annotations

import torch
from torch import nn

from edgec.models.efficienttam.layers import LayerNorm2d
from edgec.models.efficienttam.position import PositionEmbeddingSine
from edgec.models.efficienttam.vit import ViT


class ViTDetNeck(nn.Module):
    """Project the trunk's single output to d_model channels and attach its sine PE."""

    def __init__(self, d_model: int, backbone_channel_list: list[int]):
        super().__init__()
        self.backbone_channel_list = list(backbone_channel_list)
        self.d_model = d_model
        self.position_encoding = PositionEmbeddingSine(d_model)
        self.convs = nn.ModuleList()
        for dim in self.backbone_channel_list:
            level = nn.Sequential()
            level.add_module("conv_1x1", nn.Conv2d(dim, d_model, kernel_size=1, bias=False))
            level.add_module("norm_0", LayerNorm2d(d_model))
            level.add_module("conv_3x3", nn.Conv2d(d_model, d_model, 3, padding=1, bias=False))
            level.add_module("norm_1", LayerNorm2d(d_model))
            self.convs.append(level)

    def forward(self, xs: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        out = self.convs[0](xs[0])
        return [out], [self.position_encoding(out)]


class ImageEncoder(nn.Module):
    """trunk → neck; returns the official output dict."""

    def __init__(self, trunk: ViT, neck: ViTDetNeck):
        super().__init__()
        if trunk.channel_list != neck.backbone_channel_list:
            raise ValueError(
                f"trunk channels {trunk.channel_list} != neck channels {neck.backbone_channel_list}"
            )
        self.trunk = trunk
        self.neck = neck

    def forward(self, sample: torch.Tensor) -> dict:
        features, pos = self.neck(self.trunk(sample))
        return {"vision_features": features[-1], "vision_pos_enc": pos, "backbone_fpn": features}
