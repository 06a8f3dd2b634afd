"""SegFormer3D (edgec's own implementation): official layout, attention scale, any D×H×W,
ONNX export, registration, and sliding-window inference.

Official-layout checkpoints are built from ../shared/reference/checkpoints/segformer3d.json
(random tensors of every key/shape, sane BatchNorm statistics).

Non-cubic correctness is checked by axis-permutation equivariance: permuting the spatial axes
of the input and of every Conv3d kernel the same way must permute the output the same way.
Every other op (LayerNorm, Linear, attention over an unordered token set, BatchNorm, trilinear
resize, which is separable per axis) is indifferent to the axis order, so this holds exactly for
a correct model, and fails when tokens are un-flattened onto the wrong grid (the official
cube-root reshape cannot even represent 8×16×24 tokens).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from support.official import MANIFESTS, manifest, official_state_dict

from edgec.errors import CheckpointMismatchError, UserError
from edgec.models import create, create_with_info, preprocessing_for, resolve_name, zoo, zoo_entry
from edgec.models.segformer3d_blocks import SelfAttention, tokens_to_volume, volume_to_tokens
from edgec.models.sliding_window import blend_weights, sliding_window, window_starts

VARIANT = "segformer3d"
needs_shared = pytest.mark.skipif(
    not (MANIFESTS / f"{VARIANT}.json").is_file(), reason="../shared manifest not present"
)


@pytest.fixture(scope="module")
def official_sd():
    return official_state_dict(VARIANT)


@pytest.fixture(scope="module")
def small_volume():
    return torch.randn(1, 4, 32, 32, 32, generator=torch.Generator().manual_seed(1))


def _close(a: torch.Tensor, b: torch.Tensor, rel: float = 1e-4) -> bool:
    return bool(((a - b).abs() <= rel * torch.clamp(b.abs(), min=1)).all())


# ---- layout and loading ------------------------------------------------------------------------


@needs_shared
def test_state_dict_equals_official_manifest():
    man = manifest(VARIANT)
    model = create(VARIANT)
    sd = model.state_dict()
    got = {k: [list(v.shape), str(v.dtype).removeprefix("torch.")] for k, v in sd.items()}
    assert got == {k: [shape, dtype] for k, shape, dtype in man["state_dict"]}
    assert sum(p.numel() for p in model.parameters()) == man["num_parameters_excluding_buffers"]
    assert sum(v.numel() for v in sd.values()) == man["num_elements_all_tensors"]


@needs_shared
@pytest.mark.parametrize("container", [False, True])
def test_official_checkpoint_file_loads_strictly(tmp_path, official_sd, container):
    path = tmp_path / "pytorch_model.bin"  # accelerate's file: a plain state_dict
    torch.save({"state_dict": official_sd} if container else official_sd, path)
    model, info = create_with_info(VARIANT, checkpoint=path)
    assert info.checkpoint_layout == "official" and info.family == "SegFormer3D"
    assert info.num_classes == 3 == model.num_classes and info.num_classes_source == "checkpoint"
    assert not model.training
    own = model.state_dict()
    assert all(torch.equal(own[k], v) for k, v in official_sd.items())


@needs_shared
def test_mismatched_checkpoint_names_the_keys(official_sd):
    sd = dict(official_sd)
    del sd["segformer_encoder.norm2.bias"]
    sd["segformer_encoder.extra.weight"] = torch.zeros(3)
    sd["segformer_decoder.linear_c1.proj.weight"] = torch.zeros(256, 33)
    with pytest.raises(CheckpointMismatchError) as err:
        create(VARIANT, checkpoint=sd)
    text = str(err.value)
    for key in ("norm2.bias", "extra.weight", "linear_c1.proj.weight"):
        assert key in text
    assert "timm" not in text  # native keys are the official ones: no remap note


# ---- numerics ----------------------------------------------------------------------------------


@needs_shared
def test_attn_scale_versions(official_sd, small_volume):
    """head_dim scaling == num_heads scaling with q pre-multiplied by √(num_heads/head_dim)."""
    by_heads = create(VARIANT, checkpoint=official_sd)
    by_dim = create(VARIANT, checkpoint=official_sd, attn_scale="head_dim")
    for a, b in zip(by_heads.modules(), by_dim.modules(), strict=True):
        if isinstance(a, SelfAttention):
            assert a.scale / b.scale == pytest.approx(math.sqrt(a.head_dim / a.num_heads))
    scaled = dict(official_sd)
    for name, module in by_heads.named_modules():
        if name.endswith(".attention"):
            factor = math.sqrt(module.num_heads / module.head_dim)
            for suffix in ("query.weight", "query.bias"):
                scaled[f"{name}.{suffix}"] = official_sd[f"{name}.{suffix}"] * factor
    with torch.no_grad():
        y_heads, y_dim = by_heads(small_volume), by_dim(small_volume)
        y_scaled = create(VARIANT, checkpoint=scaled)(small_volume)
    assert y_heads.shape == (1, 3, 32, 32, 32)
    assert (y_heads - y_dim).abs().max() > 1e-3  # the two code versions differ ...
    assert _close(y_scaled, y_dim)  # ... exactly by the logit scale


def test_token_reshape_matches_official_cube_root_reshape():
    x = torch.randn(2, 5, 4, 4, 4)
    tokens, dims = volume_to_tokens(x)
    n = round(tokens.shape[1] ** (1 / 3))
    official = tokens.reshape(2, n, n, n, 5).permute(0, 4, 1, 2, 3)
    assert dims == (4, 4, 4) and torch.equal(tokens_to_volume(tokens, dims), official)
    y = torch.randn(2, 5, 2, 3, 4)  # non-cubic: exact round trip
    assert torch.equal(tokens_to_volume(*volume_to_tokens(y)), y)


@pytest.mark.parametrize("perm", [(0, 1, 3, 4, 2), (0, 1, 3, 2, 4)], ids=["cycle", "swap_dh"])
def test_non_cubic_volume_is_axis_permutation_equivariant(perm):
    model = create(VARIANT)
    sd = model.state_dict()
    permuted = {k: v.permute(*perm) if v.ndim == 5 else v for k, v in sd.items()}
    other = create(VARIANT, checkpoint=permuted)
    x = torch.randn(1, 4, 32, 64, 96, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        y = model(x)
        y_perm = other(x.permute(*perm).contiguous())
    assert y.shape == (1, 3, 32, 64, 96)
    assert _close(y_perm, y.permute(*perm))


@pytest.mark.parametrize(
    "shape", [(1, 4, 32, 48, 32), (1, 4, 16, 32, 32), (4, 32, 32, 32), (1, 3, 32, 32, 32)]
)
def test_bad_input_is_a_user_error(shape):
    model = create(VARIANT)
    with pytest.raises(UserError) as err:
        model(torch.zeros(shape))
    assert err.value.exit_code == 2 and err.value.hint


def test_onnx_export_matches_pytorch():
    import onnx_ir as ir
    import onnxruntime as ort

    from edgec.exporters.export import export_onnx

    model = create(VARIANT)
    shape = (4, 32, 32, 32)
    onnx_model = export_onnx(model, shape)
    x = np.random.default_rng(3).standard_normal((1, *shape)).astype(np.float32)
    session = ort.InferenceSession(
        ir.to_proto(onnx_model).SerializeToString(), providers=["CPUExecutionProvider"]
    )
    (got,) = session.run(None, {session.get_inputs()[0].name: x})
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    assert got.shape == ref.shape == (1, 3, 32, 32, 32)
    assert np.all(np.abs(got - ref) <= 5e-5 * np.maximum(1, np.abs(ref)))


# ---- registration ------------------------------------------------------------------------------


def test_registered_in_zoo_and_seeded():
    assert VARIANT in [e.name for e in zoo()]
    entry = zoo_entry(VARIANT)
    assert entry.input_size == (4, 128, 128, 128) and entry.num_classes == 3
    assert entry.preprocessing()["layout"] == "NCDHW"
    assert resolve_name("SegFormer3D") == VARIANT
    a, b = create(VARIANT), create("segformer3d", attn_scale="num_heads")
    sa, sb = a.state_dict(), b.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert sa["segformer_decoder.linear_fuse.1.running_var"].std() > 0  # randomised, not 1s
    assert preprocessing_for(a)["input_size"] == [4, 128, 128, 128]
    assert create(VARIANT, num_classes=5).num_classes == 5
    with pytest.raises(UserError, match="does not accept"):
        create(VARIANT, no_such_option=1)
    with pytest.raises(UserError, match="attn_scale"):
        create(VARIANT, attn_scale="sqrt")


# ---- sliding window ----------------------------------------------------------------------------


def _pointwise(x: torch.Tensor) -> torch.Tensor:
    return torch.cat([x.sum(1, keepdim=True), torch.tanh(x[:, :1]) * 3], dim=1)


def test_window_starts_cover_the_axis():
    assert window_starts(128, 128, 0.5) == [0]
    assert window_starts(256, 128, 0.5) == [0, 64, 128]
    assert window_starts(200, 128, 0.5) == [0, 64, 72]
    assert window_starts(96, 32, 0.0) == [0, 32, 64]


@pytest.mark.parametrize("blend", ["constant", "gaussian"])
@pytest.mark.parametrize("size", [(16, 16, 16), (20, 16, 27), (5, 16, 9)])
def test_translation_equivariant_fn_is_reproduced_exactly(blend, size):
    """Blending identical overlapping predictions (any convex weights) gives them back."""
    x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(4))
    calls = []

    def fn(windows):
        calls.append(windows.shape[0])
        return _pointwise(windows)

    y = sliding_window(fn, x, window=(8, 8, 8), overlap=0.5, batch=3, blend=blend)
    assert y.shape == (2, 2, *size)
    assert torch.allclose(y, _pointwise(x), atol=1e-5)
    assert max(calls) <= 3


def test_model_window_equal_to_volume_is_a_direct_call(small_volume):
    model = create(VARIANT)
    with torch.no_grad():
        direct = model(small_volume)
        for blend in ("constant", "gaussian"):
            y = sliding_window(model, small_volume, window=(32, 32, 32), blend=blend)
            assert _close(y, direct, 1e-5)


def test_model_constant_blend_averages_the_overlap():
    model = create(VARIANT)
    x = torch.randn(1, 4, 32, 32, 64, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        y = sliding_window(model, x, window=(32, 32, 32), overlap=0.5, batch=2)
        p0, p1, p2 = (model(x[..., s : s + 32]) for s in (0, 16, 32))
    assert _close(y[..., :16], p0[..., :16])  # windows batched by 2 vs 1: float noise only
    assert _close(y[..., 16:32], (p0[..., 16:] + p1[..., :16]) / 2)
    assert _close(y[..., 32:48], (p1[..., 16:] + p2[..., :16]) / 2)
    assert _close(y[..., 48:], p2[..., 16:])


def test_gaussian_weights():
    w = blend_weights((9, 8, 7), "gaussian")
    assert w.shape == (9, 8, 7) and w.max() <= 1 and w.min() >= 1e-3
    assert w[4, 3, 3] == w.max()
    assert torch.equal(w, w.flip(0)) and torch.allclose(w, w.flip(1))
    with pytest.raises(UserError):
        blend_weights((4, 4, 4), "median")
