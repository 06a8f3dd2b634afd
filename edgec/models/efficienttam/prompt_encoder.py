"""SAM's prompt encoder (embed dim 256): points/boxes → sparse tokens, mask → dense map.

Official layout (sam/prompt_encoder.py): `pe_layer.positional_encoding_gaussian_matrix`
(persistent buffer), `point_embeddings.{0..3}` (negative, positive, box corner 1, corner 2),
`not_a_point_embed`, `mask_downscaling.{0,1,3,4,6}`, `no_mask_embed`. Call signature
`forward(points=(coords, labels) | None, boxes=None, masks=None) → (sparse, dense)`; point
coordinates are pixels of the S×S model input. Without a box, a padding point (label -1) is
appended. Labels: -1 padding, 0 negative, 1 positive, 2/3 box corners.
"""

from __future__ import annotations

import torch
from torch import nn

from edgec.models.efficienttam.layers import LayerNorm2d
from edgec.models.efficienttam.position import PositionEmbeddingRandom


class PromptEncoder(nn.Module):
    """Encode point, box and mask prompts for the mask decoder."""

    def __init__(
        self,
        embed_dim: int,
        image_embedding_size: tuple[int, int],
        input_image_size: tuple[int, int],
        mask_in_chans: int = 16,
    ):
        super().__init__()
        self.embed_dim = embed_dim
        self.input_image_size = input_image_size
        self.image_embedding_size = image_embedding_size
        self.pe_layer = PositionEmbeddingRandom(embed_dim // 2)
        self.point_embeddings = nn.ModuleList(nn.Embedding(1, embed_dim) for _ in range(4))
        self.not_a_point_embed = nn.Embedding(1, embed_dim)
        self.mask_input_size = (4 * image_embedding_size[0], 4 * image_embedding_size[1])
        self.mask_downscaling = nn.Sequential(
            nn.Conv2d(1, mask_in_chans // 4, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans // 4),
            nn.GELU(),
            nn.Conv2d(mask_in_chans // 4, mask_in_chans, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans),
            nn.GELU(),
            nn.Conv2d(mask_in_chans, embed_dim, kernel_size=1),
        )
        self.no_mask_embed = nn.Embedding(1, embed_dim)

    def get_dense_pe(self) -> torch.Tensor:
        """(1, C, h, w) encoding of the image-embedding grid."""
        return self.pe_layer(self.image_embedding_size).unsqueeze(0)

    def _embed_points(self, points: torch.Tensor, labels: torch.Tensor, pad: bool) -> torch.Tensor:
        points = points + 0.5  # pixel centres
        if pad:
            points = torch.cat([points, points.new_zeros(points.shape[0], 1, 2)], dim=1)
            labels = torch.cat([labels, -labels.new_ones(labels.shape[0], 1)], dim=1)
        embedding = self.pe_layer.forward_with_coords(points, self.input_image_size)
        labels = labels[..., None]
        embedding = torch.where(
            labels == -1, torch.zeros_like(embedding) + self.not_a_point_embed.weight, embedding
        )
        for value, table in enumerate(self.point_embeddings):
            embedding = torch.where(labels == value, embedding + table.weight, embedding)
        return embedding

    def _embed_boxes(self, boxes: torch.Tensor) -> torch.Tensor:
        corners = self.pe_layer.forward_with_coords(
            (boxes + 0.5).reshape(-1, 2, 2), self.input_image_size
        )
        offsets = torch.cat(
            [self.point_embeddings[2].weight, self.point_embeddings[3].weight], dim=0
        )
        return corners + offsets

    def forward(
        self,
        points: tuple[torch.Tensor, torch.Tensor] | None,
        boxes: torch.Tensor | None,
        masks: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        batch = next(
            (t.shape[0] for t in (points[0] if points else None, boxes, masks) if t is not None), 1
        )
        sparse = self.no_mask_embed.weight.new_zeros(batch, 0, self.embed_dim)
        if points is not None:
            sparse = torch.cat(
                [sparse, self._embed_points(points[0], points[1], pad=boxes is None)], dim=1
            )
        if boxes is not None:
            sparse = torch.cat([sparse, self._embed_boxes(boxes)], dim=1)
        if masks is not None:
            dense = self.mask_downscaling(masks)
        else:
            dense = self.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(
                batch, -1, self.image_embedding_size[0], self.image_embedding_size[1]
            )
        return sparse, dense
