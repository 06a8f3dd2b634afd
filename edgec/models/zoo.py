"""The built-in model catalogue: EfficientViT-M, SHViT and LowFormer (built by timm),
SegFormer3D (implemented by edgec, `edgec.models.segformer3d`; 3-D input) and Segmenter /
I-Segmenter ViT-Ti (implemented by edgec, `edgec.models.segmenter`).

Each `ZooEntry` joins timm's `pretrained_cfg` (input size, preprocessing) with the facts the
official repositories report (parameters, MACs, ImageNet top-1; from
`reference/models-a.md`). Built-in models have no trained weights in edgec: they start from a
seeded random initialisation and a checkpoint gives them their real accuracy.
"""

from __future__ import annotations

import dataclasses
from typing import Any

RANDOM_INIT_NOTE = (
    "random init (seed 0; norm statistics and attention biases randomised so no branch is "
    "degenerate): no trained weights; give a checkpoint for real accuracy"
)
INIT_SEED = 0


@dataclasses.dataclass(frozen=True)
class ZooEntry:
    """One built-in model: its timm name, input, preprocessing and the official numbers."""

    name: str
    display_name: str
    family: str
    timm_name: str
    input_size: tuple[int, ...]
    fixed_input_size: bool
    mean: tuple[float, ...]
    std: tuple[float, ...]
    interpolation: str
    crop_pct: float
    crop_mode: str
    num_classes: int
    official_repo: str
    reported_params_m: float | None
    reported_macs_m: float | None
    reported_top1: float | None
    weights: str = RANDOM_INIT_NOTE
    notes: tuple[str, ...] = ()
    layout: str = "NCHW"
    color: str = "RGB"

    def preprocessing(self) -> dict[str, Any]:
        """The entry's preprocessing in the form `preprocessing_for` returns."""
        return {
            "input_size": list(self.input_size),
            "mean": list(self.mean),
            "std": list(self.std),
            "interpolation": self.interpolation,
            "crop_pct": self.crop_pct,
            "crop_mode": self.crop_mode,
            "fixed_input_size": self.fixed_input_size,
            "layout": self.layout,
            "color": self.color,
        }


@dataclasses.dataclass(frozen=True)
class _Family:
    label: str
    official_repo: str
    note: str


_FAMILIES = {
    "efficientvit_msra": _Family(
        "EfficientViT-M",
        "https://github.com/microsoft/Cream/tree/main/EfficientViT",
        "fixed input resolution: the attention bias tables are sized for it at build time",
    ),
    "shvit": _Family("SHViT", "https://github.com/ysj9909/SHViT", ""),
    "lowformer": _Family("LowFormer", "https://github.com/altair199797/LowFormer", ""),
}

# name: (family, display name, reported params [M], MACs [M], ImageNet-1k top-1 [%]).
# Sources: EfficientViT/classification/README.md, SHViT README.md, LowFormer README.md and
# Beyond_MACs_journal_extension.md (as summarised in reference/models-a.md).
_REPORTED: dict[str, tuple[str, str, float | None, float | None, float | None]] = {
    "efficientvit_m0": ("efficientvit_msra", "EfficientViT-M0", 2.3, 79, 63.2),
    "efficientvit_m1": ("efficientvit_msra", "EfficientViT-M1", 3.0, 167, 68.4),
    "efficientvit_m2": ("efficientvit_msra", "EfficientViT-M2", 4.2, 201, 70.8),
    "efficientvit_m3": ("efficientvit_msra", "EfficientViT-M3", 6.9, 263, 73.4),
    "efficientvit_m4": ("efficientvit_msra", "EfficientViT-M4", 8.8, 299, 74.3),
    "efficientvit_m5": ("efficientvit_msra", "EfficientViT-M5", 12.4, 522, 77.1),
    "shvit_s1": ("shvit", "SHViT-S1", 6.3, 241, 72.8),
    "shvit_s2": ("shvit", "SHViT-S2", 11.4, 366, 75.2),
    "shvit_s3": ("shvit", "SHViT-S3", 14.2, 601, 77.4),
    "shvit_s4": ("shvit", "SHViT-S4", 16.5, 986, 79.4),
    "lowformer_b0": ("lowformer", "LowFormer-B0", 14.1, 944, 78.4),
    "lowformer_b1": ("lowformer", "LowFormer-B1", 17.9, 1410, 79.9),
    "lowformer_b15": ("lowformer", "LowFormer-B1.5", 33.9, 2573, 81.2),
    "lowformer_b3": ("lowformer", "LowFormer-B3", 57.1, 6098, 83.6),
    "lowformer_e1": ("lowformer", "LowFormer-E1", None, 1350, 78.8),
    "lowformer_e2": ("lowformer", "LowFormer-E2", None, 3800, 81.6),
    "lowformer_e3": ("lowformer", "LowFormer-E3", None, 5350, 83.0),
}

