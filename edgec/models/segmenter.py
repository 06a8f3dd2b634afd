"""Segmenter (Strudel et al., ICCV 2021) ViT-Tiny with a linear or mask-transformer decoder,
and I-Segmenter (Sassoon et al., arXiv 2509.10334) as the float model its integer-only
pipeline compiles.

Written from reference/models-b.md §3 (not the official code). `state_dict()` has exactly the
keys, shapes and dtypes of rstrudel/segmenter checkpoints (`checkpoint.pth`, key `model`), the
unused 1000-class `encoder.head` included, so official weights load with strict=True.

Any input size works, as in the official `Segmenter.forward`:

    image (B,3,H,W) ─ zero-pad right/bottom to multiples of 16 ─ ViT encoder (pos_embed resized
    bilinearly to the patch grid) ─ drop cls token ─ decoder → (B,n_cls,H'/16,W'/16)
    ─ upsample ×16 ─ crop to H×W → logits (B, n_cls, H, W)

Options (all variants take all of them; the variant sets the defaults):
- `decoder`: "linear" or "mask" (mask transformer);
- `activation`: "gelu" (Segmenter) or "lambda_shift_gelu" (I-Segmenter: x·σ(λx), λ =
  `gelu_lambda`, 1.702 by default; the paper's exact λ-ShiftGELU is edgec's reading, see
  docs/models.md);
- `l2_normalize`: the mask decoder's L2 normalisation of patch and class features (True in
  Segmenter, False in I-Segmenter);
- `upsample`: "bilinear" (Segmenter) or "nearest" (I-Segmenter) for the final ×16;
- `pos_embed_resize`: "grid" (default) resizes the position embedding whenever the patch grid
  differs from the trained one; "token_count" reproduces the official code exactly, which
  resizes only when the number of tokens differs (so e.g. a 256×1024 input, 16×64 = 32×32
  tokens, gets the 32×32 embedding laid out row by row on the 16×64 grid);
- `image_size` (trained size, sets the pos_embed grid; default 512), `num_classes` (150, ADE20K),
  and the backbone sizes of DEFAULT_CONFIG.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from edgec.errors import UserError
from edgec.models import segmenter_blocks
from edgec.models.segmenter_blocks import ACTIVATIONS, SHIFT_GELU_LAMBDA, Block
from edgec.models.segmenter_decoders import DecoderLinear, MaskTransformer

FAMILY = "Segmenter"
REPO = "rstrudel/segmenter"
DECODERS = ("linear", "mask")
UPSAMPLING = ("bilinear", "nearest")
POS_EMBED_RESIZE = ("grid", "token_count")
# ViT-Ti/16 (segm/config.yml vit_tiny_patch16_384) as trained on ADE20K at 512².
DEFAULT_CONFIG = {
    "image_size": 512,
    "patch_size": 16,
    "d_model": 192,
    "n_heads": 3,
    "n_layers": 12,
    "d_ff": 768,
    "encoder_classes": 1000,  # the ImageNet head in the checkpoint, unused for segmentation
    "channels": 3,
    "decoder_layers": 2,  # mask transformer; its heads are d_model // 64, its d_ff 4·d_model
}
VARIANTS: dict[str, dict] = {
    "segmenter_vit_tiny_linear": {"decoder": "linear"},
    "segmenter_vit_tiny_mask": {"decoder": "mask"},
    "isegmenter_vit_tiny": {
        "decoder": "mask",
        "activation": "lambda_shift_gelu",
        "l2_normalize": False,
        "upsample": "nearest",
    },
}


def check_image(x: torch.Tensor, channels: int) -> None:
    """Raise UserError unless x is a non-empty (B, channels, H, W) batch."""
    if x.ndim != 4 or x.shape[1] != channels or x.shape[2] < 1 or x.shape[3] < 1:
        raise UserError(
            f"Segmenter takes a (B, {channels}, H, W) image batch, got shape {tuple(x.shape)}",
            f"give a 4-D batch of {channels}-channel images (any H, W ≥ 1; they are padded to "
            "multiples of the patch size and the output is cropped back)",
        )


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Zero-pad H and W on the bottom/right up to multiples of `multiple` (no-op if they are)."""
    pad_h, pad_w = -x.shape[2] % multiple, -x.shape[3] % multiple
    return F.pad(x, (0, pad_w, 0, pad_h)) if pad_h or pad_w else x


def classes_in_checkpoint(state_dict: Mapping[str, torch.Tensor]) -> tuple[int, str] | None:
    """(number of classes, key) from a Segmenter checkpoint's decoder, if present."""
    for key in ("decoder.head.weight", "decoder.mask_norm.weight"):
        value = state_dict.get(key)
        if value is not None and value.ndim >= 1:
            return int(value.shape[0]), key
    return None


class PatchEmbedding(nn.Module):
    """Conv2d(k = s = patch) → row-major tokens (B, gh·gw, d) and the grid (gh, gw)."""

    def __init__(self, channels: int, dim: int, patch_size: int):
        super().__init__()
        self.proj = nn.Conv2d(channels, dim, patch_size, patch_size)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        x = self.proj(x)
        return x.flatten(2).transpose(1, 2), (int(x.shape[2]), int(x.shape[3]))


