"""Rank limits of the Core ML lowering: high-rank layout chains are folded (`coreml_wide`),
split heads hold every tensor of the saved program to rank ≤ 4, and a real rank-5 tensor is a
clear error naming its ops — checked by lowering, saving, reloading and evaluating against
ONNX Runtime."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import onnxruntime as ort
import pytest
from onnx import helper, numpy_helper
from support.onnx_build import model, value_info

pytest.importorskip("coremltools", reason="coremltools is not installed")

from edgec.errors import UnsupportedOpsError, UserError
from edgec.runtimes import coreml
from edgec.runtimes.coreml_eval import run_program
from edgec.runtimes.coreml_lower import lower
from edgec.runtimes.coreml_package import load_program, tensor_ranks
from edgec.runtimes.coreml_sdk import deployment_target
from edgec.runtimes.coreml_verify import check_structure

BOUND = 5e-5


def _i(name, values):
    return numpy_helper.from_array(np.asarray(values, np.int64), name)


def _f(name, array):
    return numpy_helper.from_array(np.asarray(array, np.float32), name)


def _node(op, inputs, outputs, **attrs):
    return helper.make_node(op, inputs, outputs, name=f"{op}_{outputs[0]}", **attrs)


def _window_partition() -> ir.Model:
    """EfficientTAM's one-window partition and reverse: rank 6 between 4-D maps."""
    nodes = [
        _node("Reshape", ["x", "s6"], ["w6"]),
        _node("Transpose", ["w6"], ["t6"], perm=[0, 1, 3, 2, 4, 5]),
        _node("Reshape", ["t6", "s4"], ["w"]),
        _node("Relu", ["w"], ["y"]),
    ]
    inits = [_i("s6", [1, 2, 3, 1, 5, 4]), _i("s4", [2, 5, 3, 4])]
    return model(nodes, [value_info("x", [1, 6, 5, 4])], [value_info("y", [2, 5, 3, 4])], inits)


def _rope_pairs() -> ir.Model:
    """RoPE on (real, imaginary) pairs as the exporter writes it: rank 6 between 4-D tensors."""
    rng = np.random.default_rng(0)
    nodes = [
        _node("Reshape", ["x", "s6"], ["p"]),
        _node("Gather", ["p", "zero"], ["re"], axis=-1),
        _node("Gather", ["p", "one"], ["im"], axis=5),
        _node("Mul", ["re", "cos"], ["a"]),
        _node("Mul", ["im", "sin"], ["b"]),
        _node("Sub", ["a", "b"], ["re2"]),
        _node("Mul", ["re", "sin"], ["c"]),
        _node("Mul", ["im", "cos"], ["d"]),
        _node("Add", ["c", "d"], ["im2"]),
        _node("Unsqueeze", ["re2", "last"], ["re3"]),
        _node("Unsqueeze", ["im2", "last"], ["im3"]),
        _node("Concat", ["re3", "im3"], ["q"], axis=-1),
        _node("Reshape", ["q", "s4"], ["y"]),
    ]
    inits = [
        _i("s6", [1, 1, 1, 6, 4, 2]),
        _i("s4", [1, 1, 6, 8]),
        _i("zero", 0),
        _i("one", 1),
        _i("last", [-1]),
        _f("cos", np.cos(rng.standard_normal((6, 4)))),
        _f("sin", np.sin(rng.standard_normal((6, 4)))),
    ]
    shape = [1, 1, 6, 8]
    return model(nodes, [value_info("x", shape)], [value_info("y", shape)], inits)


