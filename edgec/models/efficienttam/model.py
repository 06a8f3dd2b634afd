"""The whole EfficientTAM model in the official module tree (`EfficientTAMBase`).

`EfficientTAM(config).state_dict()` has exactly the 455 keys and shapes of the official
checkpoints (`efficienttam_{ti,s}*.pt`, under "model"), so they load strictly into the whole
model, and each part's keys (with its prefix removed) load strictly into that part:
`image_encoder`, `mask_downsample`, `memory_attention`, `memory_encoder`,
`sam_prompt_encoder`, `sam_mask_decoder`, `obj_ptr_proj`, plus the parameters
`maskmem_tpos_enc`, `no_mem_embed`, `no_mem_pos_enc`, `no_obj_ptr`.

The per-frame steps the video predictor runs are methods with the official names and
meanings: `forward_image`, `_forward_sam_heads` (prompt encoder + mask decoder + object
score / pointer handling) and `_encode_new_memory`. The memory bank is the host's
(`edgec.models.efficienttam.tracker`); `edgec.models.efficienttam.graphs` cuts the model into
the graphs a device runs.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from edgec.errors import UserError
from edgec.models.efficienttam import config as C
from edgec.models.efficienttam.attention import CROSS_ATTENTION, RoPEAttention
from edgec.models.efficienttam.image_encoder import ImageEncoder, ViTDetNeck
from edgec.models.efficienttam.layers import MLP
from edgec.models.efficienttam.mask_decoder import MaskDecoder
from edgec.models.efficienttam.memory_attention import MemoryAttention, MemoryAttentionLayer
from edgec.models.efficienttam.memory_encoder import MemoryEncoder
from edgec.models.efficienttam.prompt_encoder import PromptEncoder
from edgec.models.efficienttam.two_way import TwoWayTransformer
from edgec.models.efficienttam.vit import ViT


def _memory_attention(cfg: C.EfficientTAMConfig, layers: int = 4) -> MemoryAttention:
    feat = (cfg.feat_size, cfg.feat_size)
    cross = CROSS_ATTENTION[cfg.cross_attention]
    return MemoryAttention(
        C.HIDDEN_DIM,
        [
            MemoryAttentionLayer(
                C.HIDDEN_DIM,
                2048,
                RoPEAttention(C.HIDDEN_DIM, 1, dropout=0.1, feat_sizes=feat),
                cross(
                    C.HIDDEN_DIM,
                    1,
                    dropout=0.1,
                    kv_in_dim=C.MEM_DIM,
                    rope_k_repeat=True,
                    feat_sizes=feat,
                ),
            )
            for _ in range(layers)
        ],
    )


class EfficientTAM(nn.Module):
    """EfficientTAM (Xiong et al., 2024): ViT image encoder, SAM heads, memory attention/encoder."""

    def __init__(self, cfg: C.EfficientTAMConfig):
        super().__init__()
        self.config = cfg
        self.image_size = cfg.image_size
        self.backbone_stride = C.PATCH
        self.hidden_dim = C.HIDDEN_DIM
        self.mem_dim = C.MEM_DIM
        self.num_maskmem = C.NUM_MASKMEM
        self.max_obj_ptrs_in_encoder = C.MAX_OBJ_PTRS
        self.maskmem_tpos_enc = nn.Parameter(torch.zeros(C.NUM_MASKMEM, 1, 1, C.MEM_DIM))
        self.no_mem_embed = nn.Parameter(torch.zeros(1, 1, C.HIDDEN_DIM))
        self.no_mem_pos_enc = nn.Parameter(torch.zeros(1, 1, C.HIDDEN_DIM))
        self.no_obj_ptr = nn.Parameter(torch.zeros(1, C.HIDDEN_DIM))
        self.image_encoder = ImageEncoder(
            ViT(cfg.embed_dim, cfg.num_heads, window_size=C.WINDOW),
            ViTDetNeck(C.HIDDEN_DIM, [cfg.embed_dim]),
        )
        self.mask_downsample = nn.Conv2d(1, 1, kernel_size=4, stride=4)
        self.memory_attention = _memory_attention(cfg)
        self.memory_encoder = MemoryEncoder(C.MEM_DIM, C.HIDDEN_DIM)
        grid = (cfg.feat_size, cfg.feat_size)
        self.sam_prompt_encoder = PromptEncoder(
            C.HIDDEN_DIM, grid, (cfg.image_size, cfg.image_size), 16
        )
        self.sam_mask_decoder = MaskDecoder(
            C.HIDDEN_DIM, TwoWayTransformer(2, C.HIDDEN_DIM, 8, 2048)
        )
        self.obj_ptr_proj = MLP(C.HIDDEN_DIM, C.HIDDEN_DIM, C.HIDDEN_DIM, 3)
        self._init_embeddings()

    @torch.no_grad()
    def _init_embeddings(self) -> None:
        """The official initialisation of the free embeddings (truncated normal, std 0.02)."""
        for p in (self.maskmem_tpos_enc, self.no_mem_embed, self.no_mem_pos_enc, self.no_obj_ptr):
            nn.init.trunc_normal_(p, std=0.02)
        nn.init.trunc_normal_(self.image_encoder.trunk.pos_embed, std=0.02)

    @property
    def input_size(self) -> tuple[int, int, int]:
        """(3, S, S): the frame size the image encoder takes."""
        return (3, self.image_size, self.image_size)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(
            "EfficientTAM runs per frame: use forward_image, _forward_sam_heads and "
            "_encode_new_memory, or edgec.models.efficienttam.Tracker"
        )

    def forward_image(self, img_batch: torch.Tensor) -> dict:
        """The image encoder's output dict for a (B, 3, S, S) normalised batch."""
        return self.image_encoder(img_batch)

    def _forward_sam_heads(
        self,
        backbone_features: torch.Tensor,
        point_inputs: dict | None = None,
        mask_inputs: torch.Tensor | None = None,
        high_res_features=None,
        multimask_output: bool = False,
    ) -> tuple[torch.Tensor, ...]:
        """Prompt encoder + mask decoder on (B, 256, h, w) features, as the official method.

        Returns (low_res_multimasks, high_res_multimasks, ious, low_res_masks,
        high_res_masks, obj_ptr, object_score_logits).
        """
        b = backbone_features.shape[0]
        if point_inputs is not None:
            coords, labels = point_inputs["point_coords"], point_inputs["point_labels"]
        else:
            coords = backbone_features.new_zeros(b, 1, 2)
            labels = -torch.ones(b, 1, dtype=torch.int32, device=backbone_features.device)
        if (
            mask_inputs is not None
            and mask_inputs.shape[-2:] != self.sam_prompt_encoder.mask_input_size
        ):
            mask_inputs = F.interpolate(
                mask_inputs.float(),
                size=self.sam_prompt_encoder.mask_input_size,
                align_corners=False,
                mode="bilinear",
                antialias=True,
            )
        sparse, dense = self.sam_prompt_encoder(
            points=(coords, labels), boxes=None, masks=mask_inputs
        )
        low_res, ious, best_low_res, obj_ptr, score = self.sam_heads(
            backbone_features, sparse, dense, multimask_output
        )
        return (
            low_res,
            self.upsample_to_image(low_res),
            ious,
            best_low_res,
            self.upsample_to_image(best_low_res),
            obj_ptr,
            score,
        )

    def sam_heads(
        self,
        backbone_features: torch.Tensor,
        sparse: torch.Tensor,
        dense: torch.Tensor,
        multimask_output: bool,
    ) -> tuple[torch.Tensor, ...]:
        """The mask decoder and the official post-processing, from prompt embeddings.

        Masks of frames whose object score is ≤ 0 become NO_OBJ_SCORE (-1024); the best mask
        is the one with the highest IoU estimate; the object pointer is
        `p·obj_ptr_proj(token) + (1 − p)·no_obj_ptr` with p = [score > 0].
        Returns (low_res_multimasks, ious, low_res_masks, obj_ptr, object_score_logits).
        """
        masks, ious, tokens, score = self.sam_mask_decoder(
            image_embeddings=backbone_features,
            image_pe=self.sam_prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=multimask_output,
            repeat_image=False,
        )
        appearing = score > 0
        masks = torch.where(appearing[:, None, None], masks, C.NO_OBJ_SCORE).float()
        token = tokens[:, 0]
        best = masks
        if multimask_output:
            index = torch.argmax(ious, dim=-1)
            rows = torch.arange(masks.shape[0], device=masks.device)
            best = masks[rows, index].unsqueeze(1)
            token = tokens[rows, index]
        p = appearing.float()
        obj_ptr = p * self.obj_ptr_proj(token) + (1 - p) * self.no_obj_ptr
        return masks, ious, best, obj_ptr, score

    def upsample_to_image(self, low_res: torch.Tensor) -> torch.Tensor:
        """Mask logits (B, M, 4h, 4w) → (B, M, S, S), bilinear (the official high-res masks)."""
        size = (self.image_size, self.image_size)
        return F.interpolate(low_res, size=size, mode="bilinear", align_corners=False)

    def mask_for_memory(
        self, high_res_masks: torch.Tensor, binarize: torch.Tensor | bool
    ) -> torch.Tensor:
        """The memory encoder's mask input: (logits > 0) when `binarize` (a frame with clicks,
        `binarize_mask_from_pts_for_mem_enc`), else sigmoid(logits); then ×20 − 10."""
        if isinstance(binarize, bool):
            mask = (high_res_masks > 0).float() if binarize else torch.sigmoid(high_res_masks)
        else:
            mask = torch.where(
                binarize > 0.5, (high_res_masks > 0).float(), torch.sigmoid(high_res_masks)
            )
        return mask * C.SIGMOID_SCALE_FOR_MEM_ENC + C.SIGMOID_BIAS_FOR_MEM_ENC

    def _encode_new_memory(
        self,
        current_vision_feats: list[torch.Tensor],
        feat_sizes: list[tuple[int, int]],
        pred_masks_high_res: torch.Tensor,
        object_score_logits: torch.Tensor,
        is_mask_from_pts: bool,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(maskmem_features (B, 64, h, w), [maskmem_pos_enc]) of a frame (official signature;
        features sequence-first (HW, B, 256))."""
        b = current_vision_feats[-1].shape[1]
        h, w = feat_sizes[-1]
        pix_feat = current_vision_feats[-1].permute(1, 2, 0).reshape(b, self.hidden_dim, h, w)
        mask = self.mask_for_memory(pred_masks_high_res, is_mask_from_pts)
        out = self.memory_encoder(pix_feat, mask, skip_mask_sigmoid=True)
        return out["vision_features"], out["vision_pos_enc"]


def build(name: str, image_size: int | None = None) -> EfficientTAM:
    """The official configuration `name` (see `config.VARIANTS`), optionally at another size.

    `image_size` must be a multiple of 16 (the patch size) — of 32 for the pooled variants,
    whose 2×2 pooling needs an even feature grid; else `UserError`.
    """
    cfg = C.VARIANTS[name]
    if image_size is not None:
        multiple = 2 * C.PATCH if cfg.pooled else C.PATCH
        if (
            isinstance(image_size, bool)
            or not isinstance(image_size, int)
            or image_size < multiple
            or image_size % multiple
        ):
            raise UserError(
                f"{name} needs image_size a positive multiple of {multiple}, got {image_size!r}",
                f"use the official {cfg.image_size}, or another multiple of {multiple}",
            )
        cfg = dataclasses.replace(cfg, image_size=image_size)
    return EfficientTAM(cfg)
