"""SAM's mask decoder with EfficientTAM's object-score token (single feature level).

Official layout (sam/mask_decoder.py): `transformer.*`, `iou_token`, `mask_tokens` (4),
`obj_score_token`, `output_upscaling.{0,1,3}` (ConvT 256→64 → LN2d → GELU → ConvT 64→32 →
GELU), `output_hypernetworks_mlps.{0..3}` (256→256→256→32), `iou_prediction_head`
(256→256→256→4, sigmoid), `pred_obj_score_head` (256→256→256→1).

`forward(image_embeddings, image_pe, sparse_prompt_embeddings, dense_prompt_embeddings,
multimask_output, repeat_image, high_res_features=None)` returns (masks, iou_pred,
sam_tokens_out, object_score_logits): masks 1..3 and their tokens with `multimask_output`;
otherwise mask 0, or — with `dynamic_multimask_via_stability` (the official build's default)
— the best of masks 1..3 when mask 0's stability score is below 0.98.
"""

from __future__ import annotations

import torch
from torch import nn

from edgec.models.efficienttam.layers import MLP, LayerNorm2d
from edgec.models.efficienttam.two_way import TwoWayTransformer


class MaskDecoder(nn.Module):
    """Predict mask logits, IoU estimates and the object score from image + prompt embeddings."""

    def __init__(
        self,
        transformer_dim: int,
        transformer: TwoWayTransformer,
        num_multimask_outputs: int = 3,
        iou_head_depth: int = 3,
        iou_head_hidden_dim: int = 256,
        dynamic_multimask_via_stability: bool = True,
        dynamic_multimask_stability_delta: float = 0.05,
        dynamic_multimask_stability_thresh: float = 0.98,
    ):
        super().__init__()
        self.transformer_dim = transformer_dim
        self.transformer = transformer
        self.num_multimask_outputs = num_multimask_outputs
        self.iou_token = nn.Embedding(1, transformer_dim)
        self.num_mask_tokens = num_multimask_outputs + 1
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, transformer_dim)
        self.obj_score_token = nn.Embedding(1, transformer_dim)
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(transformer_dim, transformer_dim // 4, kernel_size=2, stride=2),
            LayerNorm2d(transformer_dim // 4),
            nn.GELU(),
            nn.ConvTranspose2d(transformer_dim // 4, transformer_dim // 8, kernel_size=2, stride=2),
            nn.GELU(),
        )
        self.output_hypernetworks_mlps = nn.ModuleList(
            MLP(transformer_dim, transformer_dim, transformer_dim // 8, 3)
            for _ in range(self.num_mask_tokens)
        )
        self.iou_prediction_head = MLP(
            transformer_dim,
            iou_head_hidden_dim,
            self.num_mask_tokens,
            iou_head_depth,
            sigmoid_output=True,
        )
        self.pred_obj_score_head = MLP(transformer_dim, transformer_dim, 1, 3)
        self.dynamic_multimask_via_stability = dynamic_multimask_via_stability
        self.dynamic_multimask_stability_delta = dynamic_multimask_stability_delta
        self.dynamic_multimask_stability_thresh = dynamic_multimask_stability_thresh

    def forward(
        self,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        sparse_prompt_embeddings: torch.Tensor,
        dense_prompt_embeddings: torch.Tensor,
        multimask_output: bool,
        repeat_image: bool,
        high_res_features: list[torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        if high_res_features is not None:
            raise ValueError("EfficientTAM's decoder uses one feature level (no high-res features)")
        masks, iou_pred, mask_tokens_out, object_score_logits = self.predict_masks(
            image_embeddings,
            image_pe,
            sparse_prompt_embeddings,
            dense_prompt_embeddings,
            repeat_image,
        )
        if multimask_output:
            return masks[:, 1:], iou_pred[:, 1:], mask_tokens_out[:, 1:], object_score_logits
        if self.dynamic_multimask_via_stability and not self.training:
            masks, iou_pred = self._dynamic_multimask_via_stability(masks, iou_pred)
        else:
            masks, iou_pred = masks[:, 0:1], iou_pred[:, 0:1]
        return masks, iou_pred, mask_tokens_out[:, 0:1], object_score_logits

    def predict_masks(self, image_embeddings, image_pe, sparse, dense, repeat_image: bool):
        """All 4 masks (B, 4, 4h, 4w), 4 IoUs, the 4 mask tokens and the object-score logit."""
        output_tokens = torch.cat(
            [self.obj_score_token.weight, self.iou_token.weight, self.mask_tokens.weight]
        )
        tokens = torch.cat(
            (output_tokens.unsqueeze(0).expand(sparse.shape[0], -1, -1), sparse), dim=1
        )
        if repeat_image:
            src = torch.repeat_interleave(image_embeddings, tokens.shape[0], dim=0)
        else:
            src = image_embeddings
        src = src + dense
        pos_src = torch.repeat_interleave(image_pe, tokens.shape[0], dim=0)
        b, c, h, w = src.shape
        hs, src = self.transformer(src, pos_src, tokens)
        mask_tokens_out = hs[:, 2 : 2 + self.num_mask_tokens, :]
        upscaled = self.output_upscaling(src.transpose(1, 2).reshape(b, c, h, w))
        hyper_in = torch.stack(
            [mlp(mask_tokens_out[:, i, :]) for i, mlp in enumerate(self.output_hypernetworks_mlps)],
            dim=1,
        )
        b, c, h, w = upscaled.shape
        masks = (hyper_in @ upscaled.reshape(b, c, h * w)).reshape(b, -1, h, w)
        iou_pred = self.iou_prediction_head(hs[:, 1, :])
        object_score_logits = self.pred_obj_score_head(hs[:, 0, :])
        return masks, iou_pred, mask_tokens_out, object_score_logits

    def _stability_scores(self, mask_logits: torch.Tensor) -> torch.Tensor:
        logits = mask_logits.flatten(-2)
        delta = self.dynamic_multimask_stability_delta
        area_i = torch.sum(logits > delta, dim=-1).float()
        area_u = torch.sum(logits > -delta, dim=-1).float()
        return torch.where(area_u > 0, area_i / area_u, 1.0)

    def _dynamic_multimask_via_stability(self, all_masks, all_ious):
        """Mask 0 when stable, else the multimask output with the highest IoU estimate."""
        multi_masks, multi_ious = all_masks[:, 1:], all_ious[:, 1:]
        best = torch.argmax(multi_ious, dim=-1)
        rows = torch.arange(multi_ious.shape[0], device=all_ious.device)
        best_masks = multi_masks[rows, best].unsqueeze(1)
        best_ious = multi_ious[rows, best].unsqueeze(1)
        single_masks, single_ious = all_masks[:, 0:1], all_ious[:, 0:1]
        stable = self._stability_scores(single_masks) >= self.dynamic_multimask_stability_thresh
        masks = torch.where(
            stable[..., None, None].expand_as(single_masks), single_masks, best_masks
        )
        ious = torch.where(stable.expand_as(single_ious), single_ious, best_ious)
        return masks, ious
