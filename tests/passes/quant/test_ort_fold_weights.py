"""quant::ort_fold_weights: every weight layer ORT runs in float gets its weight folded at load.

Checked against ORT itself: the layers the pass folds are the ones ORT's optimized graph runs
with a float kernel, no weight DequantizeLinear is left to run per inference, and the outputs
are the same numbers as before the fold.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
import onnxruntime as ort
from onnx import helper, numpy_helper
from support.onnx_build import model, value_info

from edgec.passes.quant import _policy
from edgec.passes.quant.ort_slow_int8 import NO_INTEGER_KERNEL
from edgec.passes.quant.record import quantization_record
from edgec.runtimes.ort_kernels import kernels_by_output

FLOAT_LAYERS = {"hswish_conv", "upsample", "last"}  # ORT runs them in float: folded
KEPT_DQ = {"first", "middle", "upsample_in_group"}  # int8, or ORT would quantize it again


def _net() -> ir.Model:
    """x[1,16,8,8] ─ Conv 1×1 "first" ─ Relu ─ Conv 3×3 "hswish_conv" ─ HardSwish
    ─ ConvTranspose 2×2/2 "upsample" ─ HardSwish ─ Conv 1×1 "middle" ─ Relu
    ─ ConvTranspose 1×1 "upsample_in_group" ─ Conv 1×1 "last" ─ y."""
    rng = np.random.default_rng(0)
    shapes = {
        "w0": (32, 16, 1, 1), "w1": (32, 32, 3, 3), "wt": (32, 16, 2, 2),
        "w2": (32, 16, 1, 1), "wt2": (32, 32, 1, 1), "w3": (8, 32, 1, 1),
    }  # fmt: skip
    inits = [
        numpy_helper.from_array((rng.standard_normal(s) * 0.2).astype(np.float32), n)
        for n, s in shapes.items()
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w0"], ["c0"], name="first"),
        helper.make_node("Relu", ["c0"], ["r0"], name="relu0"),
        helper.make_node("Conv", ["r0", "w1"], ["c1"], pads=[1, 1, 1, 1], name="hswish_conv"),
        helper.make_node("HardSwish", ["c1"], ["h1"], name="hswish1"),
        helper.make_node("ConvTranspose", ["h1", "wt"], ["u"], strides=[2, 2], name="upsample"),
        helper.make_node("HardSwish", ["u"], ["h2"], name="hswish2"),
        helper.make_node("Conv", ["h2", "w2"], ["c2"], name="middle"),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("ConvTranspose", ["r2", "wt2"], ["u2"], name="upsample_in_group"),
        helper.make_node("Conv", ["u2", "w3"], ["y"], name="last"),
    ]
    net = model(nodes, [value_info("x", [1, 16, 8, 8])], [value_info("y", [1, 8, 16, 16])], inits)
    from edgec.pass_manager import create_pass

    create_pass("cleanup::infer_shapes")(net)
    return net


def _quantized(helpers, tmp_path, *marks: str) -> tuple[ir.Model, np.ndarray]:
    net = _net()
    for pass_id in marks:
        helpers.run_pass(pass_id, net)
    calib = tmp_path / "calib.npy"
    samples = np.random.default_rng(1).standard_normal((4, 16, 8, 8)).astype(np.float32)
    np.save(calib, samples)
    helpers.run_pass("quant::calibrate", net, data=str(calib))
    helpers.run_pass("quant::weights", net)
    helpers.run_pass("quant::activations", net)
    helpers.run_pass("quant::ort_unsigned_activations", net)
    return net, samples[:1]


def _weight_producer(net: ir.Model, name: str) -> str:
    return next(n for n in net.graph if n.name == name).inputs[1].producer().op_type


def test_folds_exactly_the_weights_of_layers_ort_runs_in_float(helpers, tmp_path):
    net, _ = _quantized(helpers, tmp_path)
    assert {_weight_producer(net, n) for n in FLOAT_LAYERS} == {"DequantizeLinear"}
    result, p = helpers.run_pass("quant::ort_fold_weights", net)
    assert result.modified and p.stats["weights_folded"] == 3
    assert (p.stats["Conv_float_kernel"], p.stats["ConvTranspose_float_kernel"]) == (2, 1)
    onnx.checker.check_model(ir.to_proto(net), full_check=True)
    for name in FLOAT_LAYERS:  # W_q (INT8) ─ Cast(FLOAT) ─ Mul(scale) ─► layer
        mul = next(n for n in net.graph if n.name == name).inputs[1].producer()
        assert mul.op_type == "Mul" and mul.inputs[0].producer().op_type == "Cast"
        assert mul.inputs[0].producer().inputs[0].dtype == ir.DataType.INT8
    assert {_weight_producer(net, n) for n in KEPT_DQ} == {"DequantizeLinear"}
    marks = {n.name: n.metadata_props.get(_policy.FLOAT_KERNEL_KEY) for n in net.graph}
    assert marks["hswish_conv"].startswith("output read by HardSwish, not by one QuantizeLinear")
    assert marks["upsample"].startswith("ORT has no integer ConvTranspose kernel")
    assert marks["last"].startswith("output read by the graph output")
    assert not any(marks[n] for n in KEPT_DQ)
    helpers.assert_idempotent("quant::ort_fold_weights", net)


def _optimized(model: ir.Model, path) -> tuple[ort.InferenceSession, onnx.GraphProto]:
    """A session at ORT's default level (ORT_ENABLE_ALL) and the graph it runs."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.optimized_model_filepath = str(path)
    proto = ir.to_proto(model).SerializeToString()
    session = ort.InferenceSession(proto, so, providers=["CPUExecutionProvider"])
    return session, onnx.load(str(path)).graph


