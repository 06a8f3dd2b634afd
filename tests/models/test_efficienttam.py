"""EfficientTAM modules (edgec's own implementation): official layout, strict loading into the
whole model and each part, RoPE as real cos/sin, the pooled efficient cross-attentions, the
official `_forward_sam_heads` post-processing, and input errors.

Checkpoints are built from ../shared/reference/checkpoints/efficienttam_{ti,s}.json (random
tensors of every key and shape, official order).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from support.official import MANIFESTS, manifest, official_state_dict

from edgec.errors import CheckpointMismatchError, UserError
from edgec.models import create, zoo_entry
from edgec.models.efficienttam import VARIANTS, build
from edgec.models.efficienttam.attention import (
    EfficientRoPEAttention1,
    EfficientRoPEAttention2,
    RoPEAttention,
)
from edgec.models.efficienttam.rope import axial_angles, rotate

PARTS = (
    "image_encoder",
    "mask_downsample",
    "memory_attention",
    "memory_encoder",
    "sam_prompt_encoder",
    "sam_mask_decoder",
    "obj_ptr_proj",
)
needs_shared = pytest.mark.skipif(
    not (MANIFESTS / "efficienttam_ti.json").is_file(), reason="../shared manifests not present"
)


@needs_shared
@pytest.mark.parametrize("name", ["efficienttam_ti_1", "efficienttam_s"])
def test_state_dict_is_the_official_layout_and_loads_strictly(name):
    trunk = name.split("_")[1]
    expected = [(k, s) for k, s, _ in manifest(f"efficienttam_{trunk}")["state_dict"]]
    sd = official_state_dict(f"efficienttam_{trunk}")
    model = create(name, checkpoint={"model": sd}, image_size=64)  # official file: under "model"
    assert [(k, list(v.shape)) for k, v in model.state_dict().items()] == expected
    assert model.edgec_info.weights.startswith("checkpoint")
    assert torch.equal(
        model.sam_prompt_encoder.pe_layer.positional_encoding_gaussian_matrix,
        sd["sam_prompt_encoder.pe_layer.positional_encoding_gaussian_matrix"],
    )
    for part in PARTS:  # each part on its own, strictly, with its prefix removed
        sub = {k[len(part) + 1 :]: v for k, v in sd.items() if k.startswith(part + ".")}
        getattr(model, part).load_state_dict(sub, strict=True)


@needs_shared
def test_wrong_checkpoint_names_the_mismatched_keys():
    sd = official_state_dict("efficienttam_s")
    with pytest.raises(CheckpointMismatchError, match=r"image_encoder\.trunk\.pos_embed"):
        create("efficienttam_ti", checkpoint=sd, image_size=64)


def test_every_official_config_is_registered():
    assert sorted(VARIANTS) == sorted(
        f"efficienttam_{t}{s}" for t in ("ti", "s") for s in ("", "_1", "_2", "_512x512")
    )
    assert zoo_entry("efficienttam_ti_512x512").input_size == (3, 512, 512)
    kinds = {
        n: type(build(n, image_size=64).memory_attention.layers[0].cross_attn_image)
        for n in ("efficienttam_ti", "efficienttam_ti_1", "efficienttam_ti_2")
    }
    assert kinds == {
        "efficienttam_ti": RoPEAttention,
        "efficienttam_ti_1": EfficientRoPEAttention1,
        "efficienttam_ti_2": EfficientRoPEAttention2,
    }


@pytest.mark.parametrize("size", [48, 0, 100])
def test_bad_image_size_is_a_user_error(size):
    with pytest.raises(UserError, match="multiple of 32"):
        create("efficienttam_ti_2", image_size=size)


def _complex_rope(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """The official formulation: view pairs as complex numbers, multiply by polar(1, angle)."""
    xc = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))
    frames = x.shape[-2] // angles.shape[0]
    cis = torch.polar(torch.ones_like(angles), angles).repeat(frames, 1)
    return torch.view_as_real(xc * cis).flatten(3)


def test_real_rope_equals_the_complex_formulation():
    g = torch.Generator().manual_seed(0)
    angles = axial_angles(256, 6, 6)
    q = torch.randn(1, 1, 36, 256, generator=g)
    k = torch.randn(1, 1, 3 * 36, 256, generator=g)  # 3 memory frames reuse the table
    cos, sin = torch.cos(angles), torch.sin(angles)
    torch.testing.assert_close(rotate(q, cos, sin), _complex_rope(q, angles), atol=1e-5, rtol=0)
    torch.testing.assert_close(rotate(k, cos, sin), _complex_rope(k, angles), atol=1e-5, rtol=0)


def _pooled_reference(q, k, v, frames: int, ptr_tokens: int, eq: int) -> torch.Tensor:
    """Paper eqs. (5)/(6) written directly: pool each frame's k, v on its 2-D grid."""
    side = math.isqrt(q.shape[-2])
    d = q.shape[-1]

    def pool(x):
        grid = x[0, 0, : frames * side * side].reshape(frames, side, side, d).permute(0, 3, 1, 2)
        return F.avg_pool2d(grid, 2).permute(0, 2, 3, 1).reshape(1, 1, -1, d)

    k_pool, v_pool = pool(k), pool(v)
    k_ptr, v_ptr = k[:, :, frames * side * side :], v[:, :, frames * side * side :]
    values = torch.cat([v_pool, v_ptr], dim=2)
    if eq == 5:
        logits = torch.cat(
            [
                q @ k_pool.transpose(-2, -1) / math.sqrt(d) + math.log(4),
                q @ k_ptr.transpose(-2, -1) / math.sqrt(d),
            ],
            -1,
        )
        return logits.softmax(-1) @ values
    keys = torch.cat([k_pool + math.log(4), k_ptr], dim=2)
    return (q @ keys.transpose(-2, -1) / math.sqrt(d)).softmax(-1) @ values


