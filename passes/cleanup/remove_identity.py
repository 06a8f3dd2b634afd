"""`cleanup::remove_identity`: remove nodes whose output provably equals one of their inputs."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx_ir as ir

from edgec.pass_manager import EdgecPass, register_pass
from edgec.passes._graph import bypass, const_array, dtype_of, opset_version

# A Slice end at or beyond this covers any dimension, known or not (torch writes INT64_MAX).
_TO_THE_END = 2**62


@register_pass
class RemoveIdentityPass(EdgecPass):
    """Remove no-op nodes, reconnecting their readers to the input they pass through.

    A node is a no-op when its output equals its input in value, dtype *and* shape:

    1. `Identity`; `Dropout` in inference (no `training_mode`, or a constant false) whose
       mask is unused;
    2. `Cast`/`CastLike` to the dtype the input already has;
    3. `Reshape` to the input's own shape (`0` copies a dimension unless `allowzero`; one
       `-1` is allowed when every other dimension is kept), so `[N, 64] → [-1, 64]` goes too;
    4. `Transpose` with the identity permutation;
    5. `Slice` with step 1 that takes every element of each sliced axis;
    6. `Pad` with all-zero pads; `Concat` of one input; `Expand` to a shape that does not grow
       the input;
    7. `Add`/`Sub` of a constant 0 and `Mul`/`Div` by a constant 1, only when broadcasting the
       constant leaves the other input's shape unchanged (`x[1, 8] + zeros[4, 8]` stays).

    A no-op whose output is a graph output is removed only when its input is produced by a
    node of the same graph (that value then takes the output's name); one that copies a graph
    input or an initializer to a graph output stays.

    Before::

        a = Identity(x)                         # x: float[1, 64, 7, 7]
        b = Reshape(a, [1, -1, 7, 7])
        c = Transpose <perm = [0, 1, 2, 3]> (b)
        d = Add(c, zeros)                       # zeros: float[7, 7], all 0
        y = Relu(d)

    After::

        y = Relu(x)

    Stats: one count per rule that fired (`identity`, `dropout`, `cast`, `reshape`,
    `transpose`, `slice`, `pad`, `concat`, `expand`, `neutral_arith`) and `removed` in all.
    """

    id = "cleanup::remove_identity"

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        opset = opset_version(model)
        nodes = list(ir.traversal.RecursiveGraphIterator(model.graph))
        for function in model.functions.values():
            nodes.extend(function)
        for node in nodes:
            if node.domain not in ("", "ai.onnx") or node.graph is None:
                continue
            rule = _RULES.get(node.op_type)
            source = rule(node, opset) if rule else None
            if source is not None and bypass(node, source):
                self.stats[_RULE_NAMES[node.op_type]] += 1
                self.stats["removed"] += 1
        return ir.passes.PassResult(model, modified=bool(self.stats["removed"]))


def _input(node: ir.Node, index: int) -> ir.Value | None:
    return node.inputs[index] if index < len(node.inputs) else None


def _ints(value: ir.Value | None) -> list[int] | None:
    array = const_array(value)
    return None if array is None else [int(v) for v in array.reshape(-1)]


def _keeps_shape(x: ir.Value, other: tuple[int, ...]) -> bool:
    """Whether broadcasting `x` with a tensor of shape `other` gives exactly `x`'s shape."""
    if len(other) == 0:
        return True
    if x.shape is None or len(other) > len(x.shape):
        return False
    dims = list(x.shape)[len(x.shape) - len(other) :]
    return all(o == 1 or (isinstance(d, int) and d == o) for d, o in zip(dims, other, strict=True))


def _identity(node: ir.Node, opset: int) -> ir.Value | None:
    return _input(node, 0)


def _dropout(node: ir.Node, opset: int) -> ir.Value | None:
    training = _input(node, 2)
    if training is not None:
        flag = const_array(training)
        if flag is None or bool(flag.reshape(-1)[0]):
            return None
    return _input(node, 0)


def _cast(node: ir.Node, opset: int) -> ir.Value | None:
    x = _input(node, 0)
    source_type = dtype_of(x)
    if source_type is None:
        return None
    if node.op_type == "CastLike":
        target = dtype_of(_input(node, 1))
    else:
        attr = node.attributes.get("to")
        target = ir.DataType(attr.as_int()) if attr is not None and not attr.is_ref() else None
    return x if target == source_type else None


def _reshape(node: ir.Node, opset: int) -> ir.Value | None:
    x, target = _input(node, 0), _ints(_input(node, 1))
    if x is None or x.shape is None or target is None or len(target) != len(x.shape):
        return None
    allowzero = node.attributes.get_int("allowzero", 0)
    inferred = []
    for i, (dim, t) in enumerate(zip(x.shape, target, strict=True)):
        if t == -1:
            inferred.append(i)
        elif t == 0 and not allowzero:
            continue
        elif not (isinstance(dim, int) and dim == t):
            return None
    if len(inferred) > 1:
        return None
    if inferred and any(isinstance(d, int) and d == 0 for d in x.shape):
        return None  # -1 next to a zero-size dimension is ambiguous
    return x


def _transpose(node: ir.Node, opset: int) -> ir.Value | None:
    x = _input(node, 0)
    perm = node.attributes.get_ints("perm")
    if perm is None:  # default: reverse the axes, a no-op only for rank 0 and 1
        return x if x is not None and x.shape is not None and len(x.shape) <= 1 else None
    return x if list(perm) == list(range(len(perm))) else None


def _slice(node: ir.Node, opset: int) -> ir.Value | None:
    x = _input(node, 0)
    if opset < 10 or x is None or x.shape is None:
        return None
    starts, ends = _ints(_input(node, 1)), _ints(_input(node, 2))
    if starts is None or ends is None or len(starts) != len(ends):
        return None
    rank = len(x.shape)
    axes = _ints(_input(node, 3)) if _input(node, 3) is not None else list(range(len(starts)))
    steps = _ints(_input(node, 4)) if _input(node, 4) is not None else [1] * len(starts)
    if axes is None or steps is None or not len(axes) == len(steps) == len(starts):
        return None
    for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
        if step != 1 or not -rank <= axis < rank:
            return None
        dim = x.shape[axis % rank]
        if isinstance(dim, int):
            lo = min(max(start + dim if start < 0 else start, 0), dim)
            hi = min(max(end + dim if end < 0 else end, 0), dim)
            if lo != 0 or hi != dim:
                return None
        elif start != 0 or end < _TO_THE_END:
            return None
    return x


def _pad(node: ir.Node, opset: int) -> ir.Value | None:
    pads = _ints(_input(node, 1)) if opset >= 11 else node.attributes.get_ints("pads")
    return _input(node, 0) if pads is not None and not any(pads) else None


def _concat(node: ir.Node, opset: int) -> ir.Value | None:
    return _input(node, 0) if len(node.inputs) == 1 else None


def _expand(node: ir.Node, opset: int) -> ir.Value | None:
    x, shape = _input(node, 0), _ints(_input(node, 1))
    return x if x is not None and shape is not None and _keeps_shape(x, tuple(shape)) else None


# op → (neutral constant, positions the constant may take: 1 = second input only)
_NEUTRAL = {"Add": (0, (0, 1)), "Sub": (0, (1,)), "Mul": (1, (0, 1)), "Div": (1, (1,))}


def _neutral_arith(node: ir.Node, opset: int) -> ir.Value | None:
    if len(node.inputs) != 2 or any(v is None for v in node.inputs):
        return None
    neutral, positions = _NEUTRAL[node.op_type]
    for position in positions:
        constant = const_array(node.inputs[position])
        x = node.inputs[1 - position]
        if constant is None or constant.dtype.kind not in "fiub":
            continue
        if dtype_of(x) is not None and dtype_of(x) != ir.DataType.from_numpy(constant.dtype):
            continue
        if np.all(constant == neutral) and _keeps_shape(x, constant.shape):
            return x
    return None


_RULES: dict[str, Callable[[ir.Node, int], ir.Value | None]] = {
    "Identity": _identity,
    "Dropout": _dropout,
    "Cast": _cast,
    "CastLike": _cast,
    "Reshape": _reshape,
    "Transpose": _transpose,
    "Slice": _slice,
    "Pad": _pad,
    "Concat": _concat,
    "Expand": _expand,
    "Add": _neutral_arith,
    "Sub": _neutral_arith,
    "Mul": _neutral_arith,
    "Div": _neutral_arith,
}
_RULE_NAMES = {op: fn.__name__.lstrip("_") for op, fn in _RULES.items()}
