"""Segmenter / I-Segmenter (edgec's own implementation): official layout and strict loading,
the official forward at odd sizes and 512², the I-Segmenter options, input errors, registration.

Official-layout checkpoints are built from ../shared/reference/checkpoints/segmenter_*.json
(random tensors of every key/shape, embeddings as large as the patch features) and compared
with `support.official_segmenter.segmenter_forward`, a functional statement of the official
forward that shares no code with edgec's modules.
"""

from __future__ import annotations

import pytest
import torch
from support.official import MANIFESTS, manifest
from support.official_segmenter import (
    ISEGMENTER,
    segmenter_forward,
    segmenter_state_dict,
    shift_gelu,
)

from edgec.errors import CheckpointMismatchError, UserError
from edgec.models import create, create_with_info, preprocessing_for, resolve_name, zoo, zoo_entry
from edgec.models.segmenter_blocks import LambdaShiftGELU

LINEAR, MASK, ISEG = "segmenter_vit_tiny_linear", "segmenter_vit_tiny_mask", "isegmenter_vit_tiny"
MANIFEST_OF = {LINEAR: LINEAR, MASK: MASK, ISEG: MASK}  # I-Segmenter keeps Segmenter's keys
needs_shared = pytest.mark.skipif(
    not (MANIFESTS / f"{MASK}.json").is_file(), reason="../shared manifests not present"
)
pytestmark = needs_shared


SHALLOW = 2  # encoder depth for the 512² and option checks (the full 12 run at odd sizes)


@pytest.fixture(scope="module")
def weights():
    return {v: segmenter_state_dict(v, seed=i) for i, v in enumerate((LINEAR, MASK))}


@pytest.fixture(scope="module")
def shallow(weights):
    """The same checkpoints cut to SHALLOW encoder blocks (built with n_layers=SHALLOW)."""
    keep = tuple(f"encoder.blocks.{i}." for i in range(SHALLOW))
    return {
        v: {
            k: t for k, t in sd.items() if not k.startswith("encoder.blocks.") or k.startswith(keep)
        }
        for v, sd in weights.items()
    }


