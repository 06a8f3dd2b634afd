"""speed::window_layout — apply window-attention pointwise convs on the whole map, not per window.

EfficientViT's stage-1 attention partitions the NCHW map into windows, runs a 1×1 conv (the
projection that attention::cga_fusion put up front) per window, and after attention runs the
output 1×1 conv per window and reverses the partition. A 1×1 conv commutes with any spatial
permutation, so it can run on the whole map; the partition/reverse then happens in the token-major
layout the attention reads/writes, and the 6-D transposes become 4-D block transposes.

Partition, before (X[1,C,H,W], windows ws×ws, nh = H/ws, nw = W/ws, S conv outputs)::

    X ─ Transpose(0,2,3,1) ─ Reshape[1,nh,ws,nw,ws,C] ─ Transpose(0,1,3,2,4,5)
      ─ Reshape[nh·nw,ws,ws,C] ─ Transpose(0,3,1,2) ─ Conv1×1 ─ Transpose(0,2,3,1)
      ─ Reshape[nh·nw,ws·ws,S] = P

after::

    X ─ Conv1×1 ─ Transpose(0,2,3,1) ─ Reshape[nh,ws,nw,ws·S] ─ Transpose(0,2,1,3)
      ─ Reshape[nh·nw,ws·ws,S] = P

Reverse, before (Z[nh·nw,ws·ws,Cz] token-major, conv Cz → C)::

    Z ─ Reshape[nh·nw,ws,ws,Cz] ─ Transpose(0,3,1,2) ─ Conv1×1 ─ Transpose(0,2,3,1)
      ─ Reshape[1,nh,nw,ws,ws,C] ─ Transpose(0,1,3,2,4,5) ─ Reshape[1,H,W,C]
      ─ Transpose(0,3,1,2) = Y

after::

    Z ─ Reshape[nh,nw,ws,ws·Cz] ─ Transpose(0,2,1,3) ─ Reshape[1,H,W,Cz] ─ Transpose(0,3,1,2)
      ─ Conv1×1 = Y

Exact (same products and sums, only applied in another order of pixels). Batch 1 only; every
intermediate must be read once, the conv must be 1×1, stride 1, unpadded, with constant weights.
"""

from __future__ import annotations

import onnx_ir as ir

from edgec.pass_manager import EdgecPass, register_pass
from edgec.passes._graph import const_array
from edgec.passes.speed._util import attr, new_initializer, only_consumer, static_shape

_P6 = [0, 1, 3, 2, 4, 5]


def _is(node: ir.Node | None, op: str) -> bool:
    return node is not None and node.op_type == op and node.domain in ("", "ai.onnx")


def _perm(node: ir.Node) -> list[int] | None:
    p = attr(node, "perm")
    return None if p is None else list(p)


def _shape(value: ir.Value | None) -> tuple[int, ...] | None:
    """Static shape, else (for a Reshape output) its constant all-positive target shape."""
    shape = static_shape(value)
    if shape is not None or value is None:
        return shape
    node = value.producer()
    if not _is(node, "Reshape") or attr(node, "allowzero", 0) != 0:
        return None
    target = const_array(node.inputs[1])
    if target is None or target.ndim != 1 or (target <= 0).any():
        return None
    return tuple(int(d) for d in target)


def _next(value: ir.Value, op: str, perm: list[int] | None = None) -> ir.Node | None:
    """The only reader of `value` when it is an `op` (with `perm`, for Transpose)."""
    node = only_consumer(value)
    if not _is(node, op) or node.inputs[0] is not value:
        return None
    if perm is not None and _perm(node) != perm:
        return None
    if op == "Reshape" and _shape(node.outputs[0]) is None:
        return None
    return node


def _prev(value: ir.Value, op: str, perm: list[int] | None = None) -> ir.Node | None:
    node = value.producer()
    if not _is(node, op) or only_consumer(value) is None:
        return None
    if perm is not None and _perm(node) != perm:
        return None
    return node


def _pointwise(conv: ir.Node | None) -> bool:
    if not _is(conv, "Conv"):
        return False
    w = const_array(conv.inputs[1] if len(conv.inputs) > 1 else None)
    if w is None or w.ndim != 4 or w.shape[2:] != (1, 1):
        return False
    if len(conv.inputs) > 2 and conv.inputs[2] is not None and const_array(conv.inputs[2]) is None:
        return False
    return (
        list(attr(conv, "strides", [1, 1])) == [1, 1]
        and list(attr(conv, "pads", [0, 0, 0, 0])) == [0, 0, 0, 0]
        and list(attr(conv, "dilations", [1, 1])) == [1, 1]
        and attr(conv, "auto_pad", "NOTSET") in ("NOTSET", b"NOTSET")
    )


def _i64(graph: ir.Graph, name: str, values) -> ir.Value:
    import numpy as np

    return new_initializer(graph, name, np.asarray(values, dtype=np.int64))


def _conv_like(conv: ir.Node, x: ir.Value) -> ir.Node:
    attrs = {a.name: a.value for a in conv.attributes.values()}
    return ir.node("Conv", [x, *conv.inputs[1:]], attributes=attrs)


def _replace(graph: ir.Graph, old_nodes, new_nodes, before: ir.Node, old_out, new_out) -> None:
    new_out.shape, new_out.type = old_out.shape, old_out.type
    graph.insert_before(before, new_nodes)
    was_output, name = old_out.is_graph_output(), old_out.name
    ir.convenience.replace_all_uses_with(old_out, new_out, replace_graph_outputs=True)
    graph.remove(old_nodes, safe=True)
    if was_output:
        old_out.name = None
        new_out.name = name