def _qkv_split() -> ir.Model:
    """timm's fused qkv → [3, B, H, N, d] → q, k, v; rank 5 with unit axes, then attention."""
    nodes = [
        _node("Reshape", ["x", "s5"], ["r"]),
        _node("Transpose", ["r"], ["t"], perm=[2, 0, 3, 1, 4]),
        _node("Slice", ["t", "z", "o", "z"], ["q5"]),
        _node("Slice", ["t", "o", "tw", "z"], ["k5"]),
        _node("Squeeze", ["q5", "z"], ["q"]),
        _node("Squeeze", ["k5", "z"], ["k"]),
        _node("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2]),
        _node("MatMul", ["q", "kt"], ["y"]),
    ]
    inits = [_i("s5", [1, 5, 3, 2, 4]), _i("z", [0]), _i("o", [1]), _i("tw", [2])]
    return model(nodes, [value_info("x", [1, 5, 24])], [value_info("y", [1, 2, 5, 5])], inits)


def _inferred(m: ir.Model) -> ir.Model:
    """Static shapes on every value, as the pipeline's cleanup::infer_shapes leaves them."""
    import edgec.passes  # noqa: F401
    from edgec.pass_manager import run_passes

    run_passes(m, ["cleanup::infer_shapes"], {})
    return m


def _ort(m: ir.Model, feeds):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    proto = ir.to_proto(m).SerializeToString()
    return ort.InferenceSession(proto, so, providers=["CPUExecutionProvider"]).run(None, feeds)


@pytest.mark.parametrize("max_rank", [5, 4])
@pytest.mark.parametrize(
    "build", [_window_partition, _rope_pairs, _qkv_split], ids=["window", "rope", "qkv"]
)
def test_high_rank_layout_chains_lower_folded(build, max_rank):
    m = _inferred(build())
    (x,) = m.graph.inputs
    feed = np.random.default_rng(1).standard_normal(tuple(x.shape)).astype(np.float32)
    lowered = lower(m, target=deployment_target("ios17"), max_rank=max_rank)
    assert not lowered.problems
    assert max(rank for *_, rank in tensor_ranks(lowered.program)) <= max_rank
    (got,) = run_program(lowered.program, {"x": feed}).values()
    (ref,) = _ort(m, {"x": feed})
    assert got.shape == ref.shape
    assert np.abs(got - ref).max() <= BOUND * max(1.0, np.abs(ref).max())


def _planted_rank5() -> ir.Model:
    """A real rank-5 tensor (no unit axes to drop) that an elementwise op works on."""
    nodes = [
        _node("Reshape", ["x", "s5"], ["v"]),
        _node("Relu", ["v"], ["r"]),
        _node("Reshape", ["r", "s2"], ["y"]),
    ]
    inits = [_i("s5", [2, 3, 2, 2, 5]), _i("s2", [12, 10])]
    return model(nodes, [value_info("x", [12, 10])], [value_info("y", [12, 10])], inits)


def test_split_heads_refuse_a_real_rank5_tensor_naming_the_op(tmp_path):
    m = _inferred(_planted_rank5())
    with pytest.raises(UnsupportedOpsError) as err:
        coreml.emit(m, tmp_path / "split", name="m", split_heads=True)
    assert "rank > 4" in str(err.value) and "Relu_r" in str(err.value)
    assert "split heads" in str(err.value)
    assert not (tmp_path / "split").exists()
    art = coreml.emit(m, tmp_path / "any", name="m", precision="fp32")  # rank 5 is Core ML's
    assert art.details["structure"] == {
        "max_rank_allowed": 5,
        "why": "Core ML",
        "max_rank": 5,
        "passed": True,
    }
    assert art.details["reference_check"]["passed"]
    with pytest.raises(UserError) as err:  # the check on the reloaded program, on its own
        check_structure(art.path, 4, "split heads")
    assert "relu" in str(err.value) and "rank 5" in str(err.value)


def test_a_zoo_model_with_split_heads_has_no_tensor_above_rank_4(zoo_exports, tmp_path):
    """Segmenter (mask decoder) through the iPhone pipeline (split_heads) at fp16: the
    reloaded package is at most 4-D and matches ONNX Runtime."""
    import edgec.passes  # noqa: F401
    from edgec.pass_manager import run_passes
    from edgec.pipelines import pipeline

    m = zoo_exports.get("segmenter_vit_tiny_mask", (3, 64, 64))
    records = run_passes(m, [*pipeline("ane"), "quant::fp16"], {})
    split = next(r for r in records if r.id == "attention::split_heads")
    assert split.stats["attentions_split"] > 0
    art = coreml.emit(m, tmp_path, name="segmenter", precision="fp16", split_heads=True)
    assert art.details["structure"]["passed"] and art.details["structure"]["max_rank"] <= 4
    assert art.details["reference_check"]["passed"]
    assert "reduce_l2_norm" in art.details["package"]["ops"]  # the mask decoder's L2 norm
    _, program = load_program(art.path)
    assert max(rank for *_, rank in tensor_ranks(program)) <= 4


def _volume() -> ir.Model:
    """SegFormer3D's building blocks: a strided 3-D conv and trilinear upsampling (rank 5)."""
    rng = np.random.default_rng(2)
    nodes = [
        _node("Conv", ["x", "w", "b"], ["c"], strides=[2, 2, 2], pads=[1, 1, 1, 1, 1, 1]),
        _node("Resize", ["c", "", "", "to_half_pixel"], ["h"], mode="linear",
              coordinate_transformation_mode="half_pixel"),
        _node("Resize", ["h", "", "", "to_corners"], ["y"], mode="linear",
              coordinate_transformation_mode="align_corners"),
    ]  # fmt: skip
    inits = [
        _f("w", rng.standard_normal((4, 2, 3, 3, 3)) * 0.3),
        _f("b", rng.standard_normal(4)),
        _i("to_half_pixel", [1, 4, 8, 6, 10]),
        _i("to_corners", [1, 4, 5, 7, 3]),
    ]
    return model(nodes, [value_info("x", [1, 2, 6, 8, 4])], [value_info("y", [1, 4, 5, 7, 3])],
                 inits)  # fmt: skip


def test_volumes_lower_at_rank_5_and_are_refused_under_split_heads(tmp_path):
    m = _inferred(_volume())
    art = coreml.emit(m, tmp_path / "v", name="volume", precision="fp32")
    assert art.details["reference_check"]["passed"]
    assert art.details["package"]["ops"]["resize_bilinear"] == 4  # two per trilinear resize
    with pytest.raises(UnsupportedOpsError, match="--pipeline default"):
        coreml.emit(m, tmp_path / "s", name="volume", split_heads=True)
