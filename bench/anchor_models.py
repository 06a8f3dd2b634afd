"""Which network each published latency anchor measured, and how edgec rebuilds its graph.

`../shared/reference/latency_anchors.json` names models in the papers' spelling; the cost model
needs their ONNX graphs. `BUILDERS` maps an anchor's `model` to a builder: a timm name (built
with `pretrained=False`, re-parameterised to its deployment form the way MobileOne/FastViT/
RepViT are measured), or "transformers:segformer-b0" (Hugging Face SegFormer-B0 from its
default config, 150 ADE20K classes). Anchors whose network edgec cannot rebuild offline
(EdgeViT, MIT EfficientViT-Seg/SAM, EfficientTAM, SAM 2, TSM video models) are not listed and
are reported as skipped by bench/estimator.py, with the reason.
"""

from __future__ import annotations

BUILDERS: dict[str, str] = {
    "EfficientViT-M0": "efficientvit_m0",
    "EfficientViT-M2": "efficientvit_m2",
    "EfficientViT-M3": "efficientvit_m3",
    "EfficientViT-M5": "efficientvit_m5",
    "MobileNetV3-Large": "mobilenetv3_large_100",
    "MobileNetV3-Small": "mobilenetv3_small_100",
    "MobileNetV2-1.0": "mobilenetv2_100",
    "MobileNetV2-1.4": "mobilenetv2_140",
    "MobileViT-XXS": "mobilevit_xxs",
    "MobileViT-S": "mobilevit_s",
    "MobileViTv2-0.5": "mobilevitv2_050",
    "MobileViTv2-1.0": "mobilevitv2_100",
    "SHViT-S4": "shvit_s4",
    "LowFormer-B0": "lowformer_b0",
    "LowFormer-B1": "lowformer_b1",
    "LowFormer-B1.5": "lowformer_b15",
    "LowFormer-E1": "lowformer_e1",
    "LowFormer-E3": "lowformer_e3",
    "MobileOne-S1": "mobileone_s1",
    "MobileOne-S2": "mobileone_s2",
    "MobileOne-S3": "mobileone_s3",
    "MobileOne-S4": "mobileone_s4",
    "FastViT-T12": "fastvit_t12",
    "FastViT-S12": "fastvit_s12",
    "FastViT-SA12": "fastvit_sa12",
    "FastViT-SA24": "fastvit_sa24",
    "FastViT-MA36": "fastvit_ma36",
    "EfficientFormer-L3": "efficientformer_l3",
    "EfficientFormer-L7": "efficientformer_l7",
    "EfficientFormerV2-S0": "efficientformerv2_s0",
    "EfficientFormerV2-S1": "efficientformerv2_s1",
    "RepViT-M0.9": "repvit_m0_9",
    "RepViT-M1.0": "repvit_m1_0",
    "RepViT-M1.5": "repvit_m1_5",
    "ResNet-50": "resnet50",
    "LeViT-128S": "levit_128s",
    "EfficientViT-B1": "efficientvit_b1",
    "EfficientViT-B2": "efficientvit_b2",
    "EfficientViT-B3": "efficientvit_b3",
    "SegFormer-B0-ADE20K": "transformers:segformer-b0",
}


def graph_file(model: str, resolution: list[int]) -> str:
    """File name of the cached skeleton graph of `model` at `resolution` (H, W)."""
    stem = BUILDERS[model].rpartition(":")[2].replace("-", "_")
    return f"{stem}_{resolution[0]}x{resolution[1]}.onnx"
