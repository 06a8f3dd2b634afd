"""attention::split_heads — multi-head attention as one chain per head on 4-D channels-first
tensors (the Neural Engine layout of Apple's transformer articles), with no 5-D reshapes.

Matched: every attention core (`_core.find_core`) whose logits are [B, H, Nq, Nk] with H > 1,
whose q, k, v come from their sources through layout ops only (Reshape, Transpose, Split,
Slice, Gather, Squeeze, Unsqueeze; scalar Mul/Div on the way are the scale) such that each
head's q, k and v is a contiguous block of channels of a source, and whose output reaches a
channels-first map or a token-major sequence through layout ops only. Where each element
comes from is not guessed from op patterns: the layout ops are run on index tensors
(`_layout_trace`), so any exporter's spelling of the same layout matches and any other layout
does not. timm's ViT (deit, Segmenter's encoder) before::

    P[B,N,3C] ─ Reshape[B,N,3,H,d] ─ Transpose(2,0,3,1,4) ─ Slice/Squeeze ─ q, k, v [B,H,N,d]
    k ─ Reshape ─ Transpose ─ Reshape[B,H,d,N] ─ Mul(√s);  q ─ Mul(√s)
    MatMul(q, kᵀ) ─ Softmax(-1) ─ MatMul(·, v) ─ Transpose(0,2,1,3) ─ Reshape[B,N,C] = Y

After (every tensor rank ≤ 4)::

    P ─ Transpose(0,2,1) ─ Reshape[B,3C,1,N] ─ Split(axis=1, 3H × d) ─ q_h, k_h, v_h [B,d,1,N]
    head h:  Transpose(Mul(q_h, s), 0,2,3,1)[B,1,N,d] · Reshape(k_h)[B,1,d,N]
             ─ [Add(bias_h)] ─ Softmax(-1) ─ MatMul(·, Transpose(v_h, 0,2,3,1)[B,1,N,d])
             ─ Transpose(0,3,1,2) = o_h [B,d,1,N]
    Concat(o_h, axis=1)[B,C,1,N] ─ Reshape[B,C,N] ─ Transpose(0,2,1) = Y

The ONNX `Attention` op (opset 23) is the same core in one node (`_core`): its q, k, v
([B,H,N,d], or [B,N,H·d] with the heads merged) are traced the same way, k/v heads shared by
grouped queries are read by every q head of their group, and `attn_mask` is the bias.

A channels-first source ([B,C,h,w], LowFormer's 1×1 conv) is only reshaped to [B,C,1,hw];
a channels-first sink is reached by one Reshape. Scales multiply into one Mul on q per head
(`√s·√s` becomes `s`: a float rounding, within the pass bound); a bias [.., H, Nq, Nk]
becomes one slice per head (a constant when it is one).

Left alone: single-head attention (SHViT; every EfficientViT-M cascade head, which the model
already computes as its own chain) — counted as `kept_single_head`; anything else that does
not match, counted as `kept_unmatched` with a reason per site in `explanations`. Needs static
shapes (cleanup::infer_shapes). Stats: `attentions_split`, `heads_split`.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx_ir as ir

from edgec.pass_manager import EdgecPass, create_pass, register_pass
from edgec.passes._graph import const_array, drop_if_unused, dtype_of, opset_version
from edgec.passes.attention._core import Core, find_core, is_candidate
from edgec.passes.attention._explain import Explanations, NoMatch
from edgec.passes.attention._layout_trace import trace_back, trace_forward
from edgec.passes.speed._util import new_initializer, static_shape


@dataclasses.dataclass
class _Operand:
    """One of q, k, v: head h is channels [starts[h], starts[h] + width) of `source`'s view."""

    source: ir.Value
    view: str  # "map" [B,C,h,w] | "tokens" [B,N,C] | "channels" [B,C,N]
    starts: list[int]
    width: int
    scale: float
    nodes: list[ir.Node]


def _views(shape: tuple[int, ...]):
    """(name, [B, C, N] array of flat source indices) for each channels-first reading."""
    base = np.arange(int(np.prod(shape)), dtype=np.int64)
    if len(shape) == 4:
        yield "map", base.reshape(shape[0], shape[1], shape[2] * shape[3])
    elif len(shape) == 3:
        yield "tokens", base.reshape(shape).transpose(0, 2, 1)
        yield "channels", base.reshape(shape)


