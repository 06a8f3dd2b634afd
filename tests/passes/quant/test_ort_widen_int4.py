"""quant::ort_widen_int4: the same weights, folded by ORT into int8 for its integer kernels."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir

from edgec.passes.quant.record import quantization_record
from edgec.runtimes.ort_kernels import kernels_by_output


def _w4a8(helpers, net, calib_file):
    helpers.run_pass("quant::calibrate", net, data=calib_file)
    helpers.run_pass("quant::weights", net, bits=4, reduce_range=True)
    helpers.run_pass("quant::activations", net)
    return net


def test_widening_computes_the_same_and_runs_on_integer_kernels(helpers, net, calib_file):
    blocked = _w4a8(helpers, net, calib_file)
    before = helpers.clone(blocked)
    result, p = helpers.run_pass("quant::ort_widen_int4", blocked)
    assert result.modified and p.stats["weights_widened"] == 1  # conv2 (the head is 8-bit)
    onnx.checker.check_model(ir.to_proto(blocked), full_check=True)
    conv2 = next(n for n in blocked.graph if n.name == "conv2")
    dq = conv2.inputs[1].producer()
    assert "block_size" not in dq.attributes and dq.attributes["axis"].as_int() == 0
    chain, node = [], dq.inputs[0].producer()
    while node is not None:
        chain.append(node.op_type)
        node = node.inputs[0].producer()
    assert chain == ["Cast", "Reshape", "Mul", "Cast"]
    mul = dq.inputs[0].producer().inputs[0].producer().inputs[0].producer()
    stored_q4 = mul.inputs[0].producer().inputs[0]  # kept in the blocked view [O, nb, B, 1, 1]
    assert stored_q4.dtype == ir.DataType.INT4 and list(stored_q4.shape) == [64, 2, 32, 1, 1]
    stored = [v for v in blocked.graph.initializers.values() if v.dtype == ir.DataType.INT4]
    assert len(stored) == 1  # the 4-bit weights stay 4-bit in the file
    feeds = {"x": np.load(calib_file)[:1]}
    np.testing.assert_allclose(
        helpers.run_ort(blocked, feeds)[0], helpers.run_ort(before, feeds)[0], atol=1e-6
    )
    kernels = kernels_by_output(blocked)
    record = {layer["name"]: layer for layer in quantization_record(blocked, kernels)["layers"]}
    assert record["conv2"]["precision"] == "w4a8"
    assert record["conv2"]["kernel"] == "QLinearConv" and record["conv2"]["integer_kernel"]
    assert (record["conv2"]["weight_bits_stored"], record["conv2"]["weight_bits_computed"]) == (
        4,
        8,
    )
    assert record["conv2"]["weight_qmax"] <= 8
    assert record["conv1"]["weight_bits_stored"] == 8 and record["conv1"]["weight_qmax"] == 63
    # the head (the output layer: 8-bit weights) feeds only the Softmax (kept float)
    assert (
        record["head"]["weight_bits_stored"] == 8 and "output layer" in record["head"]["fallback"]
    )
    assert record["head"]["activation_bits_out"] == 32
    helpers.assert_idempotent("quant::ort_widen_int4", blocked)


def test_record_does_not_call_a_blocked_float_graph_w4a8_with_integer_kernels(
    helpers, net, calib_file
):
    blocked = _w4a8(helpers, net, calib_file)
    record = {
        r["name"]: r for r in quantization_record(blocked, kernels_by_output(blocked))["layers"]
    }
    assert record["conv2"]["kernel"] == "Conv" and not record["conv2"]["integer_kernel"]
    assert record["conv2"]["precision"].startswith("w4a8 (float kernel")
