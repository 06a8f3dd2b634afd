"""Exported attention blocks of every zoo family, each exported once per test session."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
timm = pytest.importorskip("timm")

from exported import Exported, Functional  # noqa: E402
from support import official  # noqa: E402


@pytest.fixture(scope="session")
def vit_block():
    """timm's ViT attention (deit/Segmenter encoder): 4 heads over 17 tokens."""
    from timm.models.vision_transformer import Attention

    torch.manual_seed(0)
    return Exported(Attention(64, num_heads=4, qkv_bias=True), (1, 17, 64))


@pytest.fixture(scope="session")
def vit_block_opset23():
    """The same ViT attention exported at opset 23, where scaled_dot_product_attention becomes
    the ONNX Attention op."""
    from timm.models.vision_transformer import Attention

    torch.manual_seed(0)
    block = Exported(Attention(64, num_heads=4, qkv_bias=True), (1, 17, 64), opset=23)
    assert any(node.op_type == "Attention" for node in block.model.graph)
    return block


@pytest.fixture(scope="session")
def lowformer_block():
    """LowFormer's ConvAttention (strided dw conv, packed per-head [q|k|v], ConvTranspose)."""
    from timm.models.lowformer import ConvAttention

    torch.manual_seed(0)
    return Exported(ConvAttention(128, att_stride=2, att_kernel=5), (1, 128, 8, 8))


@pytest.fixture(scope="session")
def shvit_block():
    """SHViT's single-head attention on a partial channel slice."""
    from timm.models.shvit import SHSA

    torch.manual_seed(0)
    return Exported(SHSA(64, 16, 32), (1, 64, 7, 7))


@pytest.fixture(scope="session")
def cga_timm_block():
    """timm's EfficientViT-M0 stage-1 cascaded group attention (4 heads, 7×7)."""
    from timm.models.efficientvit_msra import CascadedGroupAttention

    torch.manual_seed(0)
    module = CascadedGroupAttention(64, 16, num_heads=4, attn_ratio=1, resolution=7)
    return Exported(module, (1, 64, 7, 7))


@pytest.fixture(scope="session")
def cga_official_block():
    """The same block in the official microsoft/Cream layout (logits scaled after qᵀk,
    gathered bias table), from an official-layout EfficientViT-M0 state dict."""
    if not official.MANIFESTS.is_dir():
        pytest.skip(f"{official.MANIFESTS} (the official checkpoint manifests) is not here")
    sd = official.official_state_dict("efficientvit_m0")
    module = Functional(official.cascaded_group_attention, sd, "blocks1.0.mixer.m.attn")
    return Exported(module, (1, 64, 7, 7))
