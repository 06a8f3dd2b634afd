"""Tensors above the rank limit, kept folded: layout ops lowered without a high-rank MIL tensor.

Core ML allows rank ≤ 5, and the Neural Engine wants rank ≤ 4 (split heads, Apple's
transformer layout). Exported graphs make higher ranks in layout-only chains: a window
partition that is one window (`[1,14,14,C] → [1,1,14,1,14,C] → Transpose → [1,14,14,C]`),
RoPE's pairs (`[1,1,N,D] → [1,1,1,N,D/2,2] → Gather(-1) … Unsqueeze → Concat(-1)`), a qkv
split (`[1,N,3,H,d] → Transpose → [3,1,H,N,d]`). None of them needs the high rank: a value
whose ONNX rank is above the limit is kept as a `Wide` — a MIL var holding the same elements
in the same row-major order, with the unit axes dropped (and leading axes merged while still
too many) — and each op that reads one computes on a view of at most the limit's rank:

    Reshape / Squeeze / Unsqueeze / Flatten   reshape the storage (row-major order is all
                                              they change)
    Transpose                                 the permutation with unit axes dropped and
                                              axes that stay neighbours merged
    Gather (scalar constant index), Slice     on the 3-D view [before, axis, after]
    (one axis), Concat
    Add / Sub / Mul / Div                     operands with the unit axes of the result dropped
    Identity, float Cast                      the storage itself

Before (MIL, rank 6):  x[1,14,14,C] ─ reshape[1,1,14,1,14,C] ─ transpose ─ reshape[1,14,14,C]
After:                 x[1,14,14,C] ─ reshape[14,14,C] ─ reshape[1,14,14,C]

Any other op reading a `Wide`, or a graph output above the limit, is a rank problem (named
with its nodes); an op whose result is a `Wide` never exists in the program.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import onnx_ir as ir


@dataclasses.dataclass(frozen=True)
class Wide:
    """An ONNX value of rank above the limit: `data` (MIL var or numpy) in row-major order."""

    data: Any
    shape: tuple[int, ...]


def lower_wide(cx, node: ir.Node) -> list | None:
    """The node's results if it reads or makes a tensor above `cx.max_rank`, else None."""
    inputs = [v for v in node.inputs if v is not None]
    reads = any(isinstance(cx.values.get(v.name), Wide) for v in inputs)
    out = _static(node.outputs[0]) if node.outputs else None
    if not reads and (out is None or len(out) <= cx.max_rank):
        return None
    handler = _HANDLERS.get(node.op_type)
    if handler is None or out is None:
        rank = max([len(out or ())] + [len(_shape(cx, v)) for v in inputs])
        raise cx.too_high_rank(node, rank)
    return [handler(cx, node, out)]


def _static(value: ir.Value) -> tuple[int, ...] | None:
    shape = value.shape
    if shape is None or not all(isinstance(d, int) for d in shape):
        return None
    return tuple(shape)


def _shape(cx, value: ir.Value) -> tuple[int, ...]:
    got = cx.values[value.name]
    return got.shape if isinstance(got, Wide) else tuple(cx.shape_of(value))


def _data(cx, value: ir.Value):
    got = cx.values[value.name]
    return got.data if isinstance(got, Wide) else cx.operand(value)


def _view(cx, data, shape, name: str):
    shape = [int(d) for d in shape] or [1]
    if isinstance(data, np.ndarray):
        return data.reshape(shape)
    if list(data.shape) == shape:
        return data
    return cx.mb.reshape(x=data, shape=np.asarray(shape, np.int32), name=cx.unique(name))


def _result(cx, node: ir.Node, data, shape: tuple[int, ...]):
    """`data` (row-major elements of a tensor of `shape`) as the node's value."""
    name = cx.out(node)
    if len(shape) <= cx.max_rank:
        if isinstance(data, np.ndarray):
            return data.reshape(shape)
        return cx.mb.reshape(x=data, shape=np.asarray(shape or [1], np.int32), name=name)
    storage = [d for d in shape if d != 1] or [1]
    while len(storage) > cx.max_rank:
        storage = [storage[0] * storage[1], *storage[2:]]
    return Wide(_view(cx, data, storage, name), shape)


def _three(shape, axis: int) -> list[int]:
    """The 3-D view [elements before `axis`, shape[axis], elements after]."""
    return [int(np.prod(shape[:axis])), shape[axis], int(np.prod(shape[axis + 1 :]))]


def _axis(node: ir.Node, rank: int, default: int = 0) -> int:
    attr = node.attributes.get("axis")
    axis = default if attr is None else int(attr.value)
    return axis + rank if axis < 0 else axis


def _reshaped(cx, node, out):
    return _result(cx, node, _data(cx, node.inputs[0]), out)


