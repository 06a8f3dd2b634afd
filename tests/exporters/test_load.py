"""`load_model`: every input form (name, checkpoint, pickled module, TorchScript, .pt2, ONNX)
and every error path, with file kinds detected by content."""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import pytest
import torch

from edgec.errors import CheckpointMismatchError, ModelLoadError, UserError
from edgec.exporters.load import KINDS, LoadedModel, load_model
from edgec.models import RANDOM_INIT_NOTE, create, create_with_info

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
CIFAR_CKPT = SHARED / "models" / "efficientvit_m0_cifar10.pt"


class Tiny(torch.nn.Module):
    """A small image classifier for the whole-model file forms."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, stride=2)
        self.fc = torch.nn.Linear(4, 5)

    def forward(self, x):
        return self.fc(self.conv(x).mean((2, 3)))


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return Tiny().eval()


@pytest.fixture(scope="module")
def m0_state_dict():
    model = create("efficientvit_m0", num_classes=10)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    return model.state_dict()


X = torch.randn(1, 3, 16, 16)


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


# ---- names -------------------------------------------------------------------------------------


def test_zoo_name_is_seeded_init():
    loaded = load_model("EfficientViT-M0")
    assert isinstance(loaded, LoadedModel) and loaded.kind == "zoo" and loaded.kind in KINDS
    assert loaded.name == "efficientvit_m0" and loaded.input_shape == (3, 224, 224)
    assert loaded.num_classes == 1000 and loaded.source_sha256 is None and loaded.onnx_path is None
    assert RANDOM_INIT_NOTE in loaded.notes
    assert loaded.preprocessing["layout"] == "NCHW" and not loaded.module.training
    again = load_model("efficientvit_m0", num_classes=3)
    assert again.num_classes == 3


def test_timm_name_and_config():
    loaded = load_model("test_vit", num_classes=4)
    assert loaded.kind == "timm" and loaded.num_classes == 4
    assert loaded.module(torch.randn(1, *loaded.input_shape)).shape == (1, 4)


def test_unknown_name_suggests_close_names():
    with pytest.raises(UserError) as err:
        load_model("shvit_s5")
    assert "shvit_s" in err.value.hint and err.value.exit_code == 2


def test_name_with_arch_is_refused():
    with pytest.raises(UserError, match="--arch"):
        load_model("efficientvit_m0", arch="shvit_s1")


# ---- checkpoints -------------------------------------------------------------------------------


def test_checkpoint_needs_arch(tmp_path, m0_state_dict):
    path = tmp_path / "weights.pt"
    torch.save(m0_state_dict, path)
    with pytest.raises(ModelLoadError) as err:
        load_model(str(path))
    assert "--arch" in err.value.hint and "EfficientViT-M" in err.value.message


def test_checkpoint_with_arch(tmp_path, m0_state_dict):
    path = tmp_path / "weights.pth"
    torch.save({"model": m0_state_dict, "epoch": 7}, path)
    loaded = load_model(str(path), arch="efficientvit_m0")
    assert loaded.kind == "checkpoint" and loaded.num_classes == 10
    assert loaded.source_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert any("num_classes=10 inferred" in n for n in loaded.notes)
    assert torch.equal(
        loaded.module.state_dict()["head.linear.bias"], m0_state_dict["head.linear.bias"]
    )


def test_checkpoint_suffix_is_not_trusted(tmp_path, m0_state_dict):
    path = tmp_path / "really_a_state_dict.onnx"
    torch.save(m0_state_dict, path)
    assert load_model(str(path), arch="efficientvit_m0").kind == "checkpoint"


def test_legacy_and_safetensors_checkpoints(tmp_path, m0_state_dict):
    from safetensors.torch import save_file

    legacy = tmp_path / "legacy.bin"
    torch.save(m0_state_dict, legacy, _use_new_zipfile_serialization=False)
    assert load_model(str(legacy), arch="efficientvit_m0").num_classes == 10
    st = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in m0_state_dict.items()}, str(st))
    loaded = load_model(str(st), arch="efficientvit_m0")
    assert loaded.kind == "checkpoint" and any("safetensors" in n for n in loaded.notes)


@pytest.mark.skipif(not CIFAR_CKPT.exists(), reason="../shared/models not present")
def test_official_layout_file():
    loaded = load_model(str(CIFAR_CKPT), arch="efficientvit_m0")
    assert loaded.num_classes == 10 and loaded.name == "efficientvit_m0_cifar10"
    assert any("official EfficientViT-M layout" in n for n in loaded.notes)


def test_wrong_keys_and_shapes_are_named(tmp_path, m0_state_dict):
    sd = dict(m0_state_dict)
    del sd["stages.0.blocks.0.dw0.m.bn.bias"]
    sd["stages.9.bogus"] = torch.zeros(1)
    sd["patch_embed.conv1.conv.weight"] = torch.zeros(8, 3, 5, 5)
    path = tmp_path / "bad.pt"
    torch.save(sd, path)
    with pytest.raises(CheckpointMismatchError) as err:
        load_model(str(path), arch="efficientvit_m0")
    text = str(err.value)
    for key in (
        "stages.0.blocks.0.dw0.m.bn.bias",
        "stages.9.bogus",
        "patch_embed.conv1.conv.weight",
    ):
        assert key in text
    assert err.value.exit_code == 2
    with pytest.raises(CheckpointMismatchError, match="does not match architecture 'shvit_s1'"):
        load_model(str(path), arch="shvit_s1")


def test_unknown_arch_for_checkpoint(tmp_path, m0_state_dict):
    path = tmp_path / "w.pt"
    torch.save(m0_state_dict, path)
    with pytest.raises(UserError) as err:
        load_model(str(path), arch="efficientvit_m9")
    assert "efficientvit_m" in err.value.hint


def test_dict_that_is_no_state_dict(tmp_path):
    path = tmp_path / "meta.pt"
    torch.save({"epoch": 3, "lr": 0.1}, path)
    with pytest.raises(ModelLoadError, match="not a state_dict"):
        load_model(str(path), arch="efficientvit_m0")


# ---- pickled modules ---------------------------------------------------------------------------


def test_pickled_module_needs_opt_in(tmp_path, tiny):
    path = tmp_path / "whole.pt"
    torch.save(tiny, path)
    with pytest.raises(ModelLoadError) as err:
        load_model(str(path))
    assert "--allow-pickle" in err.value.hint and "runs code" in err.value.hint
    assert "Tiny" in err.value.message
    loaded = load_model(str(path), allow_pickle=True)
    assert loaded.kind == "pickled_module" and loaded.input_shape is None
    torch.testing.assert_close(loaded.module(X), tiny(X))
    assert loaded.source_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_pickled_checkpoint_with_args_needs_opt_in(tmp_path, m0_state_dict):
    import argparse

    path = tmp_path / "train_ckpt.pth"
    torch.save({"model": m0_state_dict, "args": argparse.Namespace(lr=0.1)}, path)
    with pytest.raises(ModelLoadError, match=r"argparse\.Namespace"):
        load_model(str(path), arch="efficientvit_m0")
    loaded = load_model(str(path), arch="efficientvit_m0", allow_pickle=True)
    assert loaded.kind == "checkpoint" and loaded.num_classes == 10


def test_pickled_timm_module_keeps_its_config(tmp_path):
    path = tmp_path / "m0_whole.pt"
    torch.save(create("efficientvit_m0", num_classes=6), path)
    loaded = load_model(str(path), allow_pickle=True)
    assert loaded.kind == "pickled_module" and loaded.num_classes == 6
    assert loaded.input_shape == (3, 224, 224)
    model, info = create_with_info("efficientvit_m0", checkpoint=path, allow_pickle=True)
    assert model.num_classes == 6 and any("whole EfficientVitMsra" in n for n in info.notes)


# ---- whole-model formats -----------------------------------------------------------------------


def test_torchscript(tmp_path, tiny):
    path = tmp_path / "scripted.pth"  # suffix says checkpoint, content says TorchScript
    _quiet(torch.jit.save, _quiet(torch.jit.trace, tiny, X), str(path))
    loaded = load_model(str(path))
    assert loaded.kind == "torchscript" and loaded.input_shape is None
    torch.testing.assert_close(loaded.module(X), tiny(X))
    assert any("ImageNet defaults" in n for n in loaded.notes)
    with_arch = load_model(str(path), arch="shvit_s4")
    assert with_arch.input_shape == (3, 256, 256)
    with pytest.raises(ModelLoadError, match="whole model"):
        create("efficientvit_m0", checkpoint=path)


def test_torch_export_pt2(tmp_path, tiny):
    path = tmp_path / "prog.pt2"
    torch.export.save(torch.export.export(tiny, (X,)), str(path))
    loaded = load_model(str(path))
    assert loaded.kind == "torch_export" and loaded.input_shape == (3, 16, 16)
    assert loaded.num_classes == 5 and loaded.preprocessing["input_size"] == [3, 16, 16]
    torch.testing.assert_close(loaded.module(X), tiny(X))


def test_onnx(tmp_path, tiny):
    path = tmp_path / "tiny.onnx"
    _quiet(torch.onnx.export, tiny, (X,), str(path), dynamo=False, input_names=["x"])
    loaded = load_model(str(path))
    assert loaded.kind == "onnx" and loaded.module is None and loaded.onnx_path == path
    assert loaded.input_shape == (3, 16, 16) and loaded.num_classes == 5
    assert loaded.source_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    with pytest.raises(ModelLoadError, match="not a valid ONNX"):
        load_model(str(broken))


def test_input_size_sets_the_export_size(tmp_path, tiny):
    loaded = load_model("efficientvit_m0", input_size=[3, 160, 192])
    assert loaded.input_shape == (3, 160, 192)
    assert loaded.preprocessing["input_size"] == [3, 160, 192]
    assert any("--input-size 3×160×192" in note for note in loaded.notes)
    with pytest.raises(UserError, match="does not fit efficientvit_m0"):
        load_model("efficientvit_m0", input_size=(4, 32, 32, 32))
    with pytest.raises(UserError, match="is not C,H,W"):
        load_model("efficientvit_m0", input_size=(3, 0, 32))
    path = tmp_path / "tiny.onnx"
    _quiet(torch.onnx.export, tiny, (X,), str(path), dynamo=False, input_names=["x"])
    assert load_model(str(path), input_size=(3, 16, 16)).input_shape == (3, 16, 16)
    with pytest.raises(UserError, match="keeps its exported size"):
        load_model(str(path), input_size=(3, 32, 32))


# ---- bad paths ---------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model(str(tmp_path / "nope.pt"))
    with pytest.raises(ModelLoadError) as err:
        load_model("shvit_s1.pth")
    assert "without a path" in err.value.hint


def test_directory(tmp_path):
    with pytest.raises(ModelLoadError, match="is a directory"):
        load_model(str(tmp_path))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"this is not a model at all", "not a model file"),
        (b"PK\x03\x04" + b"\0" * 64, "damaged"),
    ],
)
def test_empty_and_corrupt_files(tmp_path, content, message):
    path = tmp_path / "model.pt"
    path.write_bytes(content)
    with pytest.raises(ModelLoadError, match=message) as err:
        load_model(str(path), arch="efficientvit_m0")
    assert err.value.hint


def test_truncated_checkpoint(tmp_path, tiny):
    path = tmp_path / "cut.pt"
    torch.save(tiny.state_dict(), path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ModelLoadError) as err:
        load_model(str(path), arch="efficientvit_m0")
    assert "re-download or re-save" in err.value.hint
