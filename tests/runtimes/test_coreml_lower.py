"""ONNX → MIL lowering, op by op: the MIL program computes what ONNX Runtime computes.

Each graph is lowered, the MIL program evaluated with edgec's numpy reference evaluator
(Core ML cannot run on Linux) and compared with ONNX Runtime (optimizations off) on the same
input, at the fp32 verification bound. Unsupported ops are all reported at once.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from support.onnx_build import model, value_info

pytest.importorskip("coremltools", reason="coremltools is not installed")

from edgec.errors import UnsupportedOpsError
from edgec.runtimes import coreml
from edgec.runtimes.coreml_eval import run_program
from edgec.runtimes.coreml_lower import lower
from edgec.runtimes.coreml_sdk import deployment_target

BOUND = 5e-5


def _w(name, shape, seed=0, scale=0.3):
    rng = np.random.default_rng(sum(map(ord, name)) + seed)
    return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)


def _i(name, values):
    return numpy_helper.from_array(np.asarray(values, np.int64), name)


def _node(op, inputs, outputs, **attrs):
    return helper.make_node(op, inputs, outputs, name=f"{op}_{outputs[0]}", **attrs)


def _conv_graph() -> ir.Model:
    """Convs (strided, grouped, transposed), norms and activations of the CNN families."""
    nodes = [
        _node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], strides=[2, 2]),
        _node("HardSwish", ["c1"], ["h1"]),
        _node("Conv", ["h1", "wd"], ["c2"], pads=[1, 1, 1, 1], group=8),
        _node("Relu", ["c2"], ["r2"]),
        _node("ConvTranspose", ["r2", "wt", "bt"], ["t"], strides=[2, 2], pads=[1, 1, 1, 1]),
        _node("Reshape", ["t", "shape3"], ["t3"]),
        _node("InstanceNormalization", ["t3", "g", "be"], ["n3"], epsilon=1e-5),
        _node("Reshape", ["n3", "shape4"], ["n4"]),
        _node("Div", ["n4", "two"], ["d"]),
        _node("Erf", ["d"], ["e"]),
        _node("Sigmoid", ["e"], ["s"]),
        _node("Mul", ["s", "n4"], ["m"]),
        _node("MaxPool", ["m"], ["mp"], kernel_shape=[2, 2], strides=[2, 2]),
        _node("AveragePool", ["mp"], ["ap"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        _node("GlobalAveragePool", ["ap"], ["gap"]),
        _node("Flatten", ["gap"], ["f"]),
        _node("Gemm", ["f", "wg", "bg"], ["y"], transB=1),
    ]
    inits = [
        _w("w1", (8, 3, 3, 3)),
        _w("b1", (8,)),
        _w("wd", (8, 1, 3, 3)),
        _w("wt", (8, 4, 4, 4)),
        _w("bt", (4,)),
        _i("shape3", [0, 4, -1]),
        _w("g", (4,)),
        _w("be", (4,)),
        _i("shape4", [1, 4, 16, 16]),
        numpy_helper.from_array(np.array(1.41421356, np.float32), "two"),
        _w("wg", (6, 4)),
        _w("bg", (6,)),
    ]
    return model(
        nodes,
        [value_info("x", [1, 3, 16, 16])],
        [value_info("y", [1, 6])],
        inits,
    )


def _attention_graph() -> ir.Model:
    """DeiT/EfficientViT-style attention: LayerNorm, qkv MatMul, rank-5 split, softmax."""
    nodes = [
        _node("LayerNormalization", ["x", "ln_g", "ln_b"], ["ln"], axis=-1, epsilon=1e-6),
        _node("MatMul", ["ln", "wqkv"], ["qkv"]),
        _node("Reshape", ["qkv", "s5"], ["qkv5"]),
        _node("Transpose", ["qkv5"], ["qkvt"], perm=[2, 0, 3, 1, 4]),
        _node("Slice", ["qkvt", "zero", "one", "zero"], ["q5"]),
        _node("Squeeze", ["q5", "zero"], ["q"]),
        _node("Split", ["qkvt"], ["_q", "k5", "v5"], axis=0, num_outputs=3),
        _node("Squeeze", ["k5", "zero"], ["k"]),
        _node("Squeeze", ["v5", "zero"], ["v"]),
        _node("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2]),
        _node("MatMul", ["q", "kt"], ["att"]),
        _node("Mul", ["att", "scale"], ["atts"]),
        _node("Softmax", ["atts"], ["p"], axis=-1),
        _node("MatMul", ["p", "v"], ["o"]),
        _node("Transpose", ["o"], ["ot"], perm=[0, 2, 1, 3]),
        _node("Reshape", ["ot", "s3"], ["o3"]),
        _node("Gemm", ["o3_2d", "wp", "bp"], ["proj"]),
        _node("Gather", ["proj3", "zero_s"], ["cls"], axis=1),
        _node("Concat", ["cls", "cls"], ["y"], axis=-1),
    ]
    nodes.insert(16, _node("Reshape", ["o3", "s2"], ["o3_2d"]))
    nodes.insert(18, _node("Reshape", ["proj", "s3b"], ["proj3"]))
    inits = [
        _w("ln_g", (16,)),
        _w("ln_b", (16,)),
        _w("wqkv", (16, 48)),
        _i("s5", [1, 5, 3, 2, 8]),
        _i("zero", [0]),
        _i("one", [1]),
        numpy_helper.from_array(np.array(0.35, np.float32), "scale"),
        _i("s3", [1, 5, 16]),
        _i("s2", [5, 16]),
        _w("wp", (16, 12)),
        _w("bp", (12,)),
        _i("s3b", [1, 5, 12]),
        numpy_helper.from_array(np.array(0, np.int64), "zero_s"),
    ]
    return model(
        nodes,
        [value_info("x", [1, 5, 16])],
        [value_info("y", [1, 24])],
        inits,
    )


def _resize_graph() -> ir.Model:
    """F.interpolate as exporters write it: bilinear (half-pixel, align-corners) and nearest."""
    f32 = lambda name, v: numpy_helper.from_array(np.asarray(v, np.float32), name)  # noqa: E731
    nodes = [
        _node("Resize", ["x", "", "", "to_odd"], ["a"], mode="linear",
              coordinate_transformation_mode="pytorch_half_pixel"),
        _node("Resize", ["a", "", "", "to_x"], ["b"], mode="linear",
              coordinate_transformation_mode="align_corners"),
        _node("Resize", ["b", "", "twice"], ["y"], mode="nearest",
              coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
    ]  # fmt: skip
    inits = [_i("to_odd", [1, 3, 13, 7]), _i("to_x", [1, 3, 6, 5]), f32("twice", [1, 1, 2, 2])]
    return model(nodes, [value_info("x", [1, 3, 6, 5])], [value_info("y", [1, 3, 12, 10])], inits)


def _ort(m: ir.Model, feeds):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    proto = ir.to_proto(m).SerializeToString()
    return ort.InferenceSession(proto, so, providers=["CPUExecutionProvider"]).run(None, feeds)


@pytest.mark.parametrize(
    "build", [_conv_graph, _attention_graph, _resize_graph], ids=["conv", "attention", "resize"]
)
def test_lowered_program_matches_onnx_runtime(build):
    m = build()
    (x,) = m.graph.inputs
    feed = np.random.default_rng(0).standard_normal(tuple(x.shape)).astype(np.float32)
    lowered = lower(m, target=deployment_target("ios17"))
    assert not lowered.problems
    (got,) = run_program(lowered.program, {"x": feed}).values()
    (ref,) = _ort(m, {"x": feed})
    assert got.shape == ref.shape
    assert np.abs(got - ref).max() <= BOUND * max(1.0, np.abs(ref).max())


def test_matmul_and_gemm_with_constant_weights_become_linear():
    lowered = lower(_attention_graph(), target=deployment_target("ios17"))
    ops = [op.op_type for op in lowered.program.functions["main"].operations]
    assert ops.count("linear") == 2  # the qkv MatMul and the projection Gemm
    assert ops.count("matmul") == 2  # q·kᵀ and p·v stay activation × activation


def test_every_unsupported_op_is_reported_at_once_and_nothing_is_written(tmp_path):
    nodes = [
        _node("Relu", ["x"], ["a"]),
        _node("NonZero", ["a"], ["nz"]),  # unknown to the lowering
        _node("Tile", ["a", "reps"], ["t"]),  # unknown too
        _node("Reshape", ["a", "shape6"], ["r6"]),  # rank 6
        _node("Relu", ["nz"], ["after"]),  # downstream of a failure: not reported again
    ]
    m = model(
        nodes,
        [value_info("x", [1, 2, 3, 4])],
        [
            value_info("after", None, TensorProto.INT64),
            value_info("t", None),
            value_info("r6", None),
        ],
        [_i("reps", [1, 1, 1, 2]), _i("shape6", [1, 1, 2, 3, 2, 2])],
    )
    problems = coreml.check(m)
    assert set(problems) == {"NonZero", "Tile", "rank > 5"}
    assert problems["NonZero"] == ["NonZero_nz"]
    with pytest.raises(UnsupportedOpsError) as err:
        coreml.emit(m, tmp_path / "out", name="bad")
    assert "NonZero" in str(err.value) and "Tile" in str(err.value) and "rank 5" in str(err.value)
    assert not (tmp_path / "out").exists()


def test_dynamic_batch_is_named():
    nodes = [_node("Relu", ["x"], ["y"])]
    m = model(nodes, [value_info("x", ["N", 3])], [value_info("y", ["N", 3])])
    assert "dynamic input shape" in coreml.check(m)
