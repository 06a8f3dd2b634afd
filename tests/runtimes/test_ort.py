"""ONNX Runtime, the runtime contract: available, deterministic emit, load/run, round trip."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnx
import onnx_ir as ir
import pytest

from edgec.artifact import sha256_file
from edgec.errors import ModelLoadError, UserError
from edgec.runtimes import ort
from edgec.runtimes.compare import compare_outputs


def test_available():
    ok, why = ort.available()
    assert ok and "onnxruntime" in why


def test_import_loads_neither_onnxruntime_nor_torch():
    code = (
        "import sys, edgec.runtimes.ort; "
        "print('torch' in sys.modules, 'onnxruntime' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_emit_is_deterministic_and_strips_node_metadata(tiny, make_tiny, tmp_path):
    first = ort.emit(tiny, tmp_path / "a", name="tiny")
    second = ort.emit(make_tiny(), tmp_path / "b", name="tiny")
    assert first.path.name == "tiny.onnx" and first.runtime == "onnxruntime"
    assert sha256_file(first.path) == sha256_file(second.path)
    written = onnx.load(first.path)
    assert all(not n.metadata_props and not n.doc_string for n in written.graph.node)
    assert {p.key: p.value for p in written.metadata_props} == {
        "edgec.preprocess": '{"mean": [0.5, 0.5, 0.5]}'
    }
    assert [n.name for n in written.graph.node][2] == "GlobalAveragePool_2"
    assert first.details["stripped"] == {"metadata_props": 1, "doc_strings": 1, "named_nodes": 1}
    assert tiny.graph.node(0).metadata_props  # the caller's model is left alone
    onnx.checker.check_model(written, full_check=True)


def test_emit_rejects_unknown_precision(tiny, tmp_path):
    with pytest.raises(UserError, match="precision"):
        ort.emit(tiny, tmp_path, name="tiny", precision="int3")


def test_runner_interface_and_feed_checks(tiny, tmp_path, x):
    art = ort.emit(tiny, tmp_path, name="tiny")
    with ort.load(art, threads=1) as runner:
        assert runner.input_names == ["x"] and runner.output_names == ["y"]
        assert runner.input_shapes == {"x": (1, 3, 8, 8)}
        out = runner.run(x)
        assert out["y"].shape == (1, 4) and np.isclose(out["y"].sum(), 1.0, atol=1e-5)
        assert runner.last_inference_ms is not None
        assert runner.example_feeds()["x"].shape == (1, 3, 8, 8)
        runner.bound(x)()
        used = ort.session_options_used(runner)
        assert used["intra_op_num_threads"] == 1 and used["inter_op_num_threads"] == 1
        assert used["providers"] == ["CPUExecutionProvider"]
        assert used["execution_mode"] == "sequential" and used["model_format"] == "onnx"
        assert used["graph_optimization_level"] == "ORT_ENABLE_ALL"
        with pytest.raises(UserError, match="missing"):
            runner.run({"image": x["x"]})
        with pytest.raises(UserError, match="float64"):
            runner.run({"x": x["x"].astype(np.float64)})
        with pytest.raises(UserError, match="shape"):
            runner.run({"x": x["x"][:, :2]})
    with pytest.raises(ModelLoadError):
        ort.load(tmp_path / "nope.onnx")
    with pytest.raises(UserError, match="optimization"):
        ort.load(art, optimization="max")


def test_tiny_torch_module_round_trip(tmp_path):
    torch = pytest.importorskip("torch")

    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
            self.norm = torch.nn.LayerNorm(8)
            self.head = torch.nn.Linear(8, 5)

        def forward(self, x):
            y = torch.nn.functional.gelu(self.conv(x)).mean((2, 3))
            return self.head(self.norm(y))

    torch.manual_seed(0)
    module = Block().eval()
    example = torch.randn(1, 3, 16, 16)
    exported = tmp_path / "block.onnx"
    torch.onnx.export(
        module, (example,), exported, dynamo=False, opset_version=18,
        input_names=["x"], output_names=["logits"],
    )  # fmt: skip
    with torch.no_grad():
        reference = {"logits": module(example).numpy()}
    model = ir.load(exported)
    assert ort.check(model) == {}
    art = ort.emit(model, tmp_path / "out", name="block")
    assert sha256_file(art.path) == sha256_file(ort.emit(model, tmp_path / "o2", name="block").path)
    result = compare_outputs(reference, ort.load(art).run({"x": example.numpy()}))
    assert result.passed, result.failures()