def _partition(graph: ir.Graph, t6: ir.Node) -> bool:
    """`t6` is the 6-D Transpose of a partition; rewrite it when the whole chain matches."""
    r6 = _prev(t6.inputs[0], "Reshape")
    t_in = r6 and _prev(r6.inputs[0], "Transpose", [0, 2, 3, 1])
    if t_in is None:
        return False
    x = t_in.inputs[0]
    xs, s6 = static_shape(x), _shape(r6.outputs[0])
    if xs is None or s6 is None or len(xs) != 4 or xs[0] != 1 or len(s6) != 6:
        return False
    _, c, hh, ww = xs
    _, nh, ws, nw, ws2, c6 = s6
    if ws != ws2 or c6 != c or nh * ws != hh or nw * ws != ww:
        return False
    r4 = _next(t6.outputs[0], "Reshape")
    if r4 is None or _shape(r4.outputs[0]) != (nh * nw, ws, ws, c):
        return False
    tc = _next(r4.outputs[0], "Transpose", [0, 3, 1, 2])
    conv = tc and only_consumer(tc.outputs[0])
    if not _pointwise(conv) or conv.inputs[0] is not tc.outputs[0]:
        return False
    tp = _next(conv.outputs[0], "Transpose", [0, 2, 3, 1])
    rp = tp and _next(tp.outputs[0], "Reshape")
    if rp is None:
        return False
    s = const_array(conv.inputs[1]).shape[0]
    if _shape(rp.outputs[0]) != (nh * nw, ws * ws, s):
        return False
    tag = (rp.outputs[0].name or "win").replace("/", "_")
    nc = _conv_like(conv, x)
    t1 = ir.node("Transpose", [nc.outputs[0]], attributes={"perm": [0, 2, 3, 1]})
    r1 = ir.node("Reshape", [t1.outputs[0], _i64(graph, f"{tag}_win_shape", [nh, ws, nw, ws * s])])
    t2 = ir.node("Transpose", [r1.outputs[0]], attributes={"perm": [0, 2, 1, 3]})
    r2 = ir.node("Reshape", [t2.outputs[0], rp.inputs[1]])
    old = [t_in, r6, t6, r4, tc, conv, tp, rp]
    _replace(graph, old, [nc, t1, r1, t2, r2], t_in, rp.outputs[0], r2.outputs[0])
    return True


def _reverse(graph: ir.Graph, t6: ir.Node) -> bool:
    """`t6` is the 6-D Transpose of a reverse; rewrite it when the whole chain matches."""
    r6 = _prev(t6.inputs[0], "Reshape")
    tb = r6 and _prev(r6.inputs[0], "Transpose", [0, 2, 3, 1])
    conv = tb and tb.inputs[0].producer()
    if not _pointwise(conv) or only_consumer(conv.outputs[0]) is not tb:
        return False
    tc = _prev(conv.inputs[0], "Transpose", [0, 3, 1, 2])
    r4 = tc and _prev(tc.inputs[0], "Reshape")
    if r4 is None:
        return False
    z = r4.inputs[0]
    # z is reshaped row-major either way, so only its element count matters (r4 fixes it)
    s4, s6 = _shape(r4.outputs[0]), _shape(r6.outputs[0])
    if s4 is None or s6 is None or len(s4) != 4 or len(s6) != 6:
        return False
    bw, ws, ws2, cz = s4
    one, nh, nw, ws3, ws4, c = s6
    if one != 1 or not ws == ws2 == ws3 == ws4 or bw != nh * nw:
        return False
    ro = _next(t6.outputs[0], "Reshape")
    if ro is None or _shape(ro.outputs[0]) != (1, nh * ws, nw * ws, c):
        return False
    to = _next(ro.outputs[0], "Transpose", [0, 3, 1, 2])
    if to is None:
        return False
    tag = (to.outputs[0].name or "win").replace("/", "_")
    r1 = ir.node("Reshape", [z, _i64(graph, f"{tag}_unwin_shape", [nh, nw, ws, ws * cz])])
    t1 = ir.node("Transpose", [r1.outputs[0]], attributes={"perm": [0, 2, 1, 3]})
    r2 = ir.node(
        "Reshape", [t1.outputs[0], _i64(graph, f"{tag}_unwin_map", [1, nh * ws, nw * ws, cz])]
    )
    t2 = ir.node("Transpose", [r2.outputs[0]], attributes={"perm": [0, 3, 1, 2]})
    nc = _conv_like(conv, t2.outputs[0])
    old = [r4, tc, conv, tb, r6, t6, ro, to]
    _replace(graph, old, [r1, t1, r2, t2, nc], r4, to.outputs[0], nc.outputs[0])
    return True


@register_pass
class WindowLayout(EdgecPass):
    """Run window-attention 1×1 convs on the whole map; partition with 4-D transposes."""

    id = "speed::window_layout"

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        graph = model.graph
        modified = False
        for node in list(graph):
            if node.graph is not graph or not _is(node, "Transpose") or _perm(node) != _P6:
                continue
            if _partition(graph, node):
                self.stats["partitions_rewritten"] += 1
                modified = True
            elif _reverse(graph, node):
                self.stats["reverses_rewritten"] += 1
                modified = True
        return ir.passes.PassResult(model, modified)
