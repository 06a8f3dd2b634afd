"""ONNX Runtime: check, deterministic emit (.onnx, .optimized.onnx, .ort), load/run, profile."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgec.artifact import sha256_file
from edgec.errors import ModelLoadError, UnsupportedOpsError, UserError
from edgec.runtimes import ort
from edgec.runtimes.compare import compare_outputs


def _init(name: str, shape: tuple[int, ...], dtype=np.float32) -> onnx.TensorProto:
    rng = np.random.default_rng(sum(map(ord, name)))
    return numpy_helper.from_array((rng.standard_normal(shape) * 0.3).astype(dtype), name)


def _tiny_proto() -> onnx.ModelProto:
    """Conv → Relu → GlobalAveragePool → Flatten → MatMul → Add → Softmax, 1x3x8x8 → 1x4."""
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu", doc_string="File /home/me/x.py:3"),
        helper.make_node("GlobalAveragePool", ["r"], ["p"]),  # unnamed on purpose
        helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
        helper.make_node("MatMul", ["f", "wm"], ["m"], name="fc"),
        helper.make_node("Add", ["m", "bm"], ["a"], name="fc_bias"),
        helper.make_node("Softmax", ["a"], ["y"], name="softmax"),
    ]
    helper.set_metadata_props(nodes[0], {"pkg.torch.onnx.stack_trace": "/abs/path/model.py:12"})
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        [_init("w", (8, 3, 3, 3)), _init("b", (8,)), _init("wm", (8, 4)), _init("bm", (4,))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
    helper.set_model_props(model, {"edgec.preprocess": '{"mean": [0.5, 0.5, 0.5]}'})
    return onnx.shape_inference.infer_shapes(model)


@pytest.fixture
def tiny() -> ir.Model:
    return ir.from_proto(_tiny_proto())


@pytest.fixture
def x() -> dict[str, np.ndarray]:
    return {"x": np.random.default_rng(1).standard_normal((1, 3, 8, 8)).astype(np.float32)}


def test_available():
    ok, why = ort.available()
    assert ok and "onnxruntime" in why


def test_emit_is_deterministic_and_strips_node_metadata(tiny, tmp_path):
    first = ort.emit(tiny, tmp_path / "a", name="tiny")
    second = ort.emit(ir.from_proto(_tiny_proto()), tmp_path / "b", name="tiny")
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


def test_ort_and_optimized_files_load_and_match_the_onnx(tiny, tmp_path, x):
    art = ort.emit(tiny, tmp_path, name="tiny", ort_format=True, save_optimized=True)
    names = sorted(p.name for p in art.files)
    assert names == [
        "tiny.onnx",
        "tiny.optimized.onnx",
        "tiny.ort",
        "tiny.required_operators.config",
    ]
    assert art.details["optimized_onnx"]["byte_stable"] is True
    assert art.details["ort_format"]["byte_stable"] is False  # ORT 1.32: layout varies per run
    config = (tmp_path / "tiny.required_operators.config").read_text()
    assert str(tmp_path) not in config and "# - tiny.ort" in config and "Conv" in config
    reference = ort.load(art.path, optimization="disabled").run(x)
    for path in art.files:
        if path.suffix in (".onnx", ".ort"):
            result = compare_outputs(reference, ort.load(path).run(x))
            assert result.passed, (path.name, result.failures())
    again = ort.emit(tiny, tmp_path / "again", name="tiny", save_optimized=True)
    assert sha256_file(again.extra_files[0]) == sha256_file(tmp_path / "tiny.optimized.onnx")


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


def test_check_accepts_a_clean_model(tiny):
    assert ort.check(tiny) == {}
    ort.ensure_supported(tiny)


def _custom_and_double_model() -> ir.Model:
    nodes = [
        helper.make_node("Frobnicate", ["x"], ["t"], name="frob_1", domain="my.ops"),
        helper.make_node("Frobnicate", ["t"], ["u"], name="frob_2", domain="my.ops"),
        helper.make_node("Cast", ["u"], ["d"], name="to_double", to=TensorProto.DOUBLE),
        helper.make_node("Conv", ["d", "w"], ["y"], name="conv_f64"),
    ]
    graph = helper.make_graph(
        nodes,
        "bad",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, None)],
        [_init("w", (4, 3, 3, 3), np.float64)],
    )
    opsets = [helper.make_opsetid("", 18), helper.make_opsetid("my.ops", 1)]
    model = ir.from_proto(helper.make_model(graph, opset_imports=opsets, ir_version=10))
    model.graph.node(0).outputs[0].type = ir.TensorType(ir.DataType.FLOAT)
    model.graph.node(1).outputs[0].type = ir.TensorType(ir.DataType.FLOAT)
    model.graph.node(2).outputs[0].type = ir.TensorType(ir.DataType.DOUBLE)
    return model


def test_check_flags_every_unsupported_op_at_once():
    model = _custom_and_double_model()
    assert ort.check(model) == {
        "my.ops::Frobnicate": ["frob_1", "frob_2"],
        "Conv": ["conv_f64"],
    }
    with pytest.raises(UnsupportedOpsError) as err:
        ort.ensure_supported(model)
    text = str(err.value)
    assert "frob_1" in text and "conv_f64" in text and "tensor(double)" in text
    assert "custom domain" in text and err.value.exit_code == 2


def test_float16_runs_through_casts_and_is_reported():
    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "a"], ["y"], name="add_fp16")],
        "fp16",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT16, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT16, [2])],
    )
    model = ir.from_proto(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
    )
    assert ort.check(model) == {}
    assert ort.float16_fallbacks(model) == {"Add": ["add_fp16"]}


def test_profile_ops_gives_per_op_and_per_node_shares(tiny, tmp_path, x, monkeypatch):
    art = ort.emit(tiny, tmp_path / "out", name="tiny")
    monkeypatch.chdir(tmp_path)
    rows = ort.profile_ops(art.path, x, runs=5)
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no trace left in the cwd
    assert rows and sum(r["share"] for r in rows) == pytest.approx(1.0, abs=1e-4)
    assert [r["us_per_run"] for r in rows] == sorted((r["us_per_run"] for r in rows), reverse=True)
    for row in rows:
        assert row["us_per_run"] >= 0 and row["calls_per_run"] >= 1
        assert row["share"] == pytest.approx(sum(n["share"] for n in row["nodes"]), abs=1e-5)
        assert all(n["provider"] == "CPUExecutionProvider" for n in row["nodes"])
    op_types = {r["op_type"] for r in rows}
    assert "Softmax" in op_types and any("Conv" in op for op in op_types)  # Relu fused in
    unoptimized = ort.profile_ops(art.path, x, runs=2, optimization="disabled")
    names = {n["name"] for r in unoptimized for n in r["nodes"]}
    assert {"conv", "relu", "GlobalAveragePool_2", "fc", "softmax"} <= names


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
