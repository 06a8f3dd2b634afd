"""The quantization record names the ORT kernel of a layer ORT fused with its activation."""

from __future__ import annotations

import numpy as np
from onnx import helper, numpy_helper
from support.onnx_build import model, value_info

from edgec.passes.quant.record import quantization_record
from edgec.runtimes.ort_kernels import kernels_by_output


def test_a_float_conv_fused_with_its_sigmoid_is_named_by_the_fused_kernel():
    """Squeeze-excite gate: DQ(int8 weight) → Conv → Sigmoid; ORT runs one FusedConv whose
    output is the Sigmoid's, so the Conv's own output tensor is not in ORT's graph."""
    rng = np.random.default_rng(0)
    stored = rng.integers(-127, 128, (8, 8, 1, 1)).astype(np.int8)
    nodes = [
        helper.make_node("DequantizeLinear", ["w_q", "w_scale"], ["w"], axis=0),
        helper.make_node("Conv", ["x", "w"], ["c"], name="gate"),
        helper.make_node("Sigmoid", ["c"], ["y"]),
    ]
    inits = [
        numpy_helper.from_array(stored, "w_q"),
        numpy_helper.from_array(np.full(8, 0.01, np.float32), "w_scale"),
    ]
    net = model(nodes, [value_info("x", [1, 8, 1, 1])], [value_info("y", [1, 8, 1, 1])], inits)
    (gate,) = quantization_record(net, kernels_by_output(net))["layers"]
    assert gate["kernel"] == "com.microsoft::FusedConv" and gate["integer_kernel"] is False
    assert gate["precision"].startswith("w8a32")