@pytest.mark.parametrize(
    ("cls", "eq"), [(EfficientRoPEAttention1, 5), (EfficientRoPEAttention2, 6)]
)
def test_pooled_cross_attention_follows_the_paper(cls, eq):
    torch.manual_seed(0)
    attn = cls(256, 1, kv_in_dim=64, rope_k_repeat=True, feat_sizes=(4, 4)).eval()
    q_in, k_in, v_in = (
        torch.randn(1, 16, 256),
        torch.randn(1, 3 * 16 + 8, 64),
        torch.randn(1, 3 * 16 + 8, 64),
    )
    captured = {}
    attn._pooled_orig = attn._pooled

    def spy(q, k_pool, k_rest, v_all):
        captured["qkv"] = (q, k_pool, k_rest, v_all)
        return attn._pooled_orig(q, k_pool, k_rest, v_all)

    attn._pooled = spy
    with torch.no_grad():
        attn(q_in, k_in, v_in, num_k_exclude_rope=8)
        cos, sin = attn.rope_cos, attn.rope_sin
        q = rotate(attn._heads(attn.q_proj(q_in)), cos, sin)
        k = attn._heads(attn.k_proj(k_in))
        k = torch.cat([rotate(k[:, :, :48], cos, sin), k[:, :, 48:]], dim=2)
        v = attn._heads(attn.v_proj(v_in))
        expected = _pooled_reference(q, k, v, frames=3, ptr_tokens=8, eq=eq)
        got = attn._pooled_orig(*captured["qkv"])
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    # one memory frame: no pooling (the official fallback), same as the full RoPE attention
    full = RoPEAttention(256, 1, kv_in_dim=64, rope_k_repeat=True, feat_sizes=(4, 4)).eval()
    full.load_state_dict(attn.state_dict())
    one = (q_in, k_in[:, :24], v_in[:, :24])
    with torch.no_grad():
        torch.testing.assert_close(
            attn.__class__.forward(attn, *one, num_k_exclude_rope=8),
            full(*one, num_k_exclude_rope=8),
        )


@needs_shared
def test_sam_heads_apply_the_official_post_processing():
    model = create(
        "efficienttam_ti", checkpoint=official_state_dict("efficienttam_ti"), image_size=64
    )
    feats = torch.randn(1, 256, 4, 4, generator=torch.Generator().manual_seed(1))
    points = {
        "point_coords": torch.tensor([[[20.0, 30.0]]]),
        "point_labels": torch.tensor([[1]], dtype=torch.int32),
    }
    with torch.no_grad():
        low, high, ious, best, _, ptr, _ = model._forward_sam_heads(
            feats, points, multimask_output=True
        )
        sparse, dense = model.sam_prompt_encoder(
            points=(points["point_coords"], points["point_labels"]), boxes=None, masks=None
        )
        masks, _, tokens, score2 = model.sam_mask_decoder(
            feats, model.sam_prompt_encoder.get_dense_pe(), sparse, dense, True, False
        )
    assert sparse.shape == (1, 2, 256)  # the padding point was appended
    assert (
        low.shape == (1, 3, 16, 16)
        and high.shape == (1, 3, 64, 64)
        and best.shape == (1, 1, 16, 16)
    )
    i = int(ious.argmax())
    appearing = float(score2) > 0
    torch.testing.assert_close(
        best[0, 0], masks[0, i] if appearing else torch.full_like(masks[0, i], -1024.0)
    )
    expected_ptr = model.obj_ptr_proj(tokens[:, i]) if appearing else model.no_obj_ptr
    torch.testing.assert_close(ptr, expected_ptr.detach())
