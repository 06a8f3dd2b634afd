"""The core of a scaled dot-product attention in an exported graph, found from its Softmax.

    logits = MatMul(a, b) ─ [Mul/Div by scalar]… ─ [Add(bias)] ─ Softmax(last axis) = p
    out    = MatMul(p, v)                      (a: [.., Nq, dk], b: [.., dk, Nk], v: [.., Nk, dv])

or, as EfficientViT and SHViT write it, `out = MatMul(v, Transpose(p))` on channel-major
v [.., dv, Nk]. Every value inside the core is read only by the next node of the core.

The ONNX `Attention` op (opset 23; what torch.onnx exports `scaled_dot_product_attention` to
from opset 23 on) is the same core in one node: q [B,Hq,Nq,dk] and k, v [B,Hkv,Nk,·], or the
heads merged on the last axis ([B,N,H·d], with `q_num_heads`/`kv_num_heads`), an additive
float `attn_mask` as the bias and `scale` (default 1/√dk). Causal, soft-capped or cached
(past key/value) attention and a boolean mask are not taken.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx_ir as ir

from edgec.graph_macs import attention_dims
from edgec.passes.attention._explain import NoMatch
from edgec.passes.attention._layout_trace import scalar_factor
from edgec.passes.speed._util import attr, only_consumer, producer, static_shape


@dataclasses.dataclass
class Core:
    a: ir.Value
    b: ir.Value
    v: ir.Value
    out: ir.Value
    scale: float
    bias: ir.Value | None
    nodes: list[ir.Node]
    channel_major_out: bool  # out = v·pᵀ ([.., dv, Nq]) instead of p·v ([.., Nq, dv])
    logits_shape: tuple[int, ...] | None
    b_is_key: bool = False  # b is k [.., Nk, dk] (the Attention op), not kᵀ [.., dk, Nk]
    kv_heads: int | None = None  # k's and v's heads when fewer than q's (grouped queries)
    merged_heads: bool = False  # a, b, v and out are [B, N, heads·d] (the Attention op, 3-D)


def _scaled_matmul(value: ir.Value) -> bool:
    """`value` is a MatMul's output, possibly scaled by constants on the way."""
    while (node := value.producer()) is not None and (factor := scalar_factor(node)):
        value = factor[1]
    return producer(value, "MatMul") is not None


def is_candidate(softmax: ir.Node) -> bool:
    """A Softmax whose input comes (through scalings and one Add) from a MatMul, or the ONNX
    Attention op."""
    if softmax.domain not in ("", "ai.onnx"):
        return False
    if softmax.op_type == "Attention":
        return True
    if softmax.op_type != "Softmax":
        return False
    value = softmax.inputs[0]
    add = producer(value, "Add")
    if add is not None:
        return any(_scaled_matmul(x) for x in add.inputs)
    return _scaled_matmul(value)


def _single_reader(value: ir.Value, reader: ir.Node) -> None:
    if only_consumer(value) is not reader:
        raise NoMatch(f"{value.name!r} is read outside the attention")


def find_core(softmax: ir.Node) -> Core:
    """The attention core around `softmax` (or the Attention op), or NoMatch saying why it is
    not one."""
    if softmax.op_type == "Attention":
        return _attention_op_core(softmax)
    p = softmax.outputs[0]
    rank = len(p.shape) if p.shape is not None else None
    if rank is None or attr(softmax, "axis", -1) not in (-1, rank - 1):
        raise NoMatch("the Softmax is not over the last axis of a known-rank tensor")
    nodes = [softmax]
    value, bias, scale = softmax.inputs[0], None, 1.0
    add = producer(value, "Add")
    if add is not None:
        _single_reader(value, softmax)
        x, y = add.inputs
        if not _scaled_matmul(x):
            x, y = y, x
        nodes.append(add)
        value, bias = x, y
    while (node := value.producer()) is not None and (factor := scalar_factor(node)):
        _single_reader(value, nodes[-1])
        scale *= factor[0]
        nodes.append(node)
        value = factor[1]
    qk = producer(value, "MatMul")
    if qk is None:
        raise NoMatch("the logits are not a MatMul")
    _single_reader(value, nodes[-1])
    nodes.append(qk)
    reader = only_consumer(p)
    if reader is None:
        raise NoMatch("the attention weights are read more than once")
    if reader.op_type == "MatMul" and reader.inputs[0] is p:
        av, v, channel_major = reader, reader.inputs[1], False
    elif reader.op_type == "Transpose":
        av = only_consumer(reader.outputs[0])
        if av is None or av.op_type != "MatMul" or av.inputs[1] is not reader.outputs[0]:
            raise NoMatch("the transposed attention weights do not multiply v")
        perm = list(attr(reader, "perm"))
        if perm != [*range(rank - 2), rank - 1, rank - 2]:
            raise NoMatch("the attention weights are transposed other than on their last axes")
        nodes.insert(0, reader)
        v, channel_major = av.inputs[0], True
    else:
        raise NoMatch("the attention weights do not multiply v in a MatMul")
    nodes.insert(0, av)
    nodes.reverse()  # producer order: qk, scalings, add, softmax, [transpose], av
    a, b = qk.inputs
    return Core(a, b, v, av.outputs[0], scale, bias, nodes, channel_major, static_shape(value))


def _attention_op_core(node: ir.Node) -> Core:
    q, k, v, mask = (list(node.inputs) + [None] * 4)[:4]
    if any(x is not None for x in node.inputs[4:]):
        raise NoMatch("the Attention op reads a past key/value cache")
    if any(o.uses() or o.is_graph_output() for o in node.outputs[1:]):
        raise NoMatch("the Attention op's cache or logits outputs are read")
    if attr(node, "is_causal", 0):
        raise NoMatch("causal attention (is_causal=1) is not split")
    if attr(node, "softcap", 0.0):
        raise NoMatch("soft-capped logits (softcap ≠ 0) are not split")
    shapes = [static_shape(x) for x in (q, k, v)]
    if any(s is None for s in shapes):
        raise NoMatch("q, k and v of the Attention op have no static shapes")
    dims = attention_dims(node, *shapes)
    if isinstance(dims, str):
        raise NoMatch(dims)
    heads, kv_heads = dims.heads, dims.kv_heads
    if heads % kv_heads:
        raise NoMatch("q's heads are not a multiple of k's and v's")
    if mask is not None and mask.dtype not in (ir.DataType.FLOAT, ir.DataType.FLOAT16):
        raise NoMatch("the attention mask is not an additive float bias")
    scale = attr(node, "scale", None)
    return Core(
        q,
        k,
        v,
        node.outputs[0],
        1.0 / float(np.sqrt(dims.dk)) if scale is None else float(scale),
        mask,
        [node],
        False,
        (dims.batch, heads, dims.nq, dims.nk),
        b_is_key=True,
        kv_heads=kv_heads,
        merged_heads=dims.merged,
    )
