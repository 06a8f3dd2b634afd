"""TensorRT emit: TensorRT-ready graphs for the zoo families and hand-built QDQ graphs.

Every graph emitted here passes the TensorRT-RTX parse-and-build gate inside `emit` (a
rejected graph raises), is re-read and re-run in ONNX Runtime, and its manifest claims
(precision, layer census, engine or not) are read against the written file.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import onnxruntime as ort
import pytest
from support.qdq_build import w4_mlp, w8a8_cnn

from edgec.artifact import sha256_file
from edgec.device_profile import load_device
from edgec.errors import UserError
from edgec.runtimes import tensorrt
from edgec.runtimes.tensorrt_qdq import census
from edgec.runtimes.tensorrt_sdk import find_sdk

pytestmark = pytest.mark.skipif(
    find_sdk() is None,
    reason="neither tensorrt nor tensorrt_rtx imports (pip install tensorrt-rtx-cu13)",
)
NANO = load_device("jetson-orin-nano")
ZOO = {
    "efficientvit_m0": (3, 224, 224),
    "shvit_s1": (3, 128, 128),
    "lowformer_b0": (3, 128, 128),
    "segmenter_vit_tiny_mask": (3, 64, 64),
    "isegmenter_vit_tiny": (3, 64, 64),
    "segformer3d": (4, 32, 32, 32),  # 5-D: Conv3d, trilinear Resize
}


@pytest.fixture(scope="module")
def zoo_graphs(zoo_exports):
    """The families' dynamo exports (seeded random init; shared by the test session)."""
    return {name: zoo_exports.get(name, shape) for name, shape in ZOO.items()}


def run(path, x: np.ndarray) -> np.ndarray:
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def assert_claims_match_graph(art, requested: str, realised: str) -> None:
    details = art.details
    assert details["gate"]["passed"] is True and details["gate"]["stage"] == "build"
    assert details["precision"] == details["precision"] | {
        "requested": requested,
        "realised": realised,
    }
    written = ir.load(art.path if art.path.suffix == ".onnx" else art.extra_files[0])
    assert census(written) == details["precision"]["layers"]
    floats = {v.dtype for v in written.graph.initializers.values() if v.dtype.is_floating_point()}
    assert floats <= ({ir.DataType.FLOAT} if realised == "fp32" else {ir.DataType.FLOAT16})
    assert (
        details["engine"]["built"] is False and "no engine was built here" in details["notices"][-1]
    )
    script = (art.path.parent / f"build_{art.path.stem}.sh").read_text()
    assert f"--onnx={art.path.name}" in script and "--stronglyTyped" in script


@pytest.mark.slow
@pytest.mark.parametrize("name", list(ZOO))
def test_zoo_fp16_graph_builds_and_matches_fp32(name, zoo_graphs, tmp_path):
    art = tensorrt.emit(zoo_graphs[name], tmp_path, name=name, precision="fp16", device=NANO)
    assert_claims_match_graph(art, "fp16", "fp16")
    assert art.details["fidelity_vs_given_graph"]["outputs"][0]["cosine"] > 0.999
    x = np.random.default_rng(3).standard_normal((1, *ZOO[name])).astype(np.float32)
    given = tmp_path / "given.onnx"
    ir.save(zoo_graphs[name], given)
    reference, half = run(given, x), run(art.path, x)
    assert (
        np.dot(reference.ravel(), half.ravel()) / (np.linalg.norm(reference) * np.linalg.norm(half))
        > 0.999
    )


@pytest.mark.slow
def test_zoo_fp32_graph_builds_and_is_exact(zoo_graphs, tmp_path):
    art = tensorrt.emit(zoo_graphs["efficientvit_m0"], tmp_path, name="m0", device=NANO)
    assert_claims_match_graph(art, "fp32", "fp32")
    assert art.details["fidelity_vs_given_graph"]["passed"]
    assert art.details["fidelity_vs_given_graph"]["bound"] == 5e-5


@pytest.mark.parametrize(
    ("make", "precision", "realised"),
    [
        (lambda: w8a8_cnn("ort"), "w8a8", "w8a8"),
        (lambda: w8a8_cnn("tensorrt"), "w8a8", "w8a8"),
        (lambda: w4_mlp(), "w4a16", "w4a16"),
        (lambda: w4_mlp("int8"), "w4a8", "w4a16"),
    ],
)
def test_quantized_graphs_emit_in_tensorrt_form(make, precision, realised, tmp_path):
    art = tensorrt.emit(make(), tmp_path, name="q", precision=precision, device=NANO)
    assert_claims_match_graph(art, precision, realised)
    assert art.precision == realised
    assert art.details["opset"] == 21
    layers = art.details["precision"]["layers"]
    assert layers[realised] >= 1 and layers["w4a8"] == 0
    if precision == "w4a8":
        assert "realised as W4A16" in art.details["notices"][0]


def test_emit_is_deterministic_and_leaves_the_input_alone(tmp_path):
    graph = w8a8_cnn("ort")
    before = ir.to_proto(graph).SerializeToString()
    first = tensorrt.emit(graph, tmp_path / "a", name="q", precision="w8a8", device=NANO)
    second = tensorrt.emit(w8a8_cnn("ort"), tmp_path / "b", name="q", precision="w8a8", device=NANO)
    assert ir.to_proto(graph).SerializeToString() == before
    for a, b in zip(first.files, second.files, strict=True):
        assert a.name == b.name and sha256_file(a) == sha256_file(b)


def test_dynamic_batch_gets_an_optimisation_profile(tmp_path):
    graph = w4_mlp()
    graph.graph.inputs[0].shape = ir.Shape(["batch", 16, 64])
    graph.graph.outputs[0].shape = ir.Shape(["batch", 16, 8])
    art = tensorrt.emit(graph, tmp_path, name="d", precision="w4a16", device=NANO, max_batch=4)
    assert art.details["optimization_profile"] == {"x": [[1, 16, 64], [1, 16, 64], [4, 16, 64]]}
    script = (tmp_path / "build_d.sh").read_text()
    assert "--minShapes=x:1x16x64 --optShapes=x:1x16x64 --maxShapes=x:4x16x64" in script
    assert "w4a16 needs trtexec --stronglyTyped" in script


def test_claims_the_graph_cannot_back_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="holds int4 weights"):
        tensorrt.emit(w4_mlp(), tmp_path, name="x", precision="w8a8", device=NANO)
    with pytest.raises(UserError, match="ort-format"):
        tensorrt.emit(w4_mlp(), tmp_path, name="x", precision="w4a16", ort_format=True)
