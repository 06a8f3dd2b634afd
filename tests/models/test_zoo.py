"""The built-in catalogue, name resolution, seeded creation and preprocessing."""

from __future__ import annotations

import pytest
import torch

from edgec.errors import UserError
from edgec.models import (
    BUILTIN_NAMES,
    RANDOM_INIT_NOTE,
    create,
    create_with_info,
    preprocessing_for,
    resolve_name,
    zoo,
    zoo_entry,
)

EXPECTED = [
    *(f"efficientvit_m{i}" for i in range(6)),
    *(f"shvit_s{i}" for i in range(1, 5)),
    *(f"lowformer_{v}" for v in ("b0", "b1", "b15", "b3", "e1", "e2", "e3")),
    "segformer3d",  # implemented by edgec (not in timm)
    "segmenter_vit_tiny_linear",  # implemented by edgec (not in timm)
    "segmenter_vit_tiny_mask",
    "isegmenter_vit_tiny",
    *(f"efficienttam_{v}{s}" for v in ("ti", "s") for s in ("", "_1", "_2", "_512x512")),
]


def test_zoo_lists_every_builtin_in_order():
    entries = zoo()
    assert [e.name for e in entries] == EXPECTED == list(BUILTIN_NAMES)
    for e in entries:
        assert e.weights == RANDOM_INIT_NOTE
        assert e.official_repo.startswith("https://github.com/")
        if e.family == "SegFormer3D":  # volumetric: 4 MRI modalities in, 3 channels out
            assert e.timm_name == "" and e.num_classes == 3 and e.input_size == (4, 128, 128, 128)
            continue
        if e.family == "Segmenter":  # ADE20K segmentation: 150 classes at 512²
            assert e.timm_name == "" and e.num_classes == 150 and e.input_size == (3, 512, 512)
            continue
        if e.family == "EfficientTAM":  # promptable video segmentation, several graphs
            side = 512 if e.name.endswith("512x512") else 1024
            assert e.timm_name == "" and e.input_size == (3, side, side)
            continue
        assert e.timm_name == e.name
        assert e.num_classes == 1000
        assert len(e.input_size) == 3 and e.input_size[0] == 3


def test_zoo_entry_facts():
    m0, s4, b15, e3 = (
        zoo_entry(n) for n in ("efficientvit_m0", "shvit_s4", "lowformer_b15", "lowformer_e3")
    )
    assert m0.family == "EfficientViT-M" and m0.fixed_input_size
    assert (m0.reported_params_m, m0.reported_macs_m, m0.reported_top1) == (2.3, 79, 63.2)
    assert "microsoft/Cream" in m0.official_repo
    assert s4.input_size == (3, 256, 256) and not s4.fixed_input_size
    assert s4.reported_top1 == 79.4 and s4.display_name == "SHViT-S4"
    assert b15.display_name == "LowFormer-B1.5" and b15.crop_pct == 0.95
    assert b15.interpolation == "bicubic" and b15.reported_macs_m == 2573
    assert e3.reported_params_m is None and any("4866" in n for n in e3.notes)
    assert m0.mean == pytest.approx((0.485, 0.456, 0.406))
    pre = m0.preprocessing()
    assert pre["layout"] == "NCHW" and pre["color"] == "RGB" and pre["input_size"] == [3, 224, 224]


@pytest.mark.parametrize(
    ("spelling", "name"),
    [
        ("efficientvit_m0", "efficientvit_m0"),
        ("EfficientViT-M3", "efficientvit_m3"),
        ("SHViT-S4", "shvit_s4"),
        ("LowFormer-B1.5", "lowformer_b15"),
        ("lowformer-e2", "lowformer_e2"),
        ("resnet18", "resnet18"),
        ("resnet18.a1_in1k", "resnet18.a1_in1k"),
    ],
)
def test_resolve_name(spelling, name):
    assert resolve_name(spelling) == name


def test_unknown_name_suggests_close_names():
    with pytest.raises(UserError) as err:
        resolve_name("efficentvit_m0")
    assert "efficientvit_m0" in err.value.hint
    assert err.value.exit_code == 2


def test_create_is_seeded_deterministic_and_keeps_caller_rng():
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    a = create("efficientvit_m0")
    after = torch.rand(3)
    b = create("efficientvit_m0")
    assert torch.equal(after, expected_next), "create() must not consume the caller's RNG"
    sa, sb = a.state_dict(), b.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not a.training


def test_create_info_says_random_init():
    model, info = create_with_info("shvit_s1", num_classes=10)
    assert info.builtin and info.family == "SHViT"
    assert info.notes[0] == RANDOM_INIT_NOTE and info.weights == RANDOM_INIT_NOTE
    assert info.num_classes == 10 == model.num_classes and info.num_classes_source == "given"
    assert model.edgec_info is info
    assert model(torch.randn(1, 3, 224, 224)).shape == (1, 10)


def test_any_timm_model_works():
    model, info = create_with_info("test_vit")
    assert not info.builtin and info.family is None
    assert preprocessing_for(model)["input_size"][0] == 3


def test_preprocessing_for():
    pre = preprocessing_for(create("shvit_s4", num_classes=0))
    assert pre["input_size"] == [3, 256, 256]
    assert pre["layout"] == "NCHW" and pre["color"] == "RGB"
    assert pre["interpolation"] == "bicubic" and pre["crop_pct"] == 0.875
    assert set(pre) >= {"mean", "std", "input_size", "interpolation", "crop_pct"}
    assert preprocessing_for(torch.nn.Identity())["source"].startswith("ImageNet defaults")


def test_config_goes_to_timm_and_img_size_is_recorded():
    model = create("efficientvit_m0", img_size=256, num_classes=0)
    assert preprocessing_for(model)["input_size"] == [3, 256, 256]
    with pytest.raises(UserError, match="does not accept"):
        create("efficientvit_m0", no_such_option=1)
