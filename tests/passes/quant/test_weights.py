"""quant::weights: the DQ form of docs/quantization.md, hand-checked numbers, idempotence."""

from __future__ import annotations

import numpy as np
import onnx
import onnx_ir as ir
import pytest
from onnx import helper, numpy_helper
from support.onnx_build import model, value_info

from edgec.errors import UserError
from edgec.passes._graph import const_array
from edgec.passes.quant._policy import OUTPUT_LAYER_KEY
from edgec.passes.quant.weight_math import int4_blocks, int8_per_channel
from edgec.passes.quant.weights import layer_block, output_layers


def _weights(m: ir.Model) -> dict[str, np.ndarray]:
    return {v.name: v.const_value.numpy() for v in m.graph.initializers.values()}


def _dq_of(m: ir.Model, op_name: str) -> ir.Node:
    node = next(n for n in m.graph if n.name == op_name)
    return node.inputs[1].producer()


def test_int8_golden_and_numbers(helpers, net):
    floats = _weights(net)
    before = helpers.clone(net)
    result, p = helpers.run_pass("quant::weights", net)
    assert result.modified and dict(p.stats) == {
        "int8_layers": 3,
        "weights_quantized": 64 * 72 + 64 * 64 + 640,
    }
    onnx.checker.check_model(ir.to_proto(net), full_check=True)
    assert net.opset_imports[""] == 18
    for op_name, weight, axis in (("conv1", "w1", 0), ("conv2", "w2", 0), ("head", "w3", 0)):
        dq = _dq_of(net, op_name)
        assert dq.op_type == "DequantizeLinear" and dq.attributes["axis"].as_int() == axis
        q, scale, zp = (const_array(v) for v in dq.inputs)
        want_q, want_scale = int8_per_channel(floats[weight], axis, 127)
        np.testing.assert_array_equal(q, want_q)
        np.testing.assert_array_equal(scale, want_scale)
        assert q.dtype == np.int8 and not zp.any() and zp.dtype == np.int8
    assert "w1" not in net.graph.initializers  # the float weights are gone
    feeds = helpers.random_feeds(before)
    got, ref = helpers.run_ort(net, feeds)[0], helpers.run_ort(before, feeds)[0]
    assert np.abs(got - ref).max() < 0.01
    helpers.assert_idempotent("quant::weights", net)


def test_int4_golden_blocks_and_fallbacks(helpers, net):
    floats = _weights(net)
    _, p = helpers.run_pass("quant::weights", net, bits=4, block_size=32)
    onnx.checker.check_model(ir.to_proto(net), full_check=True)
    assert net.opset_imports[""] == 21
    # conv2 (reduction 64) is int4 blocks of 32 along the input channels
    dq = _dq_of(net, "conv2")
    assert dq.inputs[0].dtype == ir.DataType.INT4
    assert {k: a.as_int() for k, a in dq.attributes.items()} == {"axis": 1, "block_size": 32}
    want = int4_blocks(floats["w2"], 0, 1, 32, 15)
    np.testing.assert_array_equal(const_array(dq.inputs[0]), want.q)
    np.testing.assert_array_equal(const_array(dq.inputs[1]), want.block_scale)
    assert const_array(dq.inputs[1]).shape == (64, 2, 1, 1) and len(dq.inputs) == 2
    # the head (reduction 64) is the model's output layer: 8 bit, per output channel, and said
    head = _dq_of(net, "head")
    assert head.attributes["axis"].as_int() == 0 and head.inputs[0].dtype == ir.DataType.INT8
    assert "output layer" in head.outputs[0].uses()[0].node.metadata_props[OUTPUT_LAYER_KEY]
    # conv1's reduction is 8 input channels: no 32-block to share, so 8 bit
    assert _dq_of(net, "conv1").inputs[0].dtype == ir.DataType.INT8
    assert dict(p.stats) == {
        "int4_layers": 1,
        "int4_smaller_block": 0,
        "int8_layers": 2,
        "int8_output_layers": 1,
        "weights_quantized": 64 * 72 + 64 * 64 + 640,
        "opset_raised_to_21": 1,
    }
    helpers.assert_idempotent("quant::weights", net, bits=4, block_size=32)


def test_output_layers_are_the_last_weight_layers_on_every_path_to_an_output():
    """Two outputs: a conv head behind a Resize, and a MatMul of two activations whose
    operands come from a MatMul layer and (through a Reshape) from the first conv. All three
    are output layers: each is the first weight layer on some path up from an output."""
    nodes = [
        helper.make_node("Conv", ["x", "w0"], ["f"], name="stem"),
        helper.make_node("Conv", ["f", "w1"], ["s"], name="seg_head"),
        helper.make_node("Resize", ["s", "", "scales"], ["seg"], mode="nearest"),
        helper.make_node("Reshape", ["f", "shape"], ["t"]),
        helper.make_node("MatMul", ["t", "w2"], ["u"], name="proj"),
        helper.make_node("MatMul", ["u", "t"], ["mix"], name="scores"),
    ]
    ones = {"w0": (4, 4, 1, 1), "w1": (3, 4, 1, 1), "w2": (4, 4), "scales": (4,)}
    inits = [numpy_helper.from_array(np.ones(shape, np.float32), n) for n, shape in ones.items()]
    inits.append(numpy_helper.from_array(np.array([1, 4, 4], np.int64), "shape"))
    m = model(
        nodes,
        [value_info("x", [1, 4, 2, 2])],
        [value_info("seg", [1, 3, 2, 2]), value_info("mix", [1, 4, 4])],
        inits,
    )
    assert {n.name for n in output_layers(m.graph)} == {"seg_head", "proj", "stem"}


def test_int4_block_not_dividing_the_reduction_halves_then_falls_back_to_int8(helpers, make_net):
    net = make_net()
    _, p = helpers.run_pass("quant::weights", net, bits=4, block_size=128)
    assert p.stats["int4_layers"] == 1 and p.stats["int4_smaller_block"] == 1  # 64 = 1 × 64
    assert _dq_of(net, "conv2").attributes["block_size"].as_int() == 64
    net = make_net()
    _, p = helpers.run_pass("quant::weights", net, bits=4, block_size=128, min_block=128)
    assert p.stats["int8_layers"] == 3 and not p.stats["int4_layers"]


@pytest.mark.parametrize(
    ("reduction", "block"), [(64, 32), (48, 16), (80, 16), (40, None), (16, 16), (8, None)]
)
def test_layer_block_is_the_largest_halving_that_divides(reduction, block):
    assert layer_block(reduction, 32, 16) == block


def test_reduce_range_uses_7_bit_weights(helpers, net):
    helpers.run_pass("quant::weights", net, reduce_range=True)
    assert np.abs(const_array(_dq_of(net, "conv2").inputs[0])).max() == 63


def test_bad_options_are_user_errors(helpers, net):
    with pytest.raises(UserError, match="bits must be 4 or 8"):
        helpers.run_pass("quant::weights", net, bits=2)
    with pytest.raises(UserError, match="block size 48"):
        helpers.run_pass("quant::weights", net, bits=4, block_size=48)
