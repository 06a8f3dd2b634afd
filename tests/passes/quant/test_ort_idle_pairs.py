"""quant::ort_idle_pairs: pairs no ORT integer kernel uses go; every integer kernel stays."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
from test_ort_fold_weights import _net, _optimized, _quantized

from edgec.cost_model.fusion import ORT_CPU
from edgec.cost_model.ort_qdq import int8_nodes


def _pairs(net: ir.Model) -> set[str]:
    """The tensors that have a Q/DQ pair, by the name of the op producing them."""
    return {
        n.inputs[0].producer().name if n.inputs[0].producer() else n.inputs[0].name
        for n in net.graph
        if n.op_type == "QuantizeLinear"
    }


def test_removes_only_pairs_no_integer_kernel_uses(helpers, tmp_path):
    net, x = _quantized(helpers, tmp_path)
    # x and relu0 start and end QLinearConv "first", hswish2 and relu2 "middle"; the pairs
    # on hswish1 (→ float ConvTranspose) and on upsample_in_group's output (→ "last", a
    # float Conv: its output is the graph output) sit between float kernels: idle
    assert _pairs(net) == {"x", "relu0", "hswish1", "hswish2", "relu2", "upsample_in_group"}
    integer = {n.name for n in int8_nodes(net.graph, ORT_CPU.qlinear_ops)}
    assert integer == {"first", "middle"}
    before = helpers.clone(net)
    result, p = helpers.run_pass("quant::ort_idle_pairs", net)
    assert result.modified and p.stats["pairs_removed"] == 2
    assert _pairs(net) == {"x", "relu0", "hswish2", "relu2"}
    assert {n.name for n in int8_nodes(net.graph, ORT_CPU.qlinear_ops)} == integer
    helpers.assert_idempotent("quant::ort_idle_pairs", net)

    reference = helpers.run_ort(_net(), {"x": x})[0]  # the float graph
    error_before = np.abs(helpers.run_ort(before, {"x": x})[0] - reference).max()
    error_after = np.abs(helpers.run_ort(net, {"x": x})[0] - reference).max()
    assert error_after <= error_before  # two roundings fewer
    _, graph = _optimized(net, tmp_path / "optimized.onnx")
    ops = [n.op_type for n in graph.node]
    assert ops.count("QLinearConv") == 2
    assert ops.count("QuantizeLinear") < sum(
        n.op_type == "QuantizeLinear" for n in _optimized(before, tmp_path / "b.onnx")[1].node
    )
