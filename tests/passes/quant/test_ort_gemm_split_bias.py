"""quant::ort_gemm_split_bias: Gemm(DQ a, DQ b, C) → Gemm + Add(C), and ORT then runs QGemm."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
from onnx import helper, numpy_helper
from support.onnx_build import model, value_info

from edgec.runtimes.ort_kernels import kernels_by_output


def _attention_logits(beta: float = 1.0) -> ir.Model:
    """Token-major attention logits: softmax(DQ(q)·DQ(k)ᵀ + bias), bias a 2-D table."""
    rng = np.random.default_rng(0)
    pair = [
        numpy_helper.from_array(np.float32(0.05), "s"),
        numpy_helper.from_array(np.uint8(128), "z"),
    ]
    bias = numpy_helper.from_array(rng.standard_normal((16, 16)).astype(np.float32), "bias")
    nodes = [
        helper.make_node("QuantizeLinear", ["q", "s", "z"], ["qq"]),
        helper.make_node("DequantizeLinear", ["qq", "s", "z"], ["qd"]),
        helper.make_node("QuantizeLinear", ["k", "s", "z"], ["kq"]),
        helper.make_node("DequantizeLinear", ["kq", "s", "z"], ["kd"]),
        helper.make_node("Gemm", ["qd", "kd", "bias"], ["logits"], transB=1, beta=beta, name="qk"),
        helper.make_node("Softmax", ["logits"], ["attn"], axis=-1),
    ]
    inputs = [value_info("q", [16, 8]), value_info("k", [16, 8])]
    return model(nodes, inputs, [value_info("attn", [16, 16])], [*pair, bias])


def test_split_bias_runs_qgemm_with_the_same_numbers(helpers):
    m = _attention_logits()
    helpers.infer_shapes(m)
    before = helpers.clone(m)
    assert kernels_by_output(m)["logits"] == "Gemm"
    result, p = helpers.run_pass("quant::ort_gemm_split_bias", m)
    assert result.modified and p.stats["biases_split"] == 1
    onnx.checker.check_model(ir.to_proto(m), full_check=True)
    assert helpers.op_types(m)[-3:] == ["Gemm", "Add", "Softmax"]
    kernels = kernels_by_output(m)
    gemm = next(n for n in m.graph if n.op_type == "Gemm")
    assert kernels[gemm.outputs[0].name] == "com.microsoft::QGemm"
    helpers.assert_same_outputs(before, m)
    helpers.assert_idempotent("quant::ort_gemm_split_bias", m)


def test_beta_moves_onto_the_bias(helpers):
    m = _attention_logits(beta=0.5)
    helpers.infer_shapes(m)
    before = helpers.clone(m)
    helpers.run_pass("quant::ort_gemm_split_bias", m)
    assert "Mul" in helpers.op_types(m)
    helpers.assert_same_outputs(before, m)
