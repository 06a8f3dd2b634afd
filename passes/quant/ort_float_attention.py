"""`quant::ort_float_attention`: the attention core runs float on ONNX Runtime (x86).

    before (one head of cga_fusion's cascaded attention; no marks):
      qkv ─ Split ┬ q ─ dw Conv ─ Reshape ─ Gemm(q, k, bias) ─ Softmax ─ MatMul(v, ·) ─ head
                  ├ k ──────────────────────────┘                         │
                  └ v ────────────────────────────────────────────────────┘
      head ─ Gemm(·, W, C=next chunk) ─ next head … ;  Concat(heads) ─ Relu ─ proj Conv
    after:  the same graph; the dw Conv, both products, the cascade Gemm and the Concat carry
            edgec.quant.float_activations = REASON

Marked (before calibration, so nothing inside gets a Q/DQ pair):

- a MatMul or Gemm whose second operand is an activation (q·kᵀ, attention·v);
- a Gemm with an activation `C` (cga_fusion's cascade increment `W·head + chunk`), or its
  MatMul form `MatMul(head, W) → Add(·, chunk)` whose sum feeds the next head (both marked);
- a depthwise Conv whose output reaches only marked products through data-movement ops
  (the query's depthwise convolution in EfficientViT);
- a Concat whose every input comes from marked nodes through data-movement ops.

`quant::activations` then quantizes only the tensor entering the island (the qkv projection's
output) and the one leaving it (the projection's input), `quant::weights` still stores the
marked layers' weights in 8 (or 4) bits, and `quant::ort_fold_weights` lets ORT fold them to
float at load; the layer record says `w8a32`/`w4a32` (or `fp32` for the products) and why.

Why (docs/quantization.md, measured at 1 thread on an Intel Xeon with AVX-512 VNNI and AMX,
ORT 1.30, EfficientViT-M0): inside the attention ORT's integer kernels work on 16-wide heads
and 49–196 tokens, where `QLinearMatMul`, `QGemm` + the float `Add` ORT cannot fuse, and the
`QuantizeLinear` after each Softmax and Split cost more than MLAS's float kernels; the float
island took W8A8 from 0.89–0.92× to 0.82–0.83× of the fp32 latency. The realisation is
ORT's alone: other backends lower the graph before the `ort_*` passes. A second run finds the
marks and changes nothing.
"""

from __future__ import annotations

import onnx_ir as ir

from edgec.pass_manager import EdgecPass, register_pass
from edgec.passes._graph import const_array
from edgec.passes.quant import _policy

REASON = "attention core kept float: ORT's float kernels are faster there (x86)"


@register_pass
class OrtFloatAttention(EdgecPass):
    id = "quant::ort_float_attention"

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        nodes = [n for n in model.graph if _policy.KEEP_FLOAT_KEY not in n.metadata_props]
        for rule in (_is_product, _is_cascade_gemm):
            for node in nodes:
                if rule(node):
                    self._mark(node)
        for node in nodes:
            add = _cascade_add(node)
            if add is not None:
                self._mark(node)
                self._mark(add)
        for node in nodes:
            if _is_query_conv(node) or _is_heads_concat(node):
                self._mark(node)
        return ir.passes.PassResult(model, modified=bool(self.stats["nodes_marked"]))

    def _mark(self, node: ir.Node) -> None:
        if node.metadata_props.get(_policy.FLOAT_ACTIVATIONS_KEY) == REASON:
            return
        node.metadata_props[_policy.FLOAT_ACTIVATIONS_KEY] = REASON
        self.stats["nodes_marked"] += 1
        self.stats[f"{node.op_type}_marked"] += 1


def _is_product(node: ir.Node) -> bool:
    """MatMul/Gemm of two activations."""
    return (
        node.op_type in ("MatMul", "Gemm")
        and len(node.inputs) >= 2
        and not any(_policy.is_constant(v) for v in node.inputs[:2])
    )


def _is_cascade_gemm(node: ir.Node) -> bool:
    """Gemm with a constant weight and an activation C."""
    if node.op_type != "Gemm" or len(node.inputs) < 3 or node.inputs[2] is None:
        return False
    return _policy.is_constant(node.inputs[1]) and not _policy.is_constant(node.inputs[2])


def _cascade_add(node: ir.Node) -> ir.Node | None:
    """The Add of a cascade increment in MatMul form, `MatMul(head, W) + chunk`, else None.

    `head` comes from a marked node and the sum feeds the next head's marked products.
    """
    if node.op_type != "MatMul" or not _policy.is_constant(node.inputs[1]):
        return None
    uses = node.outputs[0].uses()
    if not _from_marked(node.inputs[0]) or len(uses) != 1 or uses[0].node.op_type != "Add":
        return None
    add = uses[0].node
    if any(_policy.is_constant(v) for v in add.inputs):
        return None
    return add if _reaches_marked(add.outputs[0]) else None


def _is_depthwise(node: ir.Node) -> bool:
    if node.op_type != "Conv" or len(node.inputs) < 2:
        return False
    weight = const_array(node.inputs[1])
    group = node.attributes["group"].as_int() if "group" in node.attributes else 1
    return weight is not None and weight.ndim == 4 and weight.shape[1] == 1 and group > 1


def _is_query_conv(node: ir.Node) -> bool:
    return _is_depthwise(node) and _feeds_only_marked(node.outputs[0])


def _is_heads_concat(node: ir.Node) -> bool:
    return node.op_type == "Concat" and bool(node.inputs) and all(map(_from_marked, node.inputs))


def _marked(node: ir.Node | None) -> bool:
    return node is not None and node.metadata_props.get(_policy.FLOAT_ACTIVATIONS_KEY) == REASON


def _feeds_only_marked(value: ir.Value) -> bool:
    """Every reader of `value`, through data-movement ops, is a marked node."""
    uses = value.uses()
    if not uses or value.is_graph_output():
        return False
    for use in uses:
        node = use.node
        if node.op_type in _policy.DATA_MOVEMENT and use.idx == 0:
            if not all(_feeds_only_marked(out) for out in node.outputs):
                return False
        elif not _marked(node):
            return False
    return True


def _reaches_marked(value: ir.Value) -> bool:
    """Some reader of `value`, through data-movement ops, is a marked node."""
    for use in value.uses():
        node = use.node
        if _marked(node):
            return True
        if node.op_type in _policy.DATA_MOVEMENT and any(map(_reaches_marked, node.outputs)):
            return True
    return False


def _from_marked(value: ir.Value) -> bool:
    """`value` is produced by a marked node, through data-movement ops."""
    node = value.producer()
    while node is not None and node.op_type in _policy.DATA_MOVEMENT and node.inputs:
        node = node.inputs[0].producer()
    return _marked(node)