def _transpose(cx, node, out):
    shape = _shape(cx, node.inputs[0])
    attr = node.attributes.get("perm")
    perm = list(attr.value) if attr is not None else list(reversed(range(len(shape))))
    kept = [a for a in perm if shape[a] != 1]  # source axes in output order, unit axes dropped
    groups: list[list[int]] = []  # runs of source axes that stay neighbours
    for a in kept:
        if groups and groups[-1][-1] + 1 == a:
            groups[-1].append(a)
        else:
            groups.append([a])
    in_order = sorted(groups)
    dims = [int(np.prod([shape[a] for a in g])) for g in in_order]
    reduced = [in_order.index(g) for g in groups]
    if len(dims) > cx.max_rank:
        raise cx.too_high_rank(node, len(dims))
    data = _view(cx, _data(cx, node.inputs[0]), dims, cx.out(node) + "_in")
    if reduced != sorted(reduced):
        if isinstance(data, np.ndarray):
            data = data.transpose(reduced)
        else:
            data = cx.mb.transpose(
                x=data, perm=np.asarray(reduced, np.int32), name=cx.unique(cx.out(node) + "_t")
            )
    return _result(cx, node, data, out)


def _gather(cx, node, out):
    shape = _shape(cx, node.inputs[0])
    if not cx.is_const(node.inputs[1]) or np.ndim(cx.const(node.inputs[1])) != 0:
        raise cx.too_high_rank(node, len(shape))
    axis = _axis(node, len(shape))
    index = int(cx.const(node.inputs[1])) % shape[axis]
    return _result(cx, node, _slab(cx, node, shape, axis, index, index + 1, 1), out)


def _slice(cx, node, out):
    shape = _shape(cx, node.inputs[0])
    changed = [a for a in range(len(shape)) if shape[a] != out[a]]
    if len(changed) > 1 or any(not cx.is_const(v) for v in node.inputs[1:] if v is not None):
        raise cx.too_high_rank(node, len(shape))
    if not changed:
        return _result(cx, node, _data(cx, node.inputs[0]), out)
    (axis,) = changed
    starts = cx.const(node.inputs[1])  # the end follows from the static output size
    axes = cx.const(node.inputs[3]) if len(node.inputs) > 3 and node.inputs[3] else None
    steps = cx.const(node.inputs[4]) if len(node.inputs) > 4 and node.inputs[4] else None
    axes = [a + len(shape) if a < 0 else a for a in (range(len(starts)) if axes is None else axes)]
    i = list(axes).index(axis)
    step = 1 if steps is None else int(steps[i])
    dim = shape[axis]
    begin = int(min(max(starts[i] + dim if starts[i] < 0 else starts[i], 0), dim))
    if step <= 0:
        raise cx.too_high_rank(node, len(shape))
    end = min(begin + step * out[axis], dim)
    return _result(cx, node, _slab(cx, node, shape, axis, begin, end, step), out)


def _slab(cx, node, shape, axis: int, begin: int, end: int, step: int):
    """Elements `begin:end:step` of `axis` of the input, on its 3-D view."""
    three = _three(shape, axis)
    data = _view(cx, _data(cx, node.inputs[0]), three, cx.out(node) + "_3d")
    if isinstance(data, np.ndarray):
        return data[:, begin:end:step, :]
    return cx.mb.slice_by_index(
        x=data,
        begin=np.asarray([0, begin, 0], np.int32),
        end=np.asarray([three[0], end, three[2]], np.int32),
        stride=np.asarray([1, step, 1], np.int32),
        name=cx.unique(cx.out(node) + "_slab"),
    )


def _concat(cx, node, out):
    axis = _axis(node, len(out))
    parts = [
        _view(cx, _data(cx, v), _three(_shape(cx, v), axis), f"{cx.out(node)}_3d{i}")
        for i, v in enumerate(node.inputs)
    ]
    if all(isinstance(p, np.ndarray) for p in parts):
        return _result(cx, node, np.concatenate(parts, axis=1), out)
    parts = [p.astype(np.float32) if isinstance(p, np.ndarray) else p for p in parts]
    joined = cx.mb.concat(values=parts, axis=1, name=cx.unique(cx.out(node) + "_3d"))
    return _result(cx, node, joined, out)


_ELEMENTWISE = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "real_div"}


def _elementwise(cx, node, out):
    """Operands aligned to the result's rank, the result's unit axes dropped from all."""
    kept = [a for a, d in enumerate(out) if d != 1]
    if len(kept) > cx.max_rank:
        raise cx.too_high_rank(node, len(kept))
    operands = []
    for i, value in enumerate(node.inputs):
        shape = (1,) * (len(out) - len(_shape(cx, value))) + tuple(_shape(cx, value))
        reduced = [shape[a] for a in kept]
        data = _view(cx, _data(cx, value), reduced, f"{cx.out(node)}_{i}")
        operands.append(data.astype(np.float32) if isinstance(data, np.ndarray) else data)
    x, y = operands
    op = getattr(cx.mb, _ELEMENTWISE[node.op_type])
    return _result(cx, node, op(x=x, y=y, name=cx.unique(cx.out(node) + "_wide")), out)


def _passthrough(cx, node, out):
    if node.op_type == "Cast" and node.outputs[0].dtype not in (
        ir.DataType.FLOAT,
        ir.DataType.FLOAT16,
    ):
        raise cx.too_high_rank(node, len(out))
    return _result(cx, node, _data(cx, node.inputs[0]), out)


_HANDLERS = {
    "Reshape": _reshaped,
    "Squeeze": _reshaped,
    "Unsqueeze": _reshaped,
    "Flatten": _reshaped,
    "Transpose": _transpose,
    "Gather": _gather,
    "Slice": _slice,
    "Concat": _concat,
    "Identity": _passthrough,
    "Cast": _passthrough,
    **{op: _elementwise for op in _ELEMENTWISE},
}