class VisionTransformer(nn.Module):
    """ViT encoder: patch tokens + cls token + position embedding → blocks → norm."""

    def __init__(self, cfg: dict, act, pos_embed_resize: str):
        super().__init__()
        d, patch = cfg["d_model"], cfg["patch_size"]
        h, w = cfg["image_size"]
        if h % patch or w % patch:
            raise UserError(
                f"image_size {cfg['image_size']} is not a multiple of the patch size {patch}",
                "give the size the checkpoint was trained at (512 for the ADE20K models)",
            )
        self.grid = (h // patch, w // patch)
        self.pos_embed_resize = pos_embed_resize
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + self.grid[0] * self.grid[1], d))
        self.patch_embed = PatchEmbedding(cfg["channels"], d, patch)
        self.blocks = nn.ModuleList(
            Block(d, cfg["n_heads"], cfg["d_ff"], act) for _ in range(cfg["n_layers"])
        )
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, cfg["encoder_classes"])
        nn.init.normal_(self.pos_embed, std=0.02)  # official trunc_normal_ at 100σ: the same
        nn.init.normal_(self.cls_token, std=0.02)

    def position_embedding(self, grid: tuple[int, int]) -> torch.Tensor:
        """pos_embed for a patch grid: the cls slot as is, the grid part resized bilinearly."""
        same = grid == self.grid
        if self.pos_embed_resize == "token_count":
            same = grid[0] * grid[1] == self.grid[0] * self.grid[1]
        if same:
            return self.pos_embed
        d = self.pos_embed.shape[2]
        table = self.pos_embed[:, 1:].reshape(1, *self.grid, d).permute(0, 3, 1, 2)
        table = F.interpolate(table, size=grid, mode="bilinear", align_corners=False)
        table = table.permute(0, 2, 3, 1).reshape(1, grid[0] * grid[1], d)
        return torch.cat((self.pos_embed[:, :1], table), dim=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """Patch features (B, gh·gw, d) after the final norm (cls token dropped), and the grid."""
        tokens, grid = self.patch_embed(x)
        tokens = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), tokens), dim=1)
        tokens = tokens + self.position_embedding(grid)
        for block in self.blocks:
            tokens = block(tokens)
        return self.norm(tokens)[:, 1:], grid


class Segmenter(nn.Module):
    """Segmenter / I-Segmenter in the official checkpoint layout; see the module docstring."""

    def __init__(
        self,
        decoder: str = "mask",
        num_classes: int = 150,
        activation: str = "gelu",
        gelu_lambda: float = SHIFT_GELU_LAMBDA,
        l2_normalize: bool = True,
        upsample: str = "bilinear",
        pos_embed_resize: str = "grid",
        **config,
    ):
        super().__init__()
        unknown = sorted(set(config) - set(DEFAULT_CONFIG))
        if unknown:
            raise TypeError(f"Segmenter got unexpected option(s) {unknown}")
        _check_choice("decoder", decoder, DECODERS)
        _check_choice("activation", activation, ACTIVATIONS)
        _check_choice("upsample", upsample, UPSAMPLING)
        _check_choice("pos_embed_resize", pos_embed_resize, POS_EMBED_RESIZE)
        if not gelu_lambda > 0:
            raise UserError(f"gelu_lambda must be positive, got {gelu_lambda}", "use e.g. 1.702")
        cfg = {**DEFAULT_CONFIG, **config}
        size = cfg["image_size"]
        cfg["image_size"] = (size, size) if isinstance(size, int) else tuple(size)
        self.config = cfg
        # What the integer-only pipeline needs to know (which activation, λ, upsampling).
        self.options = {
            "decoder": decoder,
            "activation": activation,
            "gelu_lambda": gelu_lambda,
            "l2_normalize": l2_normalize,
            "upsample": upsample,
            "pos_embed_resize": pos_embed_resize,
        }
        self.num_classes = num_classes
        self.patch_size = cfg["patch_size"]
        self.channels = cfg["channels"]
        self.input_size = (self.channels, *cfg["image_size"])
        self.upsample = upsample
        act = segmenter_blocks.activation(activation, gelu_lambda)
        self.encoder = VisionTransformer(cfg, act, pos_embed_resize)
        d = cfg["d_model"]
        if decoder == "linear":
            self.decoder = DecoderLinear(num_classes, d)
        else:
            self.decoder = MaskTransformer(
                num_classes, d, cfg["decoder_layers"], d // 64, d, 4 * d, act, l2_normalize
            )
        self.apply(_init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image(x, self.channels)
        height, width = int(x.shape[2]), int(x.shape[3])
        padded = pad_to_multiple(x, self.patch_size)
        features, grid = self.encoder(padded)
        masks = self.decoder(features, grid)
        size = (int(padded.shape[2]), int(padded.shape[3]))
        if self.upsample == "bilinear":
            masks = F.interpolate(masks, size=size, mode="bilinear", align_corners=False)
        else:
            masks = F.interpolate(masks, size=size, mode="nearest")
        return masks[:, :, :height, :width]


def build(name: str, **kwargs) -> Segmenter:
    """The variant `name` of VARIANTS; keyword options override the variant's defaults."""
    return Segmenter(**{**VARIANTS[name], **kwargs})


def _check_choice(option: str, value, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise UserError(
            f"unknown {option} {value!r} for Segmenter",
            f"use one of {', '.join(repr(c) for c in choices)}",
        )


@torch.no_grad()
def _init_weights(m: nn.Module) -> None:
    """The official initialisation: N(0, 0.02) Linear weights, unit LayerNorms (the
    patch-embedding Conv2d keeps PyTorch's default, as in the official code).

    The official trunc_normal_(std=0.02) cuts at ±2, i.e. at 100σ: it is normal_(std=0.02),
    which is what is used here (trunc_normal_ takes seconds on 7 M weights).
    """
    if isinstance(m, nn.Linear):
        nn.init.normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)