_EXTRA_NOTES = {
    "shvit_s4": ("evaluated at 256×256 (official eval uses --input-size 256)",),
    "lowformer_e3": ("README reports 5350 M MACs; the code (and timm) count 4866 M",),
}


def _segmenter_entry(name: str, display: str, params_m: float, macs_m: float, *notes: str):
    """A Segmenter ViT-Ti/16 variant (ADE20K, 512², mean = std = 0.5, 150 classes)."""
    return ZooEntry(
        name=name,
        display_name=display,
        family="Segmenter",
        timm_name="",
        input_size=(3, 512, 512),
        fixed_input_size=False,
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        interpolation="bilinear",
        crop_pct=1.0,
        crop_mode="center",
        num_classes=150,
        official_repo="https://github.com/rstrudel/segmenter",
        reported_params_m=params_m,
        reported_macs_m=macs_m,
        reported_top1=None,
        notes=(
            *notes,
            "semantic segmentation: logits (B, 150, H, W) at the input size (ADE20K classes)",
            "any H×W: zero-padded to multiples of 16, pos_embed resized bilinearly, output "
            "cropped back (pos_embed_resize='token_count' reproduces the official quirk)",
            "params and MACs at 512² counted on the official code (reference/models-b.md §3.2)",
        ),
    )


def _efficienttam_entry(name: str, display: str, size: int, params_m: float, macs_m, *notes: str):
    """An EfficientTAM variant (video object segmentation; edgec.models.efficienttam)."""
    return ZooEntry(
        name=name,
        display_name=display,
        family="EfficientTAM",
        timm_name="",
        input_size=(3, size, size),
        fixed_input_size=True,
        mean=(0.485, 0.456, 0.406),
        std=(0.229, 0.224, 0.225),
        interpolation="bicubic",
        crop_pct=1.0,
        crop_mode="squash",
        num_classes=1,
        official_repo="https://github.com/yformer/EfficientTAM",
        reported_params_m=params_m,
        reported_macs_m=macs_m,
        reported_top1=None,
        notes=(
            *notes,
            "video object segmentation: several graphs (image encoder, prompt+mask decoder, "
            "memory encoder, memory attention) with the memory bank in host code",
            "MACs: image encoder per frame (reference/models-b.md §1.2); params: paper Table 1",
        ),
    )


def _efficienttam_entries() -> dict[str, ZooEntry]:
    trunks = {"ti": ("Ti", 18.0, {1024: 54650, 512: 9800}), "s": ("S", 34.0, {1024: 152250})}
    kinds = {
        "": (1024, "", "full memory cross-attention (RoPEAttention)"),
        "_1": (1024, "/2 eq.5", "2×2-pooled memory cross-attention, ln 4 on logits (paper eq. 5)"),
        "_2": (1024, "/2 eq.6", "2×2-pooled memory cross-attention, ln 4 on keys (paper eq. 6)"),
        "_512x512": (512, " 512", "512×512 input, full memory cross-attention"),
    }
    return {
        f"efficienttam_{t}{k}": _efficienttam_entry(
            f"efficienttam_{t}{k}", f"EfficientTAM-{label}{tag}", size, params, macs.get(size), note
        )
        for t, (label, params, macs) in trunks.items()
        for k, (size, tag, note) in kinds.items()
    }


