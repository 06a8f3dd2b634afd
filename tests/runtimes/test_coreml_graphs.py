"""EfficientTAM's graphs through `compile_graphs` to Core ML (the iPhone profile, fp16): one
saved and reloaded `.mlpackage` per graph, each checked by the MIL evaluator against ONNX
Runtime on the graph's example inputs, dynamic dims fixed at the example size and recorded,
latency from the cost model. The memory encoder and memory attention (an integer input, a
memory bank, RoPE's rank-6 pairs) keep it quick; `edgec compile efficienttam_ti_1 --target
iphone` runs the same code for every graph."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("coremltools", reason="coremltools is not installed")

from edgec.compile_graphs import GraphCompile, compile_graphs, graph_specs
from edgec.config import CompileConfig
from edgec.device_profile import load_device
from edgec.progress import Progress
from edgec.runtimes import backend_for

GRAPHS = ("memory_encoder", "memory_attention")


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    import edgec.passes  # noqa: F401
    from edgec.models import create
    from edgec.pass_manager import run_passes
    from edgec.pipeline import _not_measured
    from edgec.pipelines import pipeline

    device = load_device("iphone")
    config = CompileConfig(model="efficienttam_ti_1", target="iphone", precision="fp16")
    module = create("efficienttam_ti_1", image_size=64)
    specs = [s for s in graph_specs(module) if s.name in GRAPHS]
    stage = tmp_path_factory.mktemp("etam")
    job = GraphCompile(
        runtime=backend_for("coreml"),
        device=device,
        config=config,
        run_passes=lambda model, checker, outputs: run_passes(model, pipeline(device.pipeline), {}),
        not_measured=lambda model, precision: _not_measured(device, config, model, precision),
        stage=stage,
        scratch=tmp_path_factory.mktemp("scratch"),
        progress=Progress(enabled=False),
        timings={},
    )
    fields = compile_graphs(module, specs, job)
    return fields, stage


def test_every_graph_is_a_verified_package(compiled):
    fields, stage = compiled
    assert [g["name"] for g in fields["graphs"]] == list(GRAPHS)
    for graph in fields["graphs"]:
        artifact = graph["artifact"]
        assert artifact["runtime"] == "coreml" and (stage / artifact["path"]).is_dir()
        assert artifact["compute_precision"] == "fp16"
        check = artifact["reference_check"]
        assert check["passed"] and check["input"].startswith("the graph's example inputs")
        assert artifact["structure"]["passed"] and artifact["structure"]["max_rank"] <= 4
        assert graph["fidelity"]["final_vs_pytorch"]["passed"]
        assert [p["id"] for p in graph["passes"]][-1] == "quant::fp16"
        assert graph["latency"]["method"] in ("estimated", "none")
        assert graph["latency"].get("reason") or graph["latency"].get("total_ms") > 0
    json.dumps(fields)  # the manifest fields are JSON


def test_dynamic_dims_are_fixed_at_the_example_size_and_recorded(compiled):
    fields, _ = compiled
    attention = next(g for g in fields["graphs"] if g["name"] == "memory_attention")
    fixed = attention["fixed_shapes"]
    assert "fixed input shapes" in fixed["reason"]
    assert fixed["dims"]["memory_features"] == {"0": ["num_frames", 2, 7]}
    assert fixed["shapes"]["memory_features"] == [3, 64, 4, 4]
    assert attention["dynamic"] == {}
    inputs = {i["name"]: i for i in attention["artifact"]["package"]["inputs"]}
    assert inputs["memory_features"]["shape"] == [3, 64, 4, 4]
    assert inputs["memory_tpos"]["dtype"] == "int32"
    encoder = next(g for g in fields["graphs"] if g["name"] == "memory_encoder")
    assert "fixed_shapes" not in encoder  # nothing dynamic to fix


def test_quantized_precisions_are_refused_up_front():
    """Core ML packages have fixed shapes; the calibration clip's memory banks vary in size."""
    from edgec.compile_graphs import check_supported
    from edgec.errors import UserError

    config = CompileConfig(
        model="efficienttam_ti_1", target="iphone", precision="w8a8", calib="images"
    )
    with pytest.raises(UserError, match="need a runtime with dynamic shapes"):
        check_supported(load_device("iphone"), backend_for("coreml"), config)


def test_per_frame_latency_adds_the_graph_estimates():
    """A target that is not this machine: a tracked frame is the sum of its graphs' estimates,
    with the op classes added up (what the report's by-op chart draws)."""
    from edgec.compile_graphs import PER_FRAME, _per_frame
    from edgec.report_data import by_op

    records = [
        {"name": name, "latency": {"method": "estimated", "device": "iphone-15-pro",
                                   "total_ms": 1.0 + i, "by_class_ms": {"matmul": 0.5, "conv": i}}}
        for i, name in enumerate(PER_FRAME)
    ]  # fmt: skip
    records.append({"name": "prompt_mask_decoder_single", "latency": {"method": "estimated"}})
    frame = _per_frame(records)
    assert frame["method"] == "estimated" and frame["per_frame_ms"] == frame["total_ms"] == 10.0
    assert frame["by_class_ms"] == {"matmul": 2.0, "conv": 6.0}
    assert dict(by_op(frame)[1]) == {"matmul": 2.0, "conv": 6.0}
    records[0]["latency"] = {"method": "none", "reason": "no estimate"}
    assert _per_frame(records)["method"] == "none"