def _image(*shape: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _close(a: torch.Tensor, b: torch.Tensor, rel: float = 5e-5) -> bool:
    return bool(((a - b).abs() <= rel * max(1.0, float(b.abs().max()))).all())


# ---- layout and loading ------------------------------------------------------------------------


@pytest.mark.parametrize("variant", [LINEAR, MASK, ISEG])
def test_state_dict_equals_official_manifest(variant):
    man = manifest(MANIFEST_OF[variant])
    model = create(variant)
    got = [
        [k, list(v.shape), str(v.dtype).removeprefix("torch.")]
        for k, v in model.state_dict().items()
    ]
    assert got == man["state_dict"]  # same keys, shapes, dtypes and order
    assert sum(p.numel() for p in model.parameters()) == man["num_parameters_excluding_buffers"]


@pytest.mark.parametrize("variant", [LINEAR, MASK, ISEG])
def test_official_checkpoint_file_loads_strictly(tmp_path, weights, variant):
    sd = weights[MANIFEST_OF[variant]]
    path = tmp_path / "checkpoint.pth"
    torch.save({"model": sd, "epoch": 63}, path)  # segm/model/factory.py: state_dict under "model"
    model, info = create_with_info(variant, checkpoint=path)
    assert info.checkpoint_layout == "official" and info.family == "Segmenter"
    assert info.num_classes == 150 == model.num_classes and info.num_classes_source == "checkpoint"
    assert not model.training
    own = model.state_dict()
    assert all(torch.equal(own[k], v) for k, v in sd.items())


def test_fine_tuned_class_count_is_read_from_the_checkpoint(weights):
    sd = dict(weights[MASK])
    sd["decoder.cls_emb"] = sd["decoder.cls_emb"][:, :21]
    sd["decoder.mask_norm.weight"] = sd["decoder.mask_norm.weight"][:21]
    sd["decoder.mask_norm.bias"] = sd["decoder.mask_norm.bias"][:21]
    model = create(MASK, checkpoint=sd)
    assert model.num_classes == 21
    with torch.no_grad():
        assert model(_image(1, 3, 20, 30)).shape == (1, 21, 20, 30)


def test_wrong_decoder_checkpoint_names_the_keys(weights):
    with pytest.raises(CheckpointMismatchError) as err:
        create(MASK, checkpoint=weights[LINEAR])
    text = str(err.value)
    assert "decoder.head.weight" in text and "decoder.cls_emb" in text
    assert "Segmenter linear decoder (segmenter_vit_tiny_linear)" in text


# ---- numerics against the official forward ------------------------------------------------------


@pytest.mark.parametrize("variant", [LINEAR, MASK])
@pytest.mark.parametrize("size", [(37, 61), (64, 48), (1, 17)], ids=["37x61", "64x48", "1x17"])
def test_matches_official_forward_at_odd_sizes(weights, variant, size):
    sd = weights[variant]
    model = create(variant, checkpoint=sd)
    x = _image(2, 3, *size)
    with torch.no_grad():
        got, ref = model(x), segmenter_forward(x, sd)
    assert got.shape == ref.shape == (2, 150, *size)
    assert _close(got, ref)


def test_linear_matches_official_forward_at_512(shallow):
    """(Mask and I-Segmenter at 512²: test_segmenter_export.py, through ONNX Runtime.)"""
    variant = LINEAR
    sd = shallow[variant]
    x = _image(1, 3, 512, 512)
    with torch.no_grad():
        got, ref = create(variant, checkpoint=sd, n_layers=SHALLOW)(x), segmenter_forward(x, sd)
    assert got.shape == (1, 150, 512, 512)
    assert _close(got, ref)


def test_position_embedding_matters(weights):
    """A wrong embedding resize would show: zeroing the embedding changes the output a lot."""
    sd = dict(weights[MASK])
    x = _image(1, 3, 37, 61)
    flat = dict(sd, **{"encoder.pos_embed": torch.zeros_like(sd["encoder.pos_embed"])})
    with torch.no_grad():
        diff = (segmenter_forward(x, sd) - segmenter_forward(x, flat)).abs().max()
    assert diff > 0.1


def test_pos_embed_resize_token_count_reproduces_the_official_quirk():
    """Trained on 64² (4×4 grid): a 32×128 input has 2×8 = 16 tokens as well, so the official
    code adds the 4×4 embedding unresized; edgec resizes it by default ("grid")."""
    model = create(LINEAR, image_size=64)
    sd = {
        k: v + 0.3 * torch.randn_like(v) if "pos_embed" in k else v
        for k, v in model.state_dict().items()
    }
    x = _image(1, 3, 32, 128)
    by_grid = create(LINEAR, image_size=64, checkpoint=sd)
    by_count = create(LINEAR, image_size=64, checkpoint=sd, pos_embed_resize="token_count")
    with torch.no_grad():
        official = segmenter_forward(x, sd)
        resized = segmenter_forward(x, sd, resize_when="grid")
        assert _close(by_count(x), official)
        assert _close(by_grid(x), resized)
    assert (official - resized).abs().max() > 1e-2


# ---- I-Segmenter ------------------------------------------------------------------------------


def test_isegmenter_matches_its_statement(weights):
    sd = weights[MASK]
    model = create(ISEG, checkpoint=sd)
    x = _image(1, 3, 45, 70)
    with torch.no_grad():
        got, ref = model(x), segmenter_forward(x, sd, **ISEGMENTER)
    assert _close(got, ref)


def test_isegmenter_changes_are_options(shallow):
    """Each I-Segmenter change can be switched back; all three back give Segmenter exactly."""
    sd = shallow[MASK]
    x = _image(1, 3, 40, 56)
    back = {"activation": "gelu", "l2_normalize": True, "upsample": "bilinear"}

    def run(variant, **options):
        return create(variant, checkpoint=sd, n_layers=SHALLOW, **options)(x)

    with torch.no_grad():
        isegmenter = run(ISEG)
        assert torch.equal(run(ISEG, **back), run(MASK))
        for option, value in back.items():
            assert not torch.equal(run(ISEG, **{option: value}), isegmenter), option
        other_lambda = run(ISEG, gelu_lambda=1.5)
        statement = segmenter_forward(x, sd, **{**ISEGMENTER, "act": lambda t: shift_gelu(t, 1.5)})
    assert _close(other_lambda, statement)


def test_isegmenter_upsampling_is_nearest():
    model = create(ISEG)
    with torch.no_grad():
        y = model(_image(1, 3, 48, 64))
    blocks = y.reshape(1, 150, 3, 16, 4, 16)
    assert torch.equal(blocks, blocks[:, :, :, :1, :, :1].expand_as(blocks))


def test_lambda_shift_gelu():
    x = torch.linspace(-8, 8, 1001)
    y = LambdaShiftGELU()(x)
    assert torch.allclose(y, shift_gelu(x))
    assert (y - torch.nn.functional.gelu(x)).abs().max() < 0.03  # the sigmoid GELU it stands for
    assert "lambda=1.702" in repr(LambdaShiftGELU())


# ---- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(3, 64, 64), (1, 1, 64, 64), (1, 4, 64, 64), (1, 3, 0, 64)])
def test_bad_input_is_a_user_error(shape):
    model = create(LINEAR, n_layers=1)
    with pytest.raises(UserError) as err:
        model(torch.zeros(shape))
    assert err.value.exit_code == 2 and "(B, 3, H, W)" in err.value.message and err.value.hint


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("decoder", "conv"),
        ("upsample", "bicubic"),
        ("activation", "relu"),
        ("pos_embed_resize", "always"),
        ("gelu_lambda", 0.0),
        ("image_size", 500),
    ],
)
def test_bad_option_is_a_user_error(option, value):
    with pytest.raises(UserError) as err:
        create(MASK, **{option: value})
    assert option.split("_")[0] in str(err.value) and err.value.hint


def test_unknown_option_is_a_user_error():
    with pytest.raises(UserError, match="does not accept"):
        create(ISEG, attn_scale="head_dim")


# ---- registration ------------------------------------------------------------------------------


def test_registered_in_zoo_and_seeded():
    names = [e.name for e in zoo()]
    assert {LINEAR, MASK, ISEG} <= set(names)
    for variant, params in ((LINEAR, 5.91), (MASK, 6.91), (ISEG, 6.91)):
        entry = zoo_entry(variant)
        assert entry.family == "Segmenter" and entry.num_classes == 150
        assert entry.input_size == (3, 512, 512) and entry.mean == entry.std == (0.5, 0.5, 0.5)
        assert entry.reported_params_m == params and "rstrudel/segmenter" in entry.official_repo
    assert resolve_name("Segmenter-T-Mask") == MASK and resolve_name("I-Segmenter-T") == ISEG
    a, b = create(ISEG), create(ISEG)
    sa, sb = a.state_dict(), b.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert sa["decoder.mask_norm.weight"].std() > 0  # randomised, not all ones
    pre = preprocessing_for(a)
    assert pre["input_size"] == [3, 512, 512] and pre["mean"] == [0.5, 0.5, 0.5]
    assert preprocessing_for(create(LINEAR, image_size=64))["input_size"] == [3, 64, 64]
    assert create(LINEAR, num_classes=21).decoder.head.out_features == 21
