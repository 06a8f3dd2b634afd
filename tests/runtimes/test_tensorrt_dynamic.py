"""TensorRT optimisation profiles for symbolic dims beyond the batch, and EfficientTAM's graphs.

The profile rules are checked on hand-built graphs; then every EfficientTAM graph (64×64,
seeded init, dynamic prompt points / memory frames / object pointers) is emitted at fp16, one
graph of each kind also at fp32, the way a multi-graph compile calls a backend
(`emit(model, stage, name=…, precision=…, device=…)`, all graphs into one directory): each
must pass the TensorRT-RTX parse-and-build gate with its optimisation profile (a rejected
graph raises inside `emit`), and the emitted file must match PyTorch in ONNX Runtime at the
smallest and largest sizes of the profile.
"""

from __future__ import annotations

import json

import numpy as np
import onnx_ir as ir
import onnxruntime as ort
import pytest
from onnx import helper
from support.onnx_build import model, value_info, weight

from edgec.artifact import sha256_file
from edgec.device_profile import load_device
from edgec.errors import UserError
from edgec.exporters.efficienttam import torch_reference
from edgec.runtimes import tensorrt
from edgec.runtimes.compare import DEFAULT_BOUND, compare_outputs
from edgec.runtimes.tensorrt_sdk import find_sdk
from edgec.runtimes.tensorrt_shapes import RANGES_KEY, profile_shapes

needs_sdk = pytest.mark.skipif(
    find_sdk() is None,
    reason="neither tensorrt nor tensorrt_rtx imports (pip install tensorrt-rtx-cu13)",
)
NANO = load_device("jetson-orin-nano")
# Every graph at fp16 (the Jetson default); at fp32 one of each kind: the `_single` decoder
# and the T = 1 memory attention differ from their twins only in a branch (CI time).
KINDS = ("image_encoder", "prompt_mask_decoder", "memory_encoder", "memory_attention")
GRAPHS = {"fp32": KINDS, "fp16": (*KINDS, "prompt_mask_decoder_single", "memory_attention_1frame")}


def points_graph(ranges: dict | None = None) -> ir.Model:
    """pts (batch, num_points, 2) → MatMul(2×8) → ReduceMax over points → y (batch, 8)."""
    nodes = [
        helper.make_node("MatMul", ["pts", "w"], ["h"], name="embed"),
        helper.make_node("ReduceMax", ["h", "axes"], ["y"], name="pool", keepdims=0),
    ]
    axes = helper.make_tensor("axes", 7, [1], [1])
    graph = model(
        nodes,
        [value_info("pts", ["batch", "num_points", 2])],
        [value_info("y", ["batch", 8])],
        [weight("w", (2, 8)), axes],
    )
    if ranges is not None:
        graph.metadata_props[RANGES_KEY] = json.dumps(ranges)
    return graph


def test_recorded_ranges_make_the_profile_and_the_leading_dim_is_the_batch():
    shapes, dims = profile_shapes(points_graph({"num_points": [1, 3, 16]}), max_batch=4)
    assert shapes == {"pts": ((1, 1, 2), (1, 3, 2), (4, 16, 2))}
    assert dims["num_points"] == {
        "min": 1,
        "opt": 3,
        "max": 16,
        "from": f"model metadata {RANGES_KEY}",
    }
    assert dims["batch"]["from"].startswith("batch")


def test_overrides_win_over_recorded_ranges_and_the_batch_rule():
    graph = points_graph({"num_points": [1, 3, 16]})
    shapes, dims = profile_shapes(graph, 4, {"num_points": (2, 2, 5), "batch": (1, 2, 2)})
    assert shapes == {"pts": ((1, 2, 2), (2, 2, 2), (2, 5, 2))}
    assert dims["num_points"]["from"] == dims["batch"]["from"] == "dim_ranges override"


@pytest.mark.parametrize(
    ("ranges", "overrides", "message"),
    [
        (None, None, "symbolic dimension num_points .* no recorded range"),
        ({"num_points": [4, 2, 16]}, None, "'num_points' .* is \\[4, 2, 16\\]"),
        ({"num_points": [1, 2]}, None, "'num_points'"),
        (None, {"num_points": (1.5, 2, 3)}, "dim_ranges override"),
    ],
)
def test_missing_or_malformed_ranges_are_user_errors(ranges, overrides, message):
    with pytest.raises(UserError, match=message):
        profile_shapes(points_graph(ranges), 8, overrides)
    graph = points_graph()
    graph.metadata_props[RANGES_KEY] = "{not json"
    with pytest.raises(UserError, match="not JSON"):
        profile_shapes(graph, 8)


