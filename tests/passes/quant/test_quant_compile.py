"""`edgec compile --precision fp16|w8a8|w4a8` end to end on a small ONNX model, and its errors."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnx_ir as ir
import onnxruntime as ort
import pytest

from edgec.cli import main
from edgec.device_profile import host_facts
from edgec.passes.quant.ort_slow_int8 import REASON
from edgec.sample_choice import spread

# ORT on x86: the 3-channel 3×3 conv1 runs float (quant::ort_slow_int8) unless the CPU has VNNI
X86 = host_facts()["machine"] == "x86_64"
STEM_FLOAT = X86 and not {"avx512_vnni", "avx_vnni"} & set(host_facts()["isa"])


@pytest.fixture
def onnx_model(tmp_path, make_net):
    path = tmp_path / "net.onnx"
    ir.save(make_net(channels=3, size=16), path)
    calib = tmp_path / "calib.npy"
    np.save(calib, np.random.default_rng(0).standard_normal((8, 3, 16, 16)).astype(np.float32))
    return path, calib


def _compile(tmp_path, capsys, path, *args):
    out = tmp_path / "out"
    code = main(["compile", str(path), "--out", str(out), "--no-measure", "-q", *args])
    return code, out, capsys.readouterr().err


def test_w4a8_compiles_verifies_and_records_each_layer(tmp_path, capsys, onnx_model):
    path, calib = onnx_model
    code, out, err = _compile(tmp_path, capsys, path, "--precision", "w4a8", "--calib", str(calib))
    assert code == 0, err
    manifest = json.loads((out / "manifest.json").read_text())
    q = manifest["quantization"]
    layers = {layer["name"]: layer for layer in q["layers"]}
    assert layers["conv2"]["precision"] == "w4a8" and layers["conv2"]["kernel"] == "QLinearConv"
    assert layers["conv2"]["block_size"] is None  # widened for ORT: stored 4, computed 8
    assert (layers["conv2"]["weight_bits_stored"], layers["conv2"]["weight_bits_computed"]) == (
        4,
        8,
    )
    if STEM_FLOAT:
        assert layers["conv1"]["precision"] == "w8a32" and layers["conv1"]["fallback"] == REASON
    else:
        assert layers["conv1"]["weight_bits_stored"] == 8  # 3 input channels: no 32-block
    assert q["fidelity_vs_float"]["samples"] == 8 and q["fidelity_vs_float"]["cosine_mean"] > 0.98
    final = manifest["fidelity"]["final_vs_pytorch"]
    assert final["bound"] is None and final["min_cosine"] and final["passed"]
    # without --verify-images the checks run on the calibration data, not synthetic images
    assert manifest["verification_inputs"] == {
        "source": str(calib),
        "count": 4,
        "kind": "calibration images",
    }
    assert f"On 4 input(s), calibration images: {calib}." in (out / "report.md").read_text()
    ids = [p["id"] for p in manifest["passes"]]
    host_only = {"quant::ort_slow_int8", "quant::ort_float_attention"}
    assert host_only <= set(ids) if X86 else not host_only & set(ids)
    assert [i for i in ids if i not in host_only][-10:] == [
        "cleanup::infer_shapes", "quant::calibrate", "quant::weights", "quant::activations",
        "quant::ort_unsigned_activations", "quant::ort_gemm_split_bias", "quant::ort_widen_int4",
        "quant::ort_idle_pairs", "quant::ort_fold_weights", "quant::ort_index_tables",
    ]  # fmt: skip
    artifact = out / manifest["artifact"]["path"]
    proto = onnx.load(str(artifact))
    assert any(t.data_type == onnx.TensorProto.INT4 for t in proto.graph.initializer)
    assert not any(n.metadata_props for n in proto.graph.node)  # edgec's marks stay inside
    sess = ort.InferenceSession(str(artifact), providers=["CPUExecutionProvider"])
    assert sess.run(None, {"x": np.load(calib)[:1]})[0].shape == (1, 10)
    assert "Layers by precision" in (out / "report.md").read_text()


@pytest.mark.parametrize("precision", ["w8a8", "fp16"])
def test_w8a8_and_fp16_compile(tmp_path, capsys, onnx_model, precision):
    path, calib = onnx_model
    code, out, err = _compile(
        tmp_path, capsys, path, "--precision", precision, "--calib", str(calib)
    )
    assert code == 0, err
    q = json.loads((out / "manifest.json").read_text())["quantization"]
    if precision == "w8a8":
        # the head's output feeds the Softmax (kept float): QGemm with a float output
        assert q["summary"] == ({"w8a32": 1, "w8a8": 2} if STEM_FLOAT else {"w8a8": 3})
        kernels = {layer["kernel"] for layer in q["layers"] if layer["precision"] == "w8a8"}
        assert kernels == {"QLinearConv", "com.microsoft::QGemm"}
    else:
        assert isinstance(q["float16_fallbacks"], dict)
    assert q["fidelity_vs_float"]["cosine_mean"] > 0.99


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--precision", "w8a8"], "needs calibration data"),
        (["--precision", "w4a8", "--calib", "missing.npy"], "does not exist"),
        (["--precision", "fp32", "--accuracy-budget", "1"], "--accuracy-budget"),
        (["--precision", "w8a8", "--calib", "x.npy", "--calib-count", "0"], "at least 1"),
    ],
)
def test_quant_user_errors_exit_2_and_leave_nothing(tmp_path, capsys, onnx_model, args, message):
    path, _ = onnx_model
    code, out, err = _compile(tmp_path, capsys, path, *args)
    assert code == 2 and message in err and not out.exists()


def test_eval_reports_accuracy_agreement_and_cosine(tmp_path, capsys, onnx_model):
    path, calib = onnx_model
    fp32 = tmp_path / "fp32"
    assert main(["compile", str(path), "--out", str(fp32), "--no-measure", "-q"]) == 0
    code, w8, err = _compile(tmp_path, capsys, path, "--precision", "w8a8", "--calib", str(calib))
    assert code == 0, err
    x = np.load(calib)
    reference = ort.InferenceSession(str(path)).run(None, {"x": x[:1]})[0]
    labels = np.array([int(reference.argmax())] + [0] * (len(x) - 1))
    data = tmp_path / "data.npz"
    np.savez(data, inputs=x, labels=labels)
    capsys.readouterr()
    argv = ["eval", str(w8), "--data", str(data), "--reference", str(fp32), "--json"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["samples"] == len(x) and result["cosine_mean"] > 0.99
    assert result["top1_agreement"] >= 0.75 and 0 <= result["top1"] <= 1
    assert result["reference_top1"] == float(np.mean(labels == _argmax(fp32, x)))
    imagenet_style = tmp_path / "imagenet_style.npz"  # shared/data/imagenet_samples.npz's key
    np.savez(imagenet_style, inputs=x, class_index=labels)
    capsys.readouterr()
    argv = ["eval", str(w8), "--data", str(imagenet_style), "--json"]
    assert main(argv) == 0 and json.loads(capsys.readouterr().out)["top1"] == result["top1"]
    capsys.readouterr()  # --count takes samples spread over the file, with their own labels
    assert main(["eval", str(fp32), "--data", str(data), "--count", "2", "--json"]) == 0
    capped, chosen = json.loads(capsys.readouterr().out), spread(len(x), 2)
    assert capped["samples"] == 2 and chosen.tolist() != [0, 1]
    assert capped["top1"] == float(np.mean(labels[chosen] == _argmax(fp32, x[chosen])))
    assert main(["eval", str(tmp_path), "--data", str(data)]) == 2  # not an output directory


def _argmax(directory, x):
    artifact = next(directory.glob("*.onnx"))
    sess = ort.InferenceSession(str(artifact))
    return np.array([sess.run(None, {"x": s[None]})[0].argmax() for s in x])


def test_two_w4a8_compiles_give_the_same_bytes(tmp_path, capsys, onnx_model):
    path, calib = onnx_model
    args = ["--precision", "w4a8", "--calib", str(calib)]
    blobs = []
    for name in ("a", "b"):
        out = tmp_path / name
        assert main(["compile", str(path), "--out", str(out), "--no-measure", "-q", *args]) == 0
        blobs.append(next(out.glob("*.onnx")).read_bytes())
    assert blobs[0] == blobs[1]


def test_accuracy_budget_prints_and_records_sensitivity(tmp_path, capsys, onnx_model):
    path, calib = onnx_model
    out = tmp_path / "out"
    argv = ["compile", str(path), "--out", str(out), "--no-measure", "-q", "--precision", "w4a8"]
    assert main([*argv, "--calib", str(calib), "--accuracy-budget", "0"]) == 0
    printed = capsys.readouterr().out
    assert "layers:" in printed and "sensitivity" in printed
    manifest = json.loads((out / "manifest.json").read_text())
    layers = manifest["quantization"]["layers"]
    assert all(layer["sensitivity"] is not None for layer in layers)
    assert "quant::sensitivity" in [p["id"] for p in manifest["passes"]]
