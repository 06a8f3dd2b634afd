"""attention::cga_fusion — EfficientViT cascaded group attention as one grouped projection up
front, then token-major heads on Gemm.

The exported cascaded group attention (CGA) is `h` sequential heads on NCHW tensors. Per head
ORT runs a 1×1 Conv and a depthwise Conv (each wrapped in NCHWc ReorderInput/ReorderOutput),
a Split, four Reshapes, two (Fused)MatMuls, a bias Add, a Softmax and the cascade Add:
about 17 kernels for a few thousand MACs, so the block is dispatch-bound.

Matched graph (one block; `o_i` feeds the next head's Add and the Concat)::

    X[B,C,H,W] ─ Split(axis=1, h equal) ─ x_0 … x_{h-1}
    head i:  f_i = x_0 (i = 0) | Add(o_{i-1}, x_i)
             Conv1×1(f_i; W_i, b_i) ─ [Reshape same shape] ─ Split(axis=1, [kd, kd, d]) ─ q, k, v
             q ─ DepthwiseConv(k×k, same) ─ Reshape[B,kd,N] ─ [Mul(scalar s)] ─ Transpose(0,2,1) ─┐
             k ─ Reshape[B,kd,N] ────────────────────────── MatMul ─ [Mul(s)] ─ [Add(bias[N,N])]
             ─ Softmax(-1) ─ Transpose(0,2,1) ─ MatMul(v.Reshape[B,d,N], ·) ─ Reshape[B,d,H,W] = o_i
    Concat(o_0 … o_{h-1}, axis=1) [─ Relu]

Rewritten (linearity: Conv(x_i + o) = Conv(x_i) + W_i·o, so all heads' x_i-projections are
one grouped conv up front and only the cascade term stays sequential)::

    P = Conv(X; concat W_i, concat b_i, group=h) ─ Transpose(0,2,3,1) ─ Reshape[N,S] ─ Split ─ P_i
    head i:  qkv_i = P_0 (i = 0) | Gemm(o_{i-1}[N,d], W_iᵀ, C=P_i)
             Split(axis=-1, [kd, kd, d]) ─ q, k, v                       (token-major [N, ·])
             q ─ Reshape[1,H,W,kd] ─ Transpose(0,3,1,2) ─ DepthwiseConv(s·W_dw, s·b_dw) ─
               Transpose(0,2,3,1) ─ Reshape[N,kd]                       (ORT: ReorderInput/Output
                                                                         with channels_last)
             Gemm(q, k, C=bias, transB=1) ─ Softmax(-1) ─ MatMul(·, v) = o_i      [N, d]
    Concat(o_i, axis=-1) [─ Relu] ─ Reshape[B,H,W,C] ─ Transpose(0,3,1,2)

The price: for heads i ≥ 1 the cascade projection W_i·o_{i-1} is a second product beside the
up-front one, and W_iᵀ is stored beside the grouped conv's W_i — on EfficientViT-M0 about 2 %
more MACs and parameters (stats `macs_added`, `weights_added`), traded for far fewer kernels.

The scale `s` sits on q in timm's export and on the logits in the official microsoft/Cream
layout; either (or both) is matched. A missing bias Add (cleanup removed an all-zero table)
matches too.

For B > 1 (EfficientViT stage 1 runs its 4 windows as a batch) the same structure is kept
with 3-D MatMul + Add instead of Gemm. The attention scale `s` is folded into the q
depthwise conv (exact for powers of two). Needs the bias as a constant (run
cleanup::fold_bias_gather first) and static shapes. Anything that does not match exactly —
unequal head splits, a value read outside its head, non-depthwise q conv, a non-constant
bias or weight — is left alone, counted in `kept_unmatched`, with the reason in
`explanations` (one line per candidate Concat).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx_ir as ir

from edgec.pass_manager import EdgecPass, register_pass
from edgec.passes._graph import const_array, drop_if_unused
from edgec.passes.attention._explain import Explanations, NoMatch
from edgec.passes.attention._layout_trace import scalar_factor
from edgec.passes.speed._util import (
    attr,
    is_conv_same_depthwise,
    new_initializer,
    only_consumer,
    producer,
    static_shape,
)

# the exporter's record of which module a node came from, copied onto the nodes that replace
# a block (profiles and tools attribute time to modules through it)
_PROVENANCE = ("namespace", "pkg.torch.onnx.name_scopes", "pkg.torch.onnx.class_hierarchy")


def _need(cond: bool, why: str) -> None:
    if not cond:
        raise NoMatch(why)


@dataclasses.dataclass
class _Head:
    nodes: list[ir.Node]
    feat_add: ir.Node | None
    w: np.ndarray  # [Cout, Cin] projection weight
    b: np.ndarray  # [Cout]
    dw: ir.Node
    dw_w: np.ndarray
    dw_b: np.ndarray
    scale: float
    bias: np.ndarray | None  # [N, N]; None: no bias Add
    kd: int
    d: int


def _perm(node: ir.Node) -> list[int] | None:
    p = attr(node, "perm")
    return None if p is None else list(p)


def _is_onnx(node: ir.Node | None, op: str) -> bool:
    return node is not None and node.op_type == op and node.domain in ("", "ai.onnx")


def _scalar_mul(value: ir.Value, reader: ir.Node) -> tuple[float, ir.Value, ir.Node] | None:
    """`value = Mul(x, scalar constant)` read only by `reader` → (scalar, x, the Mul)."""
    mul = producer(value, "Mul")
    if mul is None:
        return None
    _need(only_consumer(value) is reader, "the scaled value is read outside the head")
    factor = scalar_factor(mul)
    _need(factor is not None, "the attention scale is not a constant scalar")
    return factor[0], factor[1], mul


def is_candidate(concat: ir.Node) -> bool:
    """A channel Concat of ≥ 2 values each reshaped from a MatMul: what CGA heads end in."""
    if not _is_onnx(concat, "Concat") or len(concat.inputs) < 2:
        return False
    first = producer(concat.inputs[0], "Reshape")
    return first is not None and producer(first.inputs[0], "MatMul") is not None


class _Matcher:
    def __init__(self, concat: ir.Node):
        self.concat = concat

    def run(self):
        concat = self.concat
        _need(attr(concat, "axis") in (1, -3), "the heads are not concatenated on channels")
        outs = list(concat.inputs)
        h = len(outs)
        yshape = static_shape(concat.outputs[0])
        _need(yshape is not None and len(yshape) == 4, "the output is not a static 4-D map")
        bsz, c, hh, ww = yshape
        n = hh * ww
        heads: list[_Head] = []
        split_x = None
        for i, o4 in enumerate(outs):
            head, feat = self.match_head(o4, bsz, hh, ww, i)
            if i == 0:
                split_x = producer(feat, "Split")
                _need(
                    split_x is not None and feat is split_x.outputs[0],
                    "head 0 does not read the first output of a channel Split",
                )
                head.feat_add = None
            else:
                add = producer(feat, "Add")
                _need(
                    add is not None and only_consumer(feat) is not None,
                    f"head {i} has no cascade Add (previous head's output + its channel slice)",
                )
                a, b = add.inputs
                prev = outs[i - 1]
                if a is prev:
                    xi = b
                elif b is prev:
                    xi = a
                else:
                    raise NoMatch(f"head {i}'s Add does not read head {i - 1}'s output")
                _need(
                    xi.producer() is split_x and split_x.outputs[i] is xi,
                    f"head {i} does not add output {i} of the same channel Split",
                )
                _need(only_consumer(xi) is add, f"channel slice {i} is read outside its head")
                head.feat_add = add
                head.nodes.append(add)
            heads.append(head)
        # the split of X: axis 1, h equal outputs, each read once inside its head
        _need(
            split_x is not None and attr(split_x, "axis") in (1, -3) and len(split_x.outputs) == h,
            "the input Split is not on channels or has another number of outputs than heads",
        )
        xval = split_x.inputs[0]
        xshape = static_shape(xval)
        _need(
            xshape is not None and len(xshape) == 4 and xshape[0] == bsz and xshape[2:] == (hh, ww),
            "the block input is not a static 4-D map of the output's size",
        )
        cin = xshape[1]
        _need(cin % h == 0, "the input channels do not divide into the heads")
        for v in split_x.outputs:
            _need(static_shape(v) == (bsz, cin // h, hh, ww), "the channel Split is not equal")
        _need(
            only_consumer(split_x.outputs[0]) is heads[0].nodes[-1],
            "channel slice 0 is read outside head 0",
        )
        # each o_i: read by the Concat and (for i < h-1) by the next head's Add only
        for i, o4 in enumerate(outs):
            readers = [u.node for u in o4.uses()]
            expected = {id(concat)} | ({id(heads[i + 1].feat_add)} if i + 1 < h else set())
            _need(
                not o4.is_graph_output()
                and {id(r) for r in readers} == expected
                and len(readers) == len(expected),
                f"head {i}'s output is read outside the block",
            )
        kd, d = heads[0].kd, heads[0].d
        cout = heads[0].w.shape[0]
        for hd in heads:
            _need(
                hd.kd == kd and hd.d == d and hd.w.shape == (cout, cin // h),
                "the heads differ in key/value width",
            )
            _need(hd.bias is None or hd.bias.shape == (n, n), "an attention bias is not [N, N]")
        _need(d * h == c, "the heads' value widths do not add up to the output channels")
        return split_x, heads, (bsz, c, hh, ww, cin, kd, d)

    def match_head(self, o4: ir.Value, bsz: int, hh: int, ww: int, i: int):
        n = hh * ww

        def need(cond: bool, why: str) -> None:
            _need(cond, f"head {i}: {why}")

        nodes: list[ir.Node] = []
        r_o = producer(o4, "Reshape")
        need(r_o is not None, "its output is not a Reshape")
        nodes.append(r_o)
        mm_o = producer(r_o.inputs[0], "MatMul")
        need(mm_o is not None and only_consumer(r_o.inputs[0]) is r_o, "no v·attnᵀ MatMul")
        nodes.append(mm_o)
        v2, smt = mm_o.inputs
        tr_s = producer(smt, "Transpose")
        need(
            tr_s is not None and _perm(tr_s) == [0, 2, 1] and only_consumer(smt) is mm_o,
            "the attention is not transposed once before ·v",
        )
        nodes.append(tr_s)
        sm = producer(tr_s.inputs[0], "Softmax")
        need(
            sm is not None
            and attr(sm, "axis", -1) in (-1, 2)
            and only_consumer(sm.outputs[0]) is tr_s,
            "no Softmax over the keys",
        )
        nodes.append(sm)
        # the attention bias (absent when cleanup removed an all-zero table)
        logits, reader, bias = sm.inputs[0], sm, None
        add_b = producer(logits, "Add")
        if add_b is not None:
            need(only_consumer(logits) is sm, "the biased logits are read outside the head")
            for x, y in (add_b.inputs, add_b.inputs[::-1]):
                arr = const_array(y)
                if arr is not None:
                    bias, logits = arr, x
                    break
            need(bias is not None, "the attention bias is not a constant (run cleanup first)")
            need(
                bias.dtype == np.float32 and bias.shape in ((n, n), (1, n, n)),
                f"the attention bias is not float32 [N, N] (N = {n})",
            )
            if bsz == 1 or bias.ndim == 2:
                bias = bias.reshape(n, n).astype(np.float32)
            nodes.append(add_b)
            reader = add_b
        need(only_consumer(logits) is reader, "the logits are read outside the head")
        # the official layout scales the logits ((qᵀk)·s + bias), timm scales q (q·s)ᵀk
        scale = 1.0
        scaled = _scalar_mul(logits, reader)
        if scaled is not None:
            scale, logits, reader = scaled
            nodes.append(reader)
        mm_l = producer(logits, "MatMul")
        need(mm_l is not None, "the logits are not a MatMul")
        need(only_consumer(logits) is reader, "the logits are read outside the head")
        nodes.append(mm_l)
        qt, k2 = mm_l.inputs
        tr_q = producer(qt, "Transpose")
        need(
            tr_q is not None and _perm(tr_q) == [0, 2, 1] and only_consumer(qt) is mm_l,
            "q is not transposed once before qᵀ·k",
        )
        nodes.append(tr_q)
        qs = tr_q.inputs[0]
        nxt = tr_q
        scaled_q = _scalar_mul(qs, tr_q)
        if scaled_q is not None:
            s_q, qs, mul_q = scaled_q
            scale *= s_q
            nodes.append(mul_q)
            nxt = mul_q
        r_q = producer(qs, "Reshape")
        need(r_q is not None and only_consumer(qs) is nxt, "q is not flattened by a Reshape")
        nodes.append(r_q)
        dw = r_q.inputs[0].producer()
        need(
            dw is not None and is_conv_same_depthwise(dw) and only_consumer(r_q.inputs[0]) is r_q,
            "q's conv is not a stride-1 'same' depthwise conv with constant weights",
        )
        nodes.append(dw)
        r_k = producer(k2, "Reshape")
        r_v = producer(v2, "Reshape")
        need(r_k is not None and r_v is not None, "k or v is not flattened by a Reshape")
        need(
            only_consumer(k2) is mm_l and only_consumer(v2) is mm_o,
            "k or v is read outside the head",
        )
        nodes += [r_k, r_v]
        q0, k0, v0 = dw.inputs[0], r_k.inputs[0], r_v.inputs[0]
        sp = producer(q0, "Split")
        need(
            sp is not None and list(sp.outputs) == [q0, k0, v0] and attr(sp, "axis") in (1, -3),
            "q, k, v are not the three outputs of one channel Split",
        )
        for val, reader in ((q0, dw), (k0, r_k), (v0, r_v)):
            need(only_consumer(val) is reader, "q, k or v is read twice")
        nodes.append(sp)
        kd = static_shape(q0)[1]
        d = static_shape(v0)[1]
        need(static_shape(k0)[1] == kd, "q and k differ in width")
        # shapes along the way
        need(
            static_shape(q0) == (bsz, kd, hh, ww)
            and static_shape(v0) == (bsz, d, hh, ww)
            and static_shape(qs) == (bsz, kd, n)
            and static_shape(k2) == (bsz, kd, n)
            and static_shape(v2) == (bsz, d, n)
            and static_shape(o4) == (bsz, d, hh, ww)
            and static_shape(logits) == (bsz, n, n),
            "shapes are not static or not those of one head",
        )
        dw_w = const_array(dw.inputs[1])
        need(dw_w.shape[0] == kd and dw_w.dtype == np.float32, "q's conv is not float32 [kd,…]")
        dw_b = (
            const_array(dw.inputs[2]) if len(dw.inputs) > 2 and dw.inputs[2] is not None else None
        )
        dw_b = np.zeros(kd, np.float32) if dw_b is None else dw_b
        qkv = sp.inputs[0]
        rs = producer(qkv, "Reshape")
        if rs is not None:
            need(
                static_shape(rs.inputs[0]) == static_shape(qkv) and only_consumer(qkv) is sp,
                "the qkv Reshape changes the shape",
            )
            nodes.append(rs)
            qkv = rs.inputs[0]
        conv = producer(qkv, "Conv")
        need(
            conv is not None and only_consumer(qkv) is (rs if rs is not None else sp),
            "qkv is not a Conv read only by its split",
        )
        w = const_array(conv.inputs[1])
        need(
            w is not None
            and w.ndim == 4
            and w.shape[2:] == (1, 1)
            and w.dtype == np.float32
            and attr(conv, "group", 1) == 1
            and list(attr(conv, "strides", [1, 1])) == [1, 1]
            and list(attr(conv, "pads", [0, 0, 0, 0])) == [0, 0, 0, 0]
            and list(attr(conv, "dilations", [1, 1])) == [1, 1]
            and attr(conv, "auto_pad", "NOTSET") in ("NOTSET", b"NOTSET"),
            "the qkv conv is not a plain 1×1 conv with constant float32 weights",
        )
        need(w.shape[0] == 2 * kd + d, "the qkv conv's width is not 2·kd + d")
        b = (
            const_array(conv.inputs[2])
            if len(conv.inputs) > 2 and conv.inputs[2] is not None
            else None
        )
        b = np.zeros(w.shape[0], np.float32) if b is None else b
        nodes.append(conv)
        head = _Head(nodes, None, w[:, :, 0, 0], b, dw, dw_w, dw_b, scale, bias, kd, d)
        return head, conv.inputs[0]


def _i64(graph: ir.Graph, name: str, values) -> ir.Value:
    return new_initializer(graph, name, np.asarray(values, dtype=np.int64))


def _rewrite(
    graph: ir.Graph, concat: ir.Node, split_x: ir.Node, heads: list[_Head], dims
) -> tuple[int, int]:
    """Replace the block; returns the weights and MACs the cascade projections add."""
    bsz, c, hh, ww, _cin, kd, d = dims
    h = len(heads)
    n = hh * ww
    cout = heads[0].w.shape[0]
    s = cout * h
    tag = (concat.outputs[0].name or "cga").replace("/", "_")
    new: list[ir.Node] = []

    def add(op, inputs, attributes=None, num_outputs=1):
        node = ir.node(op, inputs, attributes=attributes, num_outputs=num_outputs)
        new.append(node)
        return node.outputs if num_outputs > 1 else node.outputs[0]

    two_d = bsz == 1
    lead = [n] if two_d else [bsz, n]
    wcat = np.concatenate([hd.w for hd in heads], 0)[:, :, None, None].astype(np.float32)
    bcat = np.concatenate([hd.b for hd in heads], 0).astype(np.float32)
    p = add(
        "Conv",
        [
            split_x.inputs[0],
            new_initializer(graph, f"{tag}_cga_wcat", wcat),
            new_initializer(graph, f"{tag}_cga_bcat", bcat),
        ],
        {"group": h, "kernel_shape": [1, 1], "strides": [1, 1], "pads": [0, 0, 0, 0]},
    )
    pt = add("Transpose", [p], {"perm": [0, 2, 3, 1]})
    pt = add("Reshape", [pt, _i64(graph, f"{tag}_cga_shape_p", [*lead, s])])
    parts = add(
        "Split", [pt, _i64(graph, f"{tag}_cga_split_p", [cout] * h)], {"axis": -1}, num_outputs=h
    )
    split_qkv = _i64(graph, f"{tag}_cga_split_qkv", [kd, kd, d])
    shape_q4 = _i64(graph, f"{tag}_cga_shape_q4", [bsz, hh, ww, kd])
    shape_q = _i64(graph, f"{tag}_cga_shape_q", [*lead, kd])
    outs = []
    o = None
    for i, hd in enumerate(heads):
        if i == 0:
            qkv = parts[0]
        else:
            wt = new_initializer(graph, f"{tag}_cga_w{i}_t", np.ascontiguousarray(hd.w.T))
            if two_d:
                qkv = add("Gemm", [o, wt, parts[i]])
            else:
                qkv = add("Add", [add("MatMul", [o, wt]), parts[i]])
        q, k, v = add("Split", [qkv, split_qkv], {"axis": -1}, num_outputs=3)
        q = add("Reshape", [q, shape_q4])
        q = add("Transpose", [q], {"perm": [0, 3, 1, 2]})
        dw_attrs = {a.name: a.value for a in hd.dw.attributes.values()}
        sc = np.float32(hd.scale)
        q = add(
            "Conv",
            [
                q,
                new_initializer(graph, f"{tag}_cga_dw{i}_w", (hd.dw_w * sc).astype(np.float32)),
                new_initializer(graph, f"{tag}_cga_dw{i}_b", (hd.dw_b * sc).astype(np.float32)),
            ],
            dw_attrs,
        )
        q = add("Transpose", [q], {"perm": [0, 2, 3, 1]})
        q = add("Reshape", [q, shape_q])
        bias = None if hd.bias is None else new_initializer(graph, f"{tag}_cga_bias{i}", hd.bias)
        if two_d:
            logits = add("Gemm", [q, k] + ([bias] if bias is not None else []), {"transB": 1})
        else:
            logits = add("MatMul", [q, add("Transpose", [k], {"perm": [0, 2, 1]})])
            logits = logits if bias is None else add("Add", [logits, bias])
        attn = add("Softmax", [logits], {"axis": -1})
        o = add("MatMul", [attn, v])
        outs.append(o)
    y = add("Concat", outs, {"axis": -1})
    # a Relu reading only the Concat is applied before going back to NCHW (same values)
    relu = only_consumer(concat.outputs[0])
    old_out = concat.outputs[0]
    if _is_onnx(relu, "Relu"):
        y = add("Relu", [y])
        old_out = relu.outputs[0]
    else:
        relu = None
    y = add("Reshape", [y, _i64(graph, f"{tag}_cga_shape_y", [bsz, hh, ww, c])])
    y = add("Transpose", [y], {"perm": [0, 3, 1, 2]})
    y.shape, y.type = old_out.shape, old_out.type
    provenance = {k: v for k, v in concat.metadata_props.items() if k in _PROVENANCE}
    for node in new:
        node.metadata_props.update(provenance)
    graph.insert_before(split_x, new)
    was_output, name = old_out.is_graph_output(), old_out.name
    ir.convenience.replace_all_uses_with(old_out, y, replace_graph_outputs=True)
    old_nodes = [split_x, concat] + ([relu] if relu is not None else [])
    for hd in heads:
        old_nodes += hd.nodes
    consts = [v for nd in old_nodes for v in nd.inputs if v is not None and v.is_initializer()]
    graph.remove(old_nodes, safe=True)
    if was_output:
        old_out.name = None
        y.name = name
    for value in {id(v): v for v in consts}.values():
        drop_if_unused(value)
    cascade = sum(hd.w.size for hd in heads[1:])
    return cascade, bsz * n * cascade


@register_pass
class CascadedGroupAttentionFusion(EdgecPass):
    """Rewrite EfficientViT cascaded group attention into one grouped projection and a
    token-major Gemm chain per head (see the module docstring for the graphs).

    Stats: `blocks_rewritten`, `heads_rewritten`, `weights_added` and `macs_added` (the
    cascade projections of heads 1…h-1), `kept_unmatched` (candidate Concats of reshaped
    MatMul outputs that are not CGA; `explanations` says why, one line each).
    """

    id = "attention::cga_fusion"

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        graph = model.graph
        self.explanations = Explanations()
        modified = False
        for node in list(graph):
            if node.graph is not graph or not is_candidate(node):
                continue
            try:
                split_x, heads, dims = _Matcher(node).run()
            except NoMatch as why:
                self.explanations.add(node, why)
                self.stats["kept_unmatched"] += 1
                continue
            weights, macs = _rewrite(graph, node, split_x, heads, dims)
            self.stats["blocks_rewritten"] += 1
            self.stats["weights_added"] += weights
            self.stats["macs_added"] += macs
            self.stats["heads_rewritten"] += len(heads)
            modified = True
        return ir.passes.PassResult(model, modified)