def _heads_as_channels(per_head: np.ndarray, view: np.ndarray) -> list[int] | None:
    """First channel of each head when head h of `per_head` [B,H,d,N] is view[:, c:c+d, :]."""
    bsz, heads, width, tokens = per_head.shape
    if view.shape[0] != bsz or view.shape[2] != tokens:
        return None
    where = np.empty((3, view.size), dtype=np.int64)
    where[:, view.reshape(-1)] = np.indices(view.shape).reshape(3, -1)
    b_of, c_of, n_of = where
    grid_b = np.arange(bsz)[:, None, None]
    grid_c = np.arange(width)[None, :, None]
    grid_n = np.arange(tokens)[None, None, :]
    starts = []
    for h in range(heads):
        block = per_head[:, h]
        c0 = int(c_of[block[0, 0, 0]])
        if not (
            (b_of[block] == grid_b).all()
            and (n_of[block] == grid_n).all()
            and (c_of[block] == c0 + grid_c).all()
        ):
            return None
        starts.append(c0)
    return starts


def _operand(
    value: ir.Value, what: str, channel_axis: int, heads: int, opset: int, merged: bool
) -> _Operand:
    """Where each head of q, k or v (`value`; [B, N, heads·d] when `merged`) comes from."""
    traced = trace_back(value, opset)
    index = traced.index
    if merged:
        bsz, tokens, channels = index.shape
        index = index.reshape(bsz, tokens, heads, channels // heads).transpose(0, 2, 1, 3)
    if index.ndim != 4 or index.shape[1] != heads:
        raise NoMatch(f"{what} is not [B, {heads} heads, ·, ·]")
    per_head = index if channel_axis == 2 else index.transpose(0, 1, 3, 2)
    for view, array in _views(static_shape(traced.source)):
        starts = _heads_as_channels(per_head, array)
        if starts is not None:
            width = per_head.shape[2]
            return _Operand(traced.source, view, starts, width, traced.scale, traced.nodes)
    raise NoMatch(
        f"the heads of {what} are not contiguous channel blocks of {traced.source.name!r}"
    )


@dataclasses.dataclass
class _Sink:
    value: ir.Value
    kind: str  # "reshape" (to a channels-first shape) | "transpose" (to token-major [B,N,C])
    nodes: list[ir.Node]


def _sink(core: Core, opset: int) -> _Sink:
    """The last value below the output, through layout ops, that is the heads concatenated
    head-major on channels, as a map [B,C,h,w], [B,C,N] or a sequence [B,N,C]."""
    chain = trace_forward(core.out, opset)
    out = chain[0][1]
    if core.merged_heads:  # [B, Nq, H·dv] → [B, H, Nq, dv]
        bsz, tokens, channels = out.shape
        heads = core.logits_shape[1]
        out = out.reshape(bsz, tokens, heads, channels // heads).transpose(0, 2, 1, 3)
    bsz = out.shape[0]
    if core.channel_major_out:
        merged = out.reshape(bsz, -1, out.shape[3])
    else:
        merged = out.transpose(0, 1, 3, 2).reshape(bsz, -1, out.shape[2])
    channels, tokens = merged.shape[1:]
    for value, index, nodes in reversed(chain):
        shape = index.shape
        if shape[0] != bsz or int(np.prod(shape[1:])) != channels * tokens:
            continue
        if shape == (bsz, tokens, channels) and (index == merged.transpose(0, 2, 1)).all():
            return _Sink(value, "transpose", nodes)
        if shape[1] == channels and (index == merged.reshape(shape)).all():
            return _Sink(value, "reshape", nodes)
    raise NoMatch("the heads' outputs are not merged head-major on channels")


class _Builder:
    def __init__(self, graph: ir.Graph):
        self.graph, self.nodes = graph, []
        self._consts: dict[str, ir.Value] = {}

    def __call__(self, op, inputs, attributes=None, num_outputs=1):
        node = ir.node(op, inputs, attributes=attributes, num_outputs=num_outputs)
        self.nodes.append(node)
        return list(node.outputs) if num_outputs > 1 else node.outputs[0]

    def const(self, name: str, array) -> ir.Value:
        """A new initializer; the same `name` asked again gives the same value."""
        if name not in self._consts:
            self._consts[name] = new_initializer(self.graph, name, np.asarray(array))
        return self._consts[name]

    def ints(self, name: str, values) -> ir.Value:
        return self.const(name, np.asarray(values, dtype=np.int64))


def _channels_first(build: _Builder, op: _Operand, bsz: int, tag: str) -> ir.Value:
    """The operand's source as [B, C, 1, N]."""
    shape = static_shape(op.source)
    x = build("Transpose", [op.source], {"perm": [0, 2, 1]}) if op.view == "tokens" else op.source
    c = shape[2] if op.view == "tokens" else shape[1]
    n = int(np.prod(shape)) // (bsz * c)
    return build("Reshape", [x, build.ints(f"{tag}_cf_shape", [bsz, c, 1, n])])


def _head_slices(build: _Builder, operands: list[_Operand], bsz: int, tag: str):
    """{(id(operand), h): [B, width, 1, N]} — a Split per source where the heads tile it."""
    slices = {}
    groups: dict[tuple[int, str], list[_Operand]] = {}
    for op in operands:
        groups.setdefault((id(op.source), op.view), []).append(op)
    for k, ops in enumerate(groups.values()):
        cf = _channels_first(build, ops[0], bsz, f"{tag}_src{k}")
        blocks = sorted({(s, op.width) for op in ops for s in op.starts})
        ends = [s + w for s, w in blocks]
        tiles = blocks[0][0] == 0 and all(
            e == s for e, (s, _) in zip(ends, blocks[1:], strict=False)
        )
        total = _channels(ops[0])
        if tiles and ends[-1] == total:
            sizes = [w for _, w in blocks]
            outs = build(
                "Split",
                [cf, build.ints(f"{tag}_src{k}_split", sizes)],
                {"axis": 1},
                num_outputs=len(sizes),
            )
            outs = outs if isinstance(outs, list) else [outs]
            by_start = {s: o for (s, _), o in zip(blocks, outs, strict=True)}
        else:
            by_start = {
                s: build(
                    "Slice",
                    [
                        cf,
                        build.ints(f"{tag}_src{k}_s{s}", [s]),
                        build.ints(f"{tag}_src{k}_e{s}", [s + w]),
                        build.ints(f"{tag}_axis1", [1]),
                    ],
                )
                for s, w in blocks
            }
        for op in ops:
            for h, s in enumerate(op.starts):
                slices[(id(op), h)] = by_start[s]
    return slices


def _channels(op: _Operand) -> int:
    shape = static_shape(op.source)
    return shape[2] if op.view == "tokens" else shape[1]


def _bias_per_head(build: _Builder, bias: ir.Value | None, heads: int, tag: str):
    """Head h's bias: a slice of axis -3 when it has one per head, else the bias itself."""
    if bias is None:
        return [None] * heads
    shape = static_shape(bias)
    if shape is None or len(shape) > 4:
        raise NoMatch("the attention bias has no static shape of rank ≤ 4")
    if len(shape) < 3 or shape[-3] == 1:
        return [bias] * heads
    if shape[-3] != heads:
        raise NoMatch("the attention bias is neither per head nor shared")
    table = const_array(bias)
    if table is not None:
        return [build.const(f"{tag}_bias{h}", table[..., h : h + 1, :, :]) for h in range(heads)]
    axis = build.ints(f"{tag}_bias_axis", [-3])
    return [
        build(
            "Slice",
            [bias, build.ints(f"{tag}_b{h}", [h]), build.ints(f"{tag}_e{h}", [h + 1]), axis],
        )
        for h in range(heads)
    ]


def _rewrite(graph: ir.Graph, core: Core, ops, sink: _Sink, heads: int, bsz: int) -> None:
    a, b, v = ops
    build = _Builder(graph)
    tag = (sink.value.name or "attn").replace("/", "_")
    slices = _head_slices(build, [a, b, v], bsz, tag)
    biases = _bias_per_head(build, core.bias, heads, tag)
    scale = a.scale * b.scale * core.scale
    dtype = dtype_of(a.source) or ir.DataType.FLOAT
    nq, nk = core.logits_shape[-2:]
    kv_heads = core.kv_heads or heads
    outs = []
    for h in range(heads):
        kv = h * kv_heads // heads  # grouped queries: consecutive q heads share a k/v head
        q = slices[(id(a), h)]
        if scale != 1:
            q = build("Mul", [q, build.const(f"{tag}_scale", np.asarray(scale, dtype.numpy()))])
        q = build("Transpose", [q], {"perm": [0, 2, 3, 1]})  # [B,1,Nq,dk]
        k_shape = build.ints(f"{tag}_k_shape", [bsz, 1, b.width, nk])
        k = build("Reshape", [slices[(id(b), kv)], k_shape])  # [B,1,dk,Nk]
        logits = build("MatMul", [q, k])
        if biases[h] is not None:
            logits = build("Add", [logits, biases[h]])
        p = build("Softmax", [logits], {"axis": -1})
        if core.channel_major_out:
            v_shape = build.ints(f"{tag}_v_shape", [bsz, 1, v.width, nk])
            vh = build("Reshape", [slices[(id(v), kv)], v_shape])  # [B,1,dv,Nk]
            o = build("MatMul", [vh, build("Transpose", [p], {"perm": [0, 1, 3, 2]})])
            o = build("Reshape", [o, build.ints(f"{tag}_o_shape", [bsz, v.width, 1, nq])])
        else:
            vh = build("Transpose", [slices[(id(v), kv)]], {"perm": [0, 2, 3, 1]})  # [B,1,Nk,dv]
            o = build("Transpose", [build("MatMul", [p, vh])], {"perm": [0, 3, 1, 2]})
        outs.append(o)
    y = build("Concat", outs, {"axis": 1})  # [B, H·dv, 1, Nq]
    target = static_shape(sink.value)
    if sink.kind == "transpose":
        y = build("Reshape", [y, build.ints(f"{tag}_y_shape", [bsz, target[2], target[1]])])
        y = build("Transpose", [y], {"perm": [0, 2, 1]})
    else:
        y = build("Reshape", [y, build.ints(f"{tag}_y_shape", list(target))])
    old = sink.value
    y.shape, y.type = old.shape, old.type
    graph.insert_after(old.producer(), build.nodes)
    was_output, name = old.is_graph_output(), old.name
    ir.convenience.replace_all_uses_with(old, y, replace_graph_outputs=True)
    if was_output:
        old.name = None
        y.name = name
    _remove_dead(graph, [*core.nodes, *sink.nodes, *a.nodes, *b.nodes, *v.nodes])


def _remove_dead(graph: ir.Graph, nodes: list[ir.Node]) -> None:
    """Remove the nodes among `nodes` nobody reads any more, last first, and their constants."""
    order = {id(n): i for i, n in enumerate(graph)}
    unique = {id(n): n for n in nodes if id(n) in order}.values()
    for node in sorted(unique, key=lambda n: order[id(n)], reverse=True):
        if any(o.uses() or o.is_graph_output() for o in node.outputs):
            continue
        operands = [x for x in node.inputs if x is not None]
        graph.remove(node, safe=True)
        for x in operands:
            drop_if_unused(x)


@register_pass
class SplitHeads(EdgecPass):
    """Rewrite multi-head attention into one 4-D channels-first chain per head (see the
    module docstring for the graphs, what matches and what is left alone)."""

    id = "attention::split_heads"

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        graph = model.graph
        opset = opset_version(model)
        self.explanations = Explanations()
        modified = False
        for node in list(graph):
            if node.graph is not graph or not is_candidate(node):
                continue
            try:
                core = find_core(node)
                shape = core.logits_shape
                if shape is None or len(shape) not in (3, 4):
                    raise NoMatch("the logits are not a static rank-3 or rank-4 tensor")
                if len(shape) == 3 or shape[1] == 1:
                    self.stats["kept_single_head"] += 1
                    continue
                bsz, heads = shape[:2]
                kv_heads, merged = core.kv_heads or heads, core.merged_heads
                ops = (
                    _operand(core.a, "q", 3, heads, opset, merged),
                    _operand(core.b, "k", 3 if core.b_is_key else 2, kv_heads, opset, merged),
                    _operand(
                        core.v, "v", 2 if core.channel_major_out else 3, kv_heads, opset, merged
                    ),
                )
                sink = _sink(core, opset)
            except NoMatch as why:
                self.explanations.add(node, why)
                self.stats["kept_unmatched"] += 1
                continue
            _rewrite(graph, core, ops, sink, heads, bsz)
            self.stats["attentions_split"] += 1
            self.stats["heads_split"] += heads
            modified = True
        if modified:  # the passes after this one (and this one, run again) read shapes
            create_pass("cleanup::infer_shapes")(model)
        return ir.passes.PassResult(model, modified)
