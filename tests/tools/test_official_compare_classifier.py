"""tools/official_compare/classifier_compare.py (EfficientViT-M, SHViT, LowFormer): the parts
that need no official code — the registry guard, BatchNorm statistics, cosine, photos, ONNX
runs and the scripts' argument errors. The comparisons themselves import the official
repositories and are run by hand (docs/models.md, "Official-layout checkpoints…")."""

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest
import timm
import torch

TOOLS = Path(__file__).resolve().parents[2] / "tools" / "official_compare"
sys.path.insert(0, str(TOOLS))

import classifier_compare as cc  # noqa: E402


def test_inert_timm_registry_keeps_timms_constructors():
    import timm.models._registry as registry

    before = registry._model_entrypoints["shvit_s1"]
    with cc.inert_timm_registry():
        from timm.models.registry import register_model

        @register_model
        def shvit_s1():  # the official build.py's name
            return None

    assert registry._model_entrypoints["shvit_s1"] is before
    assert timm.models.registry.register_model is registry.register_model


def test_measure_bn_statistics_normalises_the_calibration_batch():
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.ReLU(), torch.nn.BatchNorm2d(8)
    )
    x = 3 + 5 * torch.randn(6, 3, 10, 10)
    cc.measure_bn_statistics(model, x)
    assert not model.training
    for bn in (model[1], model[3]):
        assert bn.momentum == 0.1 and int(bn.num_batches_tracked) == 1
    with torch.no_grad():
        y = model[1](model[0](x))  # weight 1, bias 0: the batch comes out standardised
    assert y.mean((0, 2, 3)).abs().max() < 1e-5
    assert (y.var((0, 2, 3)) - 1).abs().max() < 0.01  # unbiased vs biased variance


def test_min_cosine_is_the_worst_sample():
    a = torch.randn(3, 10)
    b = a.clone()
    assert cc.min_cosine(a, b) == pytest.approx(1.0)
    b[1] = -b[1]
    assert cc.min_cosine(a, b) == pytest.approx(-1.0)


def test_photos_are_prepared_at_each_variants_size():
    images = cc.read_images(cc.IMAGES, limit=2)
    assert cc.IMAGES.exists()
    x = cc.photos("shvit_s4", images)
    assert x.shape == (2, 3, 256, 256) and x.dtype == torch.float32
    assert cc.photos("efficientvit_m0", images).shape == (2, 3, 224, 224)
    assert 1.5 < float(x.abs().max()) < 3  # ImageNet-normalised pixels


@pytest.mark.parametrize("dynamic", [False, True])
def test_run_onnx_matches_torch_for_fixed_and_free_batch(tmp_path, dynamic):
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 5)).eval()
    x = torch.randn(4, 3, 2, 2)
    path = tmp_path / "m.onnx"
    axes = {"x": {0: "n"}, "y": {0: "n"}} if dynamic else None
    torch.onnx.export(
        model,
        (x[:1],),
        path,
        input_names=["x"],
        output_names=["y"],
        dynamic_axes=axes,
        dynamo=False,
    )
    got = cc.run_onnx(path, x, threads=1)
    np.testing.assert_allclose(got.numpy(), model(x).detach().numpy(), atol=1e-6)


@pytest.mark.parametrize("script", ["efficientvit_m", "shvit", "lowformer"])
def test_scripts_refuse_a_wrong_checkout(tmp_path, monkeypatch, script):
    family = importlib.import_module(script).FAMILY
    monkeypatch.setattr(sys, "argv", [script, "--official-repo", str(tmp_path)])
    with pytest.raises(SystemExit) as exc:
        cc.run(family)
    assert f"has no {family.inside}" in str(exc.value.code)


def test_scripts_refuse_an_unknown_variant(tmp_path, monkeypatch):
    import shvit

    argv = ["shvit", "--official-repo", str(tmp_path), "--variants", "shvit_s9"]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exc:
        cc.run(shvit.FAMILY)
    assert "unknown variant(s) ['shvit_s9']" in str(exc.value.code)
