"""quant::ort_unsigned_activations: symmetric int8 pairs become uint8 (+128), same numbers."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from edgec.runtimes.ort_session import session_options


def test_int8_pairs_become_uint8_and_load_at_full_optimization(helpers, net, calib_file):
    helpers.run_pass("quant::calibrate", net, data=calib_file)
    helpers.run_pass("quant::weights", net, bits=4)  # opset 21: where ORT 1.32 trips on int8
    helpers.run_pass("quant::activations", net, symmetric=True)
    before = helpers.clone(net)
    result, p = helpers.run_pass("quant::ort_unsigned_activations", net)
    assert result.modified and p.stats["pairs_made_unsigned"] == 5
    for node in net.graph:
        if node.op_type == "QuantizeLinear":
            assert node.outputs[0].dtype == ir.DataType.UINT8
            assert node.inputs[2].const_value.numpy() == 128
    weight_dqs = [
        n for n in net.graph if n.op_type == "DequantizeLinear" and n.inputs[0].is_initializer()
    ]
    # conv1 (8 input channels) and the head (the output layer) keep 8-bit weights
    widths = [n.inputs[0].dtype for n in weight_dqs]
    assert widths == [ir.DataType.INT8, ir.DataType.INT4, ir.DataType.INT8]
    feeds = {"x": np.load(calib_file)[:1]}
    np.testing.assert_array_equal(helpers.run_ort(net, feeds)[0], helpers.run_ort(before, feeds)[0])
    import onnxruntime as ort

    so = session_options(ort, threads=1, optimization="all")
    ort.InferenceSession(ir.to_proto(net).SerializeToString(), so)  # loads
    helpers.assert_idempotent("quant::ort_unsigned_activations", net)
