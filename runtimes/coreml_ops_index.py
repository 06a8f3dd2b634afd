"""How comparison, selection and index ONNX ops become MIL ops: the table `INDEX_OPS`.

EfficientTAM's prompt decoder and memory encoder compute with labels and masks, not only
with float tensors: `Equal(label, k) → Where` picks a point's embedding, `Greater(x, 0) →
Cast` binarises a mask, `ArgMax → GatherND` picks the best mask. Booleans stay MIL `bool`,
integers are MIL `int32` (Core ML has no int64 tensors; int64 constants narrow, integer graph
inputs are Int32 arrays), and `cast` goes back to float where ONNX casts to float.

    Equal/Greater/Less(OrEqual)   → equal / greater / less(_equal) (bool)
    And/Or/Not                    → logical_and / logical_or / logical_not
    Where(c, a, b)                → select(cond=c, a, b)
    ArgMax(axis, keepdims)        → reduce_argmax                (int32)
    GatherND(batch_dims)          → gather_nd                    (indices int32)
    Expand(x, constant shape)     → tile
"""

from __future__ import annotations

import numpy as np

from edgec.runtimes.coreml_ops import Lower, _attr, _axis, _binary


def _where(cx, node):
    cond, a, b = (cx.operand(v) for v in node.inputs)
    if isinstance(cond, np.ndarray):
        cond = cond.astype(bool)
    return [cx.mb.select(cond=cond, a=a, b=b, name=cx.out(node))]


def _argmax(cx, node):
    if _attr(node, "select_last_index", 0):
        raise cx.unsupported(node, "ArgMax with select_last_index")
    x = cx.var(node.inputs[0])
    axis = _axis(int(_attr(node, "axis", 0)), x.rank)
    keep = bool(_attr(node, "keepdims", 1))
    return [cx.mb.reduce_argmax(x=x, axis=axis, keep_dims=keep, name=cx.out(node))]


def _gather_nd(cx, node):
    x, indices = (cx.operand(v) for v in node.inputs)
    if isinstance(indices, np.ndarray):
        indices = indices.astype(np.int32)
    batch = int(_attr(node, "batch_dims", 0))
    return [cx.mb.gather_nd(x=x, indices=indices, batch_dims=batch, name=cx.out(node))]


def _expand(cx, node):
    """Expand (broadcast to a constant shape) → reshape to the result's rank + `tile`."""
    x = cx.var(node.inputs[0])
    shape = tuple(int(d) for d in cx.const(node.inputs[1]))
    out = np.broadcast_shapes(tuple(x.shape), shape)
    lead = (1,) * (len(out) - x.rank) + tuple(x.shape)
    if len(lead) != x.rank:
        x = cx.mb.reshape(x=x, shape=np.asarray(lead, np.int32), name=cx.out(node) + "_rank")
    reps = [o // i for o, i in zip(out, lead, strict=True)]
    if all(r == 1 for r in reps):
        return [cx.mb.identity(x=x, name=cx.out(node))]
    return [cx.mb.tile(x=x, reps=np.asarray(reps, np.int32), name=cx.out(node))]


INDEX_OPS: dict[str, Lower] = {
    "Expand": _expand,
    "Equal": _binary("equal"),
    "Greater": _binary("greater"),
    "Less": _binary("less"),
    "GreaterOrEqual": _binary("greater_equal"),
    "LessOrEqual": _binary("less_equal"),
    "And": _binary("logical_and"),
    "Or": _binary("logical_or"),
    "Not": lambda cx, node: [cx.mb.logical_not(x=cx.var(node.inputs[0]), name=cx.out(node))],
    "Where": _where,
    "ArgMax": _argmax,
    "GatherND": _gather_nd,
}
