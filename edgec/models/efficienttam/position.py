"""Position encodings of EfficientTAM that depend on shape only (sine) or on one buffer (random).

- `PositionEmbeddingSine`: the DETR-style normalised sine encoding of a feature map (neck:
  256 channels, memory encoder: 64), y-features then x-features. A constant per resolution.
- `PositionEmbeddingRandom`: SAM's random-Fourier encoding of points and of the dense grid,
  with the persistent buffer `positional_encoding_gaussian_matrix` (2 × 128) that official
  checkpoints carry.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class PositionEmbeddingSine(nn.Module):
    """Sine encoding (B, num_pos_feats, H, W) of a (B, C, H, W) map; no parameters."""

    def __init__(self, num_pos_feats: int, temperature: float = 10000.0):
        super().__init__()
        if num_pos_feats % 2:
            raise ValueError(f"num_pos_feats must be even, got {num_pos_feats}")
        self.num_pos_feats = num_pos_feats // 2
        self.temperature = temperature
        self.scale = 2 * math.pi

    def encoding(self, h: int, w: int) -> torch.Tensor:
        """The (1, 2·num_pos_feats, h, w) encoding of an h×w grid."""
        eps = 1e-6
        y = torch.arange(1, h + 1, dtype=torch.float32).view(1, -1, 1).expand(1, h, w)
        x = torch.arange(1, w + 1, dtype=torch.float32).view(1, 1, -1).expand(1, h, w)
        y = y / (y[:, -1:, :] + eps) * self.scale
        x = x / (x[:, :, -1:] + eps) * self.scale
        dim_t = torch.arange(self.num_pos_feats, dtype=torch.float32)
        dim_t = self.temperature ** (
            2 * torch.div(dim_t, 2, rounding_mode="floor") / self.num_pos_feats
        )
        pos_x = x[..., None] / dim_t
        pos_y = y[..., None] / dim_t
        pos_x = torch.stack((pos_x[..., 0::2].sin(), pos_x[..., 1::2].cos()), dim=4).flatten(3)
        pos_y = torch.stack((pos_y[..., 0::2].sin(), pos_y[..., 1::2].cos()), dim=4).flatten(3)
        return torch.cat((pos_y, pos_x), dim=3).permute(0, 3, 1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pos = self.encoding(int(x.shape[-2]), int(x.shape[-1]))
        return pos.to(x.device, x.dtype).expand(x.shape[0], -1, -1, -1)


class PositionEmbeddingRandom(nn.Module):
    """Random spatial-frequency encoding: [sin, cos](2π · (2p − 1) @ G) for p in [0, 1]²."""

    def __init__(self, num_pos_feats: int = 64):
        super().__init__()
        self.register_buffer("positional_encoding_gaussian_matrix", torch.randn(2, num_pos_feats))

    def _encode(self, coords: torch.Tensor) -> torch.Tensor:
        coords = 2 * coords - 1
        coords = coords @ self.positional_encoding_gaussian_matrix
        coords = 2 * math.pi * coords
        return torch.cat([torch.sin(coords), torch.cos(coords)], dim=-1)

    def forward(self, size: tuple[int, int]) -> torch.Tensor:
        """The (C, h, w) encoding of the centres of an h×w grid."""
        h, w = size
        grid = torch.ones(
            (h, w), dtype=torch.float32, device=self.positional_encoding_gaussian_matrix.device
        )
        y = (grid.cumsum(dim=0) - 0.5) / h
        x = (grid.cumsum(dim=1) - 0.5) / w
        return self._encode(torch.stack([x, y], dim=-1)).permute(2, 0, 1)

    def forward_with_coords(
        self, coords: torch.Tensor, image_size: tuple[int, int]
    ) -> torch.Tensor:
        """Encode (B, N, 2) pixel (x, y) coordinates of an image of `image_size` (H, W)."""
        size = torch.tensor([float(image_size[1]), float(image_size[0])], device=coords.device)
        return self._encode(coords.float() / size)