# Models edgec implements itself (not in timm): name → catalogue entry.
# SegFormer3D figures: paper Table 1 (4.51 M params), ptflops 12.8 GMac at 4×128³
# (notebooks/model_profiler.ipynb); accuracy is BraTS-2017 Dice, not ImageNet top-1.
NATIVE: dict[str, ZooEntry] = {
    "segformer3d": ZooEntry(
        name="segformer3d",
        display_name="SegFormer3D",
        family="SegFormer3D",
        timm_name="",
        input_size=(4, 128, 128, 128),
        fixed_input_size=False,
        mean=(0.0, 0.0, 0.0, 0.0),
        std=(1.0, 1.0, 1.0, 1.0),
        interpolation="trilinear",
        crop_pct=1.0,
        crop_mode="center",
        num_classes=3,
        official_repo="https://github.com/OSUPCVLab/SegFormer3D",
        reported_params_m=4.51,
        reported_macs_m=12800,
        reported_top1=None,
        notes=(
            "3-D segmentation (BraTS 2017): 4 MRI modalities in, 3 sigmoid channels out; "
            "reported Dice 82.1 % (no ImageNet top-1)",
            "any D×H×W divisible by 32; larger volumes: edgec.models.sliding_window (128³)",
            "attn_scale='num_heads' (default, published weights) or 'head_dim' (current code)",
            "mean/std are identity: volumes come normalised from the dataset preprocessing",
        ),
        layout="NCDHW",
        color="MRI (FLAIR, T1w, T1gd, T2w)",
    ),
    # Segmenter / I-Segmenter ViT-Ti (edgec.models.segmenter).
    "segmenter_vit_tiny_linear": _segmenter_entry(
        "segmenter_vit_tiny_linear",
        "Segmenter-T-Linear",
        5.91,
        10450,
        "linear decoder; no tiny linear checkpoint is released (the layout is the official one)",
    ),
    "segmenter_vit_tiny_mask": _segmenter_entry(
        "segmenter_vit_tiny_mask",
        "Segmenter-T-Mask",
        6.91,
        12650,
        "mask-transformer decoder; Seg-T-Mask/16 reports 38.1 % mIoU (ADE20K, single scale)",
    ),
    "isegmenter_vit_tiny": _segmenter_entry(
        "isegmenter_vit_tiny",
        "I-Segmenter-T",
        6.91,
        12650,
        "I-Segmenter's float model for the integer-only pipeline: λ-ShiftGELU x·σ(λx) "
        "(λ=1.702, edgec's reading of the paper), no L2 normalisation, nearest upsampling",
        "loads Seg-T-Mask/16 checkpoints (same keys); the paper reports int-only mIoU within "
        "5.1 % of FP32 on average",
    ),
    # EfficientTAM Ti / S, every official config (edgec.models.efficienttam).
    **_efficienttam_entries(),
}

BUILTIN_NAMES: tuple[str, ...] = (*_REPORTED, *NATIVE)


def zoo_entry(name: str) -> ZooEntry:
    """The catalogue entry of built-in model `name` (KeyError if it is not built in)."""
    if name in NATIVE:
        return NATIVE[name]
    from timm.models import get_pretrained_cfg

    family, display, params, macs, top1 = _REPORTED[name]
    fam = _FAMILIES[family]
    cfg = get_pretrained_cfg(name).to_dict()
    notes = tuple(n for n in (fam.note, *_EXTRA_NOTES.get(name, ())) if n)
    return ZooEntry(
        name=name,
        display_name=display,
        family=fam.label,
        timm_name=name,
        input_size=tuple(cfg["input_size"]),
        fixed_input_size=bool(cfg.get("fixed_input_size", False)),
        mean=tuple(cfg["mean"]),
        std=tuple(cfg["std"]),
        interpolation=cfg["interpolation"],
        crop_pct=float(cfg["crop_pct"]),
        crop_mode=cfg.get("crop_mode", "center"),
        num_classes=int(cfg["num_classes"]),
        official_repo=fam.official_repo,
        reported_params_m=params,
        reported_macs_m=macs,
        reported_top1=top1,
        notes=notes,
    )


def zoo() -> list[ZooEntry]:
    """Every built-in model, in catalogue order (EfficientViT-M, SHViT, LowFormer, SegFormer3D)."""
    return [zoo_entry(name) for name in BUILTIN_NAMES]


def display_aliases() -> dict[str, str]:
    """Lower-case spellings users type (`efficientvit-m0`, `lowformer-b1.5`) → built-in name."""
    aliases = {}
    displays = {name: row[1] for name, row in _REPORTED.items()}
    displays.update({name: entry.display_name for name, entry in NATIVE.items()})
    for name, display in displays.items():
        for spelling in (display, display.replace(".", ""), name):
            key = spelling.lower().replace("-", "_")
            aliases[key] = name
            aliases[key.replace("_", "")] = name
    return aliases
