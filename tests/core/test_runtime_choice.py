"""`--runtime`: a target compiled for one of its other runtimes (edgec.runtime_choice)."""

from __future__ import annotations

import json

import pytest
import torch

from edgec.cli import main
from edgec.device_profile import load_device
from edgec.errors import UserError
from edgec.runtime_choice import with_runtime


def test_the_targets_own_runtime_or_none_keeps_the_profile():
    s24 = load_device("galaxy-s24")
    assert with_runtime(s24, None) is s24 and with_runtime(s24, "tflite") is s24


def test_an_alternative_runtime_takes_the_precisions_of_the_unit_it_runs_on():
    s24 = load_device("android")
    on_cpu = with_runtime(s24, "onnxruntime")
    assert on_cpu.runtime == "onnxruntime" and on_cpu.name == "galaxy-s24"
    # the S24's CPU does fp32, fp16 and int8; its NPU (the tflite default) w8a8, w8a16, fp16
    assert on_cpu.precisions == ("fp32", "fp16", "w8a8")
    assert on_cpu.alt_runtimes == ("tflite", "qnn")
    assert s24.runtime == "tflite" and s24.precisions == ("w8a8", "w8a16", "fp16")  # unchanged


def test_a_runtime_the_device_does_not_run_names_the_choices():
    with pytest.raises(UserError, match="does not run 'coreml'") as error:
        with_runtime(load_device("galaxy-s24"), "coreml")
    assert "tflite, qnn, onnxruntime" in error.value.hint


def test_compile_for_android_on_onnx_runtime(capsys, tmp_path):
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=4), torch.nn.ReLU()).eval()
    path = tmp_path / "net.pt"
    torch.save(module, path)
    out = tmp_path / "o"
    args = ["compile", str(path), "--allow-pickle", "--target", "android", "--out", str(out)]
    assert main([*args, "--runtime", "onnxruntime", "-q"]) == 0
    capsys.readouterr()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["artifact"]["runtime"] == "onnxruntime" and (out / "net.onnx").exists()
    assert manifest["target"]["name"] == "galaxy-s24"
    assert manifest["target"]["runtime"] == "onnxruntime"
    assert manifest["precision"]["realised"] == "fp32"  # the CPU's first precision
    # not this machine, and the S24 publishes no CPU peak: no estimate, and it says why
    assert manifest["latency"]["method"] == "none"
    assert "cpu its runtime (onnxruntime)" in manifest["latency"]["reason"]
    # its row among the other devices is the profile as compiled, not the NPU default
    (row,) = [r for r in manifest["device_estimates"] if r["device"] == "galaxy-s24"]
    assert row["runtime"] == "onnxruntime" and row["precision"] == "fp32"
    assert row["estimate_ms"] is None and "cpu its runtime (onnxruntime)" in row["reason"]


def test_targets_lists_the_other_runtimes(capsys):
    assert main(["targets"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("galaxy"))
    assert "tflite" in row and "qnn, onnxruntime" in row
