"""quant::ort_float_attention: the attention core of a cascaded-attention head stays float."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
import onnxruntime as ort
import pytest
from onnx import helper, numpy_helper
from support.onnx_build import model, value_info

from edgec.pass_manager import create_pass
from edgec.passes.quant import _policy
from edgec.passes.quant.ort_float_attention import REASON
from edgec.passes.quant.record import quantization_record
from edgec.runtimes.ort_kernels import kernels_by_output

ISLAND = {"q_dw", "qk", "av", "cascade", "av2", "heads"}


def _head_net(matmul_cascade: bool = False) -> ir.Model:
    """cga_fusion's cascaded attention, cut down (C=16 channels, N=16 tokens):

    x[1,16,4,4] ─ qkv Conv 1×1 (16→48) ─ Split → q, k, v
      q ─ q_dw Conv 3×3 (group 16) ─ Reshape [16,16] ─ qk Gemm(q, k, bias, transA) ─ Softmax
      av = MatMul(v, attention) ; next = cascade Gemm(av, W, C=v)   (or, `matmul_cascade`:
      MatMul(av, W) ─ cascade_add Add(·, v)) ; av2 = MatMul(next, attention)
      heads = Concat(av, av2) ─ Reshape [1,32,4,4] ─ Relu ─ proj Conv 1×1 (32→16)
      ─ other_dw Conv 3×3 ─ y
    """
    rng = np.random.default_rng(0)
    arrays = {
        "w_qkv": rng.standard_normal((48, 16, 1, 1)) * 0.3,
        "w_qdw": rng.standard_normal((16, 1, 3, 3)) * 0.3,
        "bias": rng.standard_normal((16, 16)) * 0.5,
        "w_cascade": rng.standard_normal((16, 16)) * 0.3,
        "w_proj": rng.standard_normal((16, 32, 1, 1)) * 0.3,
        "w_dw": rng.standard_normal((16, 1, 3, 3)) * 0.3,
        "flat": np.array([16, 16]),
        "grid": np.array([1, 32, 4, 4]),
    }
    inits = [
        numpy_helper.from_array(a.astype(np.int64 if a.ndim == 1 else np.float32), name)
        for name, a in arrays.items()
    ]
    inits.append(numpy_helper.from_array(np.array([16, 16, 16], np.int64), "sizes"))
    pads = [1, 1, 1, 1]
    nodes = [
        helper.make_node("Conv", ["x", "w_qkv"], ["qkv"], name="qkv"),
        helper.make_node("Split", ["qkv", "sizes"], ["q", "k", "v"], axis=1, name="split"),
        helper.make_node("Conv", ["q", "w_qdw"], ["q2"], pads=pads, group=16, name="q_dw"),
        helper.make_node("Reshape", ["q2", "flat"], ["qf"], name="q_flat"),
        helper.make_node("Reshape", ["k", "flat"], ["kf"], name="k_flat"),
        helper.make_node("Reshape", ["v", "flat"], ["vf"], name="v_flat"),
        helper.make_node("Gemm", ["qf", "kf", "bias"], ["scores"], transA=1, name="qk"),
        helper.make_node("Softmax", ["scores"], ["attention"], axis=-1, name="softmax"),
        helper.make_node("MatMul", ["vf", "attention"], ["av"], name="av"),
        *(
            [
                helper.make_node("MatMul", ["av", "w_cascade"], ["increment"], name="cascade"),
                helper.make_node("Add", ["increment", "vf"], ["next"], name="cascade_add"),
            ]
            if matmul_cascade
            else [helper.make_node("Gemm", ["av", "w_cascade", "vf"], ["next"], name="cascade")]
        ),
        helper.make_node("MatMul", ["next", "attention"], ["av2"], name="av2"),
        helper.make_node("Concat", ["av", "av2"], ["cat"], axis=0, name="heads"),
        helper.make_node("Reshape", ["cat", "grid"], ["cat4"], name="unflat"),
        helper.make_node("Relu", ["cat4"], ["r"], name="relu"),
        helper.make_node("Conv", ["r", "w_proj"], ["p"], name="proj"),
        helper.make_node("Conv", ["p", "w_dw"], ["y"], pads=pads, group=16, name="other_dw"),
    ]
    net = model(nodes, [value_info("x", [1, 16, 4, 4])], [value_info("y", [1, 16, 4, 4])], inits)
    create_pass("cleanup::infer_shapes")(net)
    return net


def _marked(net: ir.Model) -> set[str]:
    return {
        n.name for n in net.graph if n.metadata_props.get(_policy.FLOAT_ACTIVATIONS_KEY) == REASON
    }


@pytest.mark.parametrize("matmul_cascade", [False, True])
def test_marks_the_products_the_cascade_the_query_conv_and_the_heads_concat(
    helpers, matmul_cascade
):
    net = _head_net(matmul_cascade)
    island = ISLAND | ({"cascade_add"} if matmul_cascade else set())
    result, p = helpers.run_pass("quant::ort_float_attention", net)
    assert result.modified and p.stats["nodes_marked"] == len(island)
    assert _marked(net) == island  # not qkv, proj, nor the depthwise conv outside attention
    helpers.assert_idempotent("quant::ort_float_attention", net)


@pytest.mark.parametrize("matmul_cascade", [False, True])
def test_w8a8_island_has_no_pair_inside_and_runs_float_on_ort(helpers, tmp_path, matmul_cascade):
    net = _head_net(matmul_cascade)
    float_net = helpers.clone(net)
    calib = tmp_path / "calib.npy"
    np.save(calib, np.random.default_rng(1).standard_normal((8, 16, 4, 4)).astype(np.float32))
    helpers.run_pass("quant::ort_float_attention", net)
    helpers.run_pass("quant::calibrate", net, data=str(calib))
    for pass_id in (
        "quant::weights", "quant::activations", "quant::ort_unsigned_activations",
        "quant::ort_gemm_split_bias", "quant::ort_fold_weights",
    ):  # fmt: skip
        helpers.run_pass(pass_id, net)
    onnx.checker.check_model(ir.to_proto(net), full_check=True)
    quantized = {n.inputs[0].name for n in net.graph if n.op_type == "QuantizeLinear"}
    assert quantized == {"x", "qkv", "r", "p"}  # nothing inside: only its way in and way out
    layers = {r["name"]: r for r in quantization_record(net, kernels_by_output(net))["layers"]}
    for name in ("q_dw", "cascade"):  # 8-bit weights folded to float at load
        assert layers[name]["precision"] == "w8a32" and layers[name]["fallback"] == REASON
    assert layers["av"]["activation_bits_in"] == 32
    for name in ("qk", "av", "av2"):  # activation × activation, both operands float
        assert layers[name]["precision"] == "fp32" and layers[name]["weight_bits_stored"] == 32
    for name in ("qkv", "proj"):
        assert layers[name]["precision"] == "w8a8" and layers[name]["integer_kernel"], name
    feeds = {"x": np.load(calib)[:1]}
    got, want = helpers.run_ort(net, feeds)[0], helpers.run_ort(float_net, feeds)[0]
    cosine = np.sum(got * want) / (np.linalg.norm(got) * np.linalg.norm(want))
    assert cosine > 0.99
    so = ort.SessionOptions()
    so.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(ir.to_proto(net).SerializeToString(), so)
    ops = [n.op_type for n in onnx.load(so.optimized_model_filepath).graph.node]
    assert ops.count("QLinearConv") == 2 and "QGemm" not in ops and "QLinearMatMul" not in ops
    assert "Cast" not in ops  # the island's weights became float initializers at load


def test_without_the_island_the_products_are_recorded_with_both_operands_int8(helpers, tmp_path):
    net = _head_net(matmul_cascade=False)
    calib = tmp_path / "calib.npy"
    np.save(calib, np.random.default_rng(1).standard_normal((8, 16, 4, 4)).astype(np.float32))
    helpers.run_pass("quant::calibrate", net, data=str(calib))
    for pass_id in ("quant::weights", "quant::activations"):
        helpers.run_pass(pass_id, net)
    layers = {r["name"]: r for r in quantization_record(net)["layers"]}
    for name in ("qk", "av"):  # activation × activation: the "weight" is the second operand
        assert layers[name]["precision"] == "w8a8" and layers[name]["weight_bits_stored"] == 8
