"""`edgec compile … --target jetson-orin-nano` end to end through the CLI (a small model)."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
import torch

from edgec.cli import main
from edgec.runtimes.tensorrt_sdk import find_sdk

pytestmark = pytest.mark.skipif(
    find_sdk() is None,
    reason="neither tensorrt nor tensorrt_rtx imports (pip install tensorrt-rtx-cu13)",
)


def test_compile_for_jetson_writes_onnx_script_and_says_no_engine(capsys, tmp_path):
    module = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, stride=4), torch.nn.ReLU(), torch.nn.Flatten()
    ).eval()
    path = tmp_path / "net.pt"
    torch.save(module, path)
    out = tmp_path / "o"
    args = ["compile", str(path), "--allow-pickle", "--target", "jetson", "--out", str(out)]
    args += ["--precision", "fp32"]  # the Jetson default is fp16; fp32 compares exactly
    assert main([*args, "-q"]) == 0
    text = capsys.readouterr().out
    assert "note: no engine was built here" in text and "build_net.sh" in text
    manifest = json.loads((out / "manifest.json").read_text())
    artifact = manifest["artifact"]
    assert manifest["target"]["name"] == "jetson-orin-nano" and artifact["runtime"] == "tensorrt"
    assert artifact["gate"]["passed"] is True and artifact["engine"]["built"] is False
    # checked on the inputs the compile verified on, not on noise of its own
    check = artifact["fidelity_vs_given_graph"]
    assert check["passed"] and check["inputs"].startswith("the compile's example inputs")
    assert manifest["verification_inputs"]["kind"] == "synthetic"
    assert manifest["precision"] == {
        "requested": "fp32",
        "chosen_by": "--precision",
        "realised": "fp32",
    }
    assert {f["path"] for f in manifest["files"]} >= {"net.onnx", "build_net.sh"}
    assert "no engine was built here" in (out / "report.md").read_text()
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    session = ort.InferenceSession(str(out / "net.onnx"), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected = module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(session.run(None, {"input": x})[0], expected, atol=1e-4)


def test_device_profile_maps_layers_to_onnx_ops(capsys, tmp_path):
    """trtexec --exportProfile from the device → per-op rows like ONNX Runtime's profile."""
    import onnx_ir as ir

    module = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU()).eval()
    path = tmp_path / "net.pt"
    torch.save(module, path)
    out = tmp_path / "o"
    args = ["--allow-pickle", "--target", "jetson", "--no-measure", "--out", str(out), "-q"]
    assert main(["compile", str(path), *args]) == 0
    capsys.readouterr()
    names = {n.op_type: n.name for n in ir.load(out / "net.onnx").graph}
    fused = " + ".join(names[op] for op in ("Conv", "Relu") if op in names)
    layers = [
        {"count": 500},
        {"name": f"Reformatting CopyNode for Input Tensor 0 to {fused}", "averageMs": 0.01},
        {"name": fused, "timeMs": 40.0, "averageMs": 0.08, "medianMs": 0.08, "percentage": 88.9},
    ]
    profile = tmp_path / "net.plan.profile.json"
    profile.write_text(json.dumps(layers))
    assert main(["profile", str(out), "--tensorrt-profile", str(profile), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["iterations"] == 500 and result["layers"] == 2
    top = result["per_op"][0]
    assert top["op_type"].startswith("Conv") and abs(top["share"] - 0.08 / 0.09) < 1e-9
    assert result["per_op"][1]["op_type"] == "TensorRT Reformatting"
    assert main(["profile", str(out), "--tensorrt-profile", str(tmp_path / "none.json")]) == 2
    assert "trtexec --loadEngine" in capsys.readouterr().err