def _weight_dqs(graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    """The DequantizeLinear nodes of constants ORT runs on every inference."""
    weights = {t.name for t in graph.initializer}
    return [n for n in graph.node if n.op_type == "DequantizeLinear" and n.input[0] in weights]


def test_ort_runs_the_folded_layers_on_float_weights_with_the_same_numbers(helpers, tmp_path):
    net, x = _quantized(helpers, tmp_path)
    before = helpers.clone(net)
    helpers.run_pass("quant::ort_fold_weights", net)
    exact = helpers.run_ort(net, {"x": x})[0]  # ORT without graph optimizations: the QDQ math
    np.testing.assert_allclose(exact, helpers.run_ort(before, {"x": x})[0], rtol=1e-5, atol=1e-5)

    session_before, graph_before = _optimized(before, tmp_path / "before.onnx")
    session, graph = _optimized(net, tmp_path / "after.onnx")
    assert len(_weight_dqs(graph_before)) == 4  # three of them in front of float kernels
    kept = _weight_dqs(graph)  # only the ConvTranspose between two pairs keeps its own
    assert [n.input[0] for n in kept] == [_weight_source(net, "upsample_in_group")]
    assert not any(n.doc_string == "Weight DQ node" for n in graph.node)  # ORT re-quantized none
    ops = [n.op_type for n in graph.node]
    assert ops.count("QLinearConv") == 2 and "Cast" not in ops  # Cast → Mul folded at load
    nchwc = [n for n in graph.node if n.domain == "com.microsoft.nchwc" and n.op_type == "Conv"]
    assert len(nchwc) == 2  # the float Convs run ORT's NCHWc kernel now
    assert not any(n.domain == "com.microsoft.nchwc" for n in graph_before.node)
    got, ref = session.run(None, {"x": x})[0], session_before.run(None, {"x": x})[0]
    assert np.abs(got - ref).max() <= 1e-4 * np.abs(ref).max()

    layers = {r["name"]: r for r in quantization_record(net, kernels_by_output(net))["layers"]}
    for name in FLOAT_LAYERS:
        layer = layers[name]
        assert layer["precision"] == "w8a32" and not layer["integer_kernel"], layer
        assert (layer["weight_bits_stored"], layer["weight_bits_computed"]) == (8, 32)
        node = next(n for n in net.graph if n.name == name)
        assert layer["fallback"] == node.metadata_props[_policy.FLOAT_KERNEL_KEY]
    for name in ("first", "middle"):
        assert layers[name]["precision"] == "w8a8" and layers[name]["integer_kernel"]
    assert layers["upsample_in_group"]["precision"] == "w8a8 (float kernel ConvTranspose)"
    assert layers["hswish_conv"]["activation_bits_in"] == 8  # its input is still int8 in memory


def _weight_source(net: ir.Model, name: str) -> str:
    return next(n for n in net.graph if n.name == name).inputs[1].producer().inputs[0].name


def test_a_conv_transpose_marked_by_ort_slow_int8_loses_its_input_pair_and_folds(helpers, tmp_path):
    net, x = _quantized(helpers, tmp_path, "quant::ort_slow_int8")
    nodes = {n.name: n for n in net.graph}
    assert nodes["upsample"].metadata_props[_policy.FLOAT_ACTIVATIONS_KEY] == NO_INTEGER_KERNEL
    assert nodes["upsample"].inputs[0].producer().op_type == "HardSwish"  # no pair on h1 now
    # "middle" quantizes its output for itself: the second ConvTranspose still reads a DQ
    assert nodes["upsample_in_group"].inputs[0].producer().op_type == "DequantizeLinear"
    before = helpers.clone(net)
    _, p = helpers.run_pass("quant::ort_fold_weights", net)
    assert p.stats["weights_folded"] == 3 and not p.stats["ConvTranspose_float_kernel"]
    assert _weight_producer(net, "upsample") == "Mul"
    assert _weight_producer(net, "upsample_in_group") == "DequantizeLinear"
    np.testing.assert_allclose(
        helpers.run_ort(net, {"x": x})[0],
        helpers.run_ort(before, {"x": x})[0],
        rtol=1e-5,
        atol=1e-5,
    )
    layers = {r["name"]: r for r in quantization_record(net)["layers"]}
    assert layers["upsample"]["precision"] == "w8a32"
    assert layers["upsample"]["fallback"] == NO_INTEGER_KERNEL