@needs_sdk
def test_dynamic_points_graph_gates_scripts_and_matches_at_every_corner(tmp_path):
    graph = points_graph({"num_points": [1, 3, 16]})
    art = tensorrt.emit(graph, tmp_path, name="pts", precision="fp16", device=NANO, max_batch=2)
    assert art.details["gate"]["passed"] is True
    assert art.details["optimization_profile"] == {"pts": [[1, 1, 2], [1, 3, 2], [2, 16, 2]]}
    assert art.details["fidelity_vs_given_graph"]["profile_corners_checked"] == 3
    script = (tmp_path / "build_pts.sh").read_text()
    assert "--minShapes=pts:1x1x2 --optShapes=pts:1x3x2 --maxShapes=pts:2x16x2" in script
    assert "# Dynamic num_points: 1..16, tuned for 3" in script
    assert ir.load(art.path).metadata_props[RANGES_KEY] == '{"num_points": [1, 3, 16]}'


# EfficientTAM ------------------------------------------------------------------------------


def expected_profile(spec) -> dict[str, list[list[int]]]:
    """min/opt/max shapes from the graph spec: the Dim bounds and the example inputs' sizes."""
    out = {}
    for name, axes in spec.dynamic.items():
        example = list(spec.inputs[name].shape)
        corners = [list(example), list(example), list(example)]
        for axis, (_, low, high) in axes.items():
            corners[0][axis], corners[2][axis] = low, high
        out[name] = corners
    return out


def feeds_at(spec, corner: int) -> dict[str, np.ndarray]:
    """The spec's example inputs with every dynamic dim at its min (0), example (1) or max (2)."""
    feeds = {name: t.numpy() for name, t in spec.inputs.items()}
    for name, axes in spec.dynamic.items():
        shape = list(feeds[name].shape)
        for axis, (_, low, high) in axes.items():
            shape[axis] = (low, None, high)[corner]
        feeds[name] = np.resize(feeds[name], shape)  # values repeated: tpos stay in 0..6
    return feeds


def assert_matches_pytorch(path, spec, precision: str) -> None:
    options = ort.SessionOptions()  # ORT 1.32's ORT_ENABLE_ALL segfaults on the fp16
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # 1frame graph
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    for corner in (0, 2) if spec.dynamic else (1,):
        feeds = feeds_at(spec, corner)
        reference = dict(zip(spec.outputs, torch_reference(spec, feeds), strict=True))
        actual = dict(zip(spec.outputs, session.run(list(spec.outputs), feeds), strict=True))
        if precision == "fp32":
            result = compare_outputs(reference, actual, DEFAULT_BOUND)
        else:  # cosine of a single number is only its sign: those are left out
            names = [k for k, v in reference.items() if v.size > 1]
            result = compare_outputs(
                {k: reference[k] for k in names},
                {k: actual[k] for k in names},
                None,
                min_cosine=0.99,
            )
        assert result.passed, (spec.name, corner, result.failures())


@needs_sdk
@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_every_efficienttam_graph_builds_with_its_profile(precision, efficienttam_graphs, tmp_path):
    written, profiles = {}, {}
    for name in GRAPHS[precision]:
        spec = efficienttam_graphs.specs[name]
        art = tensorrt.emit(
            efficienttam_graphs.get(name), tmp_path, name=name, precision=precision, device=NANO
        )
        details = art.details
        assert details["gate"]["passed"] is True and details["gate"]["stage"] == "build", name
        assert details["precision"]["realised"] == precision
        assert details["optimization_profile"] == expected_profile(spec), name
        assert details["fidelity_vs_given_graph"]["passed"]
        script = (tmp_path / f"build_{name}.sh").read_text()
        assert f"--onnx={name}.onnx --saveEngine={name}.plan" in script
        assert ("--minShapes=" in script) == bool(spec.dynamic)
        assert_matches_pytorch(art.path, spec, precision)
        assert {p.name for p in art.files} >= {f"{name}.onnx", f"build_{name}.sh"}
        written.update({p: sha256_file(p) for p in art.files})
        profiles[name] = art.record()["optimization_profile"]
    # One directory holds every graph's files, none overwritten by a later graph's.
    assert all(sha256_file(path) == sha for path, sha in written.items())
    attention = profiles["memory_attention"]["memory_features"]
    assert attention == [[2, 64, 4, 4], [3, 64, 4, 4], [7, 64, 4, 4]]
