"""`quant::ort_idle_pairs`: remove the activation pairs no ONNX Runtime integer kernel uses.

    before: HardSwish ─ Q ─ DQ ─ dw Conv ─ HardSwish     (the dw Conv runs float on ORT)
    after:  HardSwish ────────── dw Conv ─ HardSwish

ORT runs a Q as the end of an integer kernel's QDQ group, and a DQ as the start of one, only
when that group is complete (`edgec.cost_model.ort_qdq.int8_nodes`, with ORT's integer ops
`fusion.ORT_CPU.qlinear_ops`). A pair whose producer (or the op before its Relu/Clip) is not
such a kernel and none of whose readers is one runs as a QuantizeLinear and a
DequantizeLinear kernel on a float tensor: time, and a rounding the float kernel after it does
not need (LowFormer: a HardSwish or an Add feeding a Conv that ORT runs in float, a float
Conv feeding a Mul). Such pairs go; every integer kernel keeps its groups (the same
`int8_nodes`). Pairs beside data-movement ops stay: ORT moves Q and DQ across those. Runs on
ORT targets before `quant::ort_fold_weights` (a ConvTranspose that loses its input pair can
then have its weight folded); a second run finds no idle pair.
"""

from __future__ import annotations

import onnx_ir as ir

from edgec.cost_model.fusion import ORT_CPU
from edgec.cost_model.ort_qdq import int8_nodes
from edgec.pass_manager import EdgecPass, register_pass
from edgec.passes._graph import bypass
from edgec.passes.quant import _policy


@register_pass
class OrtIdlePairs(EdgecPass):
    id = "quant::ort_idle_pairs"

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        integer = int8_nodes(model.graph, ORT_CPU.qlinear_ops)
        for q in list(model.graph):
            dqs = _idle_pair(q, integer)
            if dqs is None:
                continue
            source = q.inputs[0]
            if not all(bypass(dq, source) for dq in dqs) or not bypass(q, source):
                continue
            self.stats["pairs_removed"] += 1
            self.stats[f"pairs_before_{_reader_ops(source)}"] += 1
        return ir.passes.PassResult(model, modified=bool(self.stats["pairs_removed"]))


def _idle_pair(q: ir.Node, integer: set[ir.Node]) -> list[ir.Node] | None:
    """The DQs of `q` when no integer kernel uses this pair, else None."""
    if q.op_type != "QuantizeLinear" or q.outputs[0].is_graph_output():
        return None
    producer = q.inputs[0].producer()
    if producer is not None and producer.op_type in _policy.ACTIVATIONS:
        producer = producer.inputs[0].producer()  # op → Relu/Clip → Q is one group in ORT
    if producer is not None and (producer in integer or _moves_data(producer)):
        return None
    dqs = [use.node for use in q.outputs[0].uses()]
    if not dqs or any(dq.op_type != "DequantizeLinear" for dq in dqs):
        return None
    for dq in dqs:
        readers = [use.node for use in dq.outputs[0].uses()]
        if dq.outputs[0].is_graph_output() or not readers:
            return None
        if any(reader in integer or _moves_data(reader) for reader in readers):
            return None
    return dqs


def _moves_data(node: ir.Node) -> bool:
    return node.op_type in _policy.DATA_MOVEMENT


def _reader_ops(value: ir.Value) -> str:
    return "_".join(sorted({use.node.op_type for use in value.uses()}))
