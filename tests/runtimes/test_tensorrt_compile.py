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
    assert main([*args, "-q"]) == 0
    text = capsys.readouterr().out
    assert "note: no engine was built here" in text and "build_engine.sh" in text
    manifest = json.loads((out / "manifest.json").read_text())
    artifact = manifest["artifact"]
    assert manifest["target"]["name"] == "jetson-orin-nano" and artifact["runtime"] == "tensorrt"
    assert artifact["gate"]["passed"] is True and artifact["engine"]["built"] is False
    assert manifest["precision"] == {"requested": "fp32", "realised": "fp32"}
    assert {f["path"] for f in manifest["files"]} >= {"net.onnx", "build_engine.sh"}
    assert "no engine was built here" in (out / "report.md").read_text()
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    session = ort.InferenceSession(str(out / "net.onnx"), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected = module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(session.run(None, {"input": x})[0], expected, atol=1e-4)
