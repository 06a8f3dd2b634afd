"""The official EfficientTAM configurations (yformer/EfficientTAM `configs/efficienttam/*.yaml`).

All variants share: ViT patch 16, depth 12, MLP ratio 4, window 14 (global blocks 2, 5, 8,
11), neck 256, memory attention 4 layers (d 256, FFN 2048, 1 head, RoPE θ 1e4), memory
encoder 64 channels, 7 memory frames, 16 object pointers. They differ in the trunk width
(Ti 192/3 heads, S 384/6), the input size (1024 or 512) and the memory cross-attention:
`full` (`RoPEAttention`), `pooled_logits` (`EfficientRoPEAttention1`, paper eq. 5, the `_1`
configs) or `pooled_keys` (`EfficientRoPEAttention2`, eq. 6, `_2`).
"""

from __future__ import annotations

import dataclasses

PATCH = 16  # backbone stride
NUM_MASKMEM = 7
MAX_OBJ_PTRS = 16
HIDDEN_DIM = 256
MEM_DIM = 64
SIGMOID_SCALE_FOR_MEM_ENC = 20.0
SIGMOID_BIAS_FOR_MEM_ENC = -10.0
NO_OBJ_SCORE = -1024.0
WINDOW = 14
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


@dataclasses.dataclass(frozen=True)
class EfficientTAMConfig:
    """One official configuration; `image_size` may be overridden (a multiple of 32)."""

    name: str
    embed_dim: int
    num_heads: int
    image_size: int
    cross_attention: str  # "full" | "pooled_logits" | "pooled_keys"
    official_class: str

    @property
    def feat_size(self) -> int:
        return self.image_size // PATCH

    @property
    def pooled(self) -> bool:
        return self.cross_attention != "full"


_TRUNKS = {"ti": (192, 3), "s": (384, 6)}
_SUFFIXES = {  # suffix: (image size, cross-attention, official class)
    "": (1024, "full", "RoPEAttention"),
    "_1": (1024, "pooled_logits", "EfficientRoPEAttention1"),
    "_2": (1024, "pooled_keys", "EfficientRoPEAttention2"),
    "_512x512": (512, "full", "RoPEAttention"),
}

VARIANTS: dict[str, EfficientTAMConfig] = {
    f"efficienttam_{trunk}{suffix}": EfficientTAMConfig(
        f"efficienttam_{trunk}{suffix}", dim, heads, size, cross, cls
    )
    for trunk, (dim, heads) in _TRUNKS.items()
    for suffix, (size, cross, cls) in _SUFFIXES.items()
}
