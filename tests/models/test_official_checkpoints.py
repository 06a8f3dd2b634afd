"""Official-layout checkpoints (EfficientViT-M, SHViT, LowFormer) load strictly into timm models
and compute the official forward.

Checkpoints are built from the key/shape manifests in ../shared/reference/checkpoints (random
tensors of the manifest shapes). `official_forward_*` below are small functional re-statements
of the official forwards written from reference/models-a.md §1.2 / §2.2 (not the official code):
running them on the official-layout tensors and comparing with the timm model that loaded the
same checkpoint checks both the key remap and timm's port. The real CIFAR-10 EfficientViT-M0
checkpoint then checks accuracy end to end.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from support.official import (
    MANIFESTS,
    SHARED,
    efficientvit_block,
    levit_idxs,
    manifest,
    official_forward,
    official_state_dict,
    shvit_block,
)

from edgec.errors import CheckpointMismatchError, ModelLoadError
from edgec.models import create, create_with_info
from edgec.models.remap_efficientvit import bias_idxs

FAMILIES = ("efficientvit_m", "shvit_s", "lowformer_")
VARIANTS = sorted(p.stem for p in MANIFESTS.glob("*.json") if p.stem.startswith(FAMILIES))
needs_shared = pytest.mark.skipif(not MANIFESTS.is_dir(), reason="../shared not present")


# ---- tests -------------------------------------------------------------------------------------


@needs_shared
def test_every_released_variant_has_a_manifest():
    assert len(VARIANTS) == 17  # M0-M5, S1-S4, B0/B1/B1.5/B3/E1/E2/E3


@needs_shared
@pytest.mark.parametrize("variant", VARIANTS)
def test_official_layout_loads_strictly(variant):
    sd = official_state_dict(variant)
    model, info = create_with_info(variant, checkpoint=sd)
    assert info.checkpoint_layout == "official"
    assert info.num_classes == manifest(variant)["num_classes"] == model.num_classes
    assert not model.training
    # every official tensor arrived somewhere: the loaded values are the checkpoint's values
    loaded = {tuple(v.flatten()[:4].tolist()) for v in model.state_dict().values() if v.numel() > 3}
    floats = [v for k, v in sd.items() if v.is_floating_point() and v.numel() > 3]
    assert all(tuple(v.flatten()[:4].tolist()) in loaded for v in floats)


def test_bias_idxs_rule_matches_definition_and_timm():
    for r in (1, 4, 7):
        assert torch.equal(bias_idxs(r), levit_idxs(r))
    model = create("efficientvit_m0")
    tables = [b for n, b in model.named_buffers() if n.endswith("attention_bias_idxs")]
    assert len(tables) == 6
    assert all(torch.equal(t, bias_idxs(int(t.shape[0] ** 0.5))) for t in tables)


@needs_shared
@pytest.mark.parametrize(
    ("variant", "block", "size"),
    [
        ("efficientvit_m0", efficientvit_block, 224),
        ("efficientvit_m2", efficientvit_block, 224),  # heads 4,3,2 and kernels 7,5,3,3
        ("shvit_s1", shvit_block, 224),
        ("shvit_s4", shvit_block, 256),
    ],
)
def test_timm_port_computes_the_official_forward(variant, block, size):
    sd = official_state_dict(variant, seed=1)
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ref = official_forward(x, sd, block)
        out = create(variant, checkpoint=sd)(x)
    assert ref.abs().max() > 0.1 and ref.std() > 1e-3  # non-trivial logits
    torch.testing.assert_close(out, ref, rtol=0, atol=5e-5 * max(1.0, ref.abs().max().item()))


@needs_shared
@pytest.mark.parametrize("variant", ["efficientvit_m1", "shvit_s2", "lowformer_b0"])
def test_random_official_weights_give_deterministic_output(variant):
    sd = official_state_dict(variant, seed=3)
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        a = create(variant, checkpoint=sd)(x)
        b = create(variant, checkpoint=sd)(x)
        other = create(variant, checkpoint=official_state_dict(variant, seed=5))(x)
    assert torch.equal(a, b)
    assert a.std() > 1e-3 and not torch.allclose(a, other)


@needs_shared
def test_containers_and_lowformer_opseq_head():
    sd = official_state_dict("efficientvit_m0")
    for key in ("model", "state_dict", "model_ema"):
        _, info = create_with_info("efficientvit_m0", checkpoint={key: sd, "epoch": 3})
        assert any(f"'{key}'" in n for n in info.notes)
    lf = official_state_dict("lowformer_b0")  # ClsHeadTorchScript keeps its OpSequential as .opseq
    opseq = {k.replace("head.op_list.", "head.opseq.op_list."): v for k, v in lf.items()}
    assert any(k.startswith("head.opseq.op_list.") for k in opseq)
    model = create("lowformer_b0", checkpoint={"state_dict": opseq, "best_val": 0.7})
    assert torch.equal(model.classifier.weight, lf["head.op_list.3.linear.weight"])


@needs_shared
def test_two_dimensional_conv_weights_are_unsqueezed():
    sd = official_state_dict("efficientvit_m0")
    flat = {k: v[:, :, 0, 0] if v.ndim == 4 and v.shape[-1] == 1 else v for k, v in sd.items()}
    n = sum(1 for k in sd if flat[k].ndim != sd[k].ndim)
    assert n > 20
    model, info = create_with_info("efficientvit_m0", checkpoint=flat)
    assert any(f"{n} 2-D conv weights" in note for note in info.notes)
    w = sd["blocks1.0.ffn0.m.pw1.c.weight"]
    assert torch.equal(model.stages[0].blocks[0].ffn0.m.pw1.conv.weight, w)
    s1 = official_state_dict("shvit_s1")
    flat = {k: v[:, :, 0, 0] if k.endswith("qkv.c.weight") else v for k, v in s1.items()}
    create("shvit_s1", checkpoint=flat)


@needs_shared
def test_wrong_bias_idxs_are_refused():
    sd = official_state_dict("efficientvit_m0")
    key = "blocks2.3.mixer.m.attn.attention_bias_idxs"
    sd[key] = sd[key].flip(0)
    with pytest.raises(ModelLoadError, match=key):
        create("efficientvit_m0", checkpoint=sd)


@needs_shared
def test_missing_unexpected_and_misshaped_keys_are_named():
    sd = official_state_dict("shvit_s1")
    del sd["blocks2.3.mixer.m.qkv.bn.bias"]
    sd["blocks2.3.extra.weight"] = torch.zeros(3)
    sd["blocks3.1.conv3.c.weight"] = torch.zeros(320, 1280, 1, 2)
    with pytest.raises(CheckpointMismatchError) as err:
        create("shvit_s1", checkpoint=sd)
    e = err.value
    assert e.missing == ["stages.1.blocks.0.mixer.m.qkv.bn.bias"]
    assert e.unexpected == ["stages.1.blocks.0.extra.weight"]
    assert [k for k, *_ in e.mismatched] == ["stages.2.downsample.2.conv3.c.weight"]
    text = str(e)
    assert (
        "missing keys (1)" in text and "unexpected keys (1)" in text and "[320, 1280, 1, 2]" in text
    )


@needs_shared
def test_num_classes_inferred_given_or_refused():
    sd = official_state_dict("efficientvit_m0")
    sd["head.l.weight"], sd["head.l.bias"] = torch.randn(10, 192), torch.randn(10)
    model, info = create_with_info("efficientvit_m0", checkpoint=sd)
    assert model.num_classes == 10 and info.num_classes_source == "checkpoint"
    assert any("num_classes=10 inferred" in n for n in info.notes)
    assert create("efficientvit_m0", checkpoint=sd, num_classes=10).num_classes == 10
    with pytest.raises(CheckpointMismatchError) as err:
        create("efficientvit_m0", checkpoint=sd, num_classes=1000)
    assert "--num-classes 10" in err.value.hint


def test_timm_layout_round_trip():
    model = create("shvit_s1", num_classes=7)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    _, info = create_with_info("shvit_s1", checkpoint=model.state_dict())
    assert info.checkpoint_layout == "timm" and info.num_classes == 7


# ---- the real trained checkpoint ----------------------------------------------------------------

CIFAR_CKPT = SHARED / "models" / "efficientvit_m0_cifar10.pt"
CIFAR_DATA = SHARED / "data" / "cifar10_test.npz"
CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


def cifar_images(step: int) -> tuple[np.ndarray, np.ndarray]:
    """Every `step`-th CIFAR-10 test image (N,32,32,3 uint8 RGB) and its label."""
    from PIL import Image

    data = np.load(CIFAR_DATA)
    jpeg, off = data["jpeg"], data["offsets"]
    index = np.arange(0, len(off) - 1, step)
    images = np.stack(
        [
            np.asarray(Image.open(io.BytesIO(jpeg[off[i] : off[i + 1]].tobytes())).convert("RGB"))
            for i in index
        ]
    )
    return images, data["labels"][index]


def cifar_input(images: np.ndarray) -> torch.Tensor:
    """The checkpoint's preprocessing (data/README.md): bilinear 32→224, CIFAR mean/std."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    x = F.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False)
    mean, std = torch.tensor(CIFAR_MEAN), torch.tensor(CIFAR_STD)
    return (x - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)


@pytest.mark.slow
@pytest.mark.skipif(not CIFAR_CKPT.exists(), reason="../shared/models not present")
def test_real_cifar10_checkpoint_accuracy():
    model, info = create_with_info("efficientvit_m0", checkpoint=CIFAR_CKPT)
    assert info.num_classes == 10 and info.checkpoint_layout == "official"
    images, labels = cifar_images(step=10)  # 1000 images, 100 per class
    with torch.inference_mode():
        pred = torch.cat(
            [model(cifar_input(images[i : i + 125])).argmax(1) for i in range(0, 1000, 125)]
        )
    top1 = float((pred.numpy() == labels).mean()) * 100
    assert abs(top1 - 85.43) <= 2.0, f"top-1 {top1:.2f}% on 1000 CIFAR-10 test images"
