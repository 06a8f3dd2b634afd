"""How each float ONNX op becomes MIL ops: the lowering table `FLOAT_OPS`.

Every entry is `lower(cx, node) -> list of outputs` where `cx` is the `coreml_lower.Context`
(ONNX values → MIL vars or numpy constants) and `mb` the MIL builder. Shape-like inputs
(Reshape's shape, Split's sizes, Slice's starts…) must be constants; the walker in
`coreml_lower` knows every static shape, so ONNX's shape conventions (0 = copy, -1 = infer,
clamped slice ends, negative axes) are resolved here into explicit MIL arguments.

ONNX → MIL choices worth knowing:

- MatMul / Gemm with a constant 2-D weight → `linear` (the op Core ML's weight compression
  and the Neural Engine treat as a layer); other MatMuls → `matmul`.
- HardSwish → `x * sigmoid_hard(x, 1/6, 1/2)`, Erf → `erf`, GlobalAveragePool → `reduce_mean`
  over the spatial axes with kept dims, InstanceNormalization → `instance_norm`.
- Gather with a scalar constant index → `slice_by_index` + `squeeze` (DeiT's class token).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx_ir as ir

Lower = Callable[["object", ir.Node], list]


def _attr(node: ir.Node, name: str, default=None):
    a = node.attributes.get(name)
    return default if a is None else a.value


def _i32(values) -> np.ndarray:
    return np.asarray(values, dtype=np.int64).astype(np.int32)


def _axis(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis


def _unary(op: str, **fixed) -> Lower:
    def lower(cx, node):
        return [getattr(cx.mb, op)(x=cx.var(node.inputs[0]), name=cx.out(node), **fixed)]

    return lower


def _binary(op: str) -> Lower:
    def lower(cx, node):
        x, y = (cx.operand(v) for v in node.inputs)
        return [getattr(cx.mb, op)(x=x, y=y, name=cx.out(node))]

    return lower


def _hardswish(cx, node):
    x = cx.var(node.inputs[0])
    gate = cx.mb.sigmoid_hard(x=x, alpha=1.0 / 6, beta=0.5, name=cx.out(node) + "_gate")
    return [cx.mb.mul(x=x, y=gate, name=cx.out(node))]


def _hardsigmoid(cx, node):
    alpha, beta = _attr(node, "alpha", 0.2), _attr(node, "beta", 0.5)
    return [cx.mb.sigmoid_hard(x=cx.var(node.inputs[0]), alpha=alpha, beta=beta, name=cx.out(node))]


def _clip(cx, node):
    def bound(i: int, default: float) -> float:
        present = len(node.inputs) > i and node.inputs[i] is not None
        return float(cx.const(node.inputs[i])) if present else default

    x, lo, hi = cx.var(node.inputs[0]), bound(1, -np.inf), bound(2, np.inf)
    if lo == 0.0 and hi == np.inf:
        return [cx.mb.relu(x=x, name=cx.out(node))]
    return [cx.mb.clip(x=x, alpha=np.float32(lo), beta=np.float32(hi), name=cx.out(node))]


def _pads(node: ir.Node, spatial: int) -> tuple[str, list[int]]:
    """ONNX `pads`/`auto_pad` → MIL (pad_type, pad=[b0, e0, b1, e1, …])."""
    auto = _attr(node, "auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        return ("same" if auto == "SAME_UPPER" else "same_lower"), [0] * (2 * spatial)
    if auto == "VALID":
        return "valid", [0] * (2 * spatial)
    pads = list(_attr(node, "pads", [0] * (2 * spatial)))
    return "custom", [p for i in range(spatial) for p in (pads[i], pads[i + spatial])]


def _conv(cx, node):
    weight = cx.weight(node.inputs[1])
    spatial = len(cx.shape_of(node.inputs[1])) - 2
    pad_type, pad = _pads(node, spatial)
    return [
        cx.mb.conv(
            x=cx.var(node.inputs[0]),
            weight=weight,
            bias=cx.const(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else None,
            strides=_i32(_attr(node, "strides", [1] * spatial)),
            pad_type=pad_type,
            pad=_i32(pad),
            dilations=_i32(_attr(node, "dilations", [1] * spatial)),
            groups=int(_attr(node, "group", 1)),
            name=cx.out(node),
        )
    ]


def _conv_transpose(cx, node):
    x = cx.var(node.inputs[0])
    weight = cx.weight(node.inputs[1])
    w_shape = cx.shape_of(node.inputs[1])
    spatial = len(w_shape) - 2
    strides = list(_attr(node, "strides", [1] * spatial))
    dilations = list(_attr(node, "dilations", [1] * spatial))
    groups = int(_attr(node, "group", 1))
    if _attr(node, "output_shape") is not None or _attr(node, "auto_pad", "NOTSET") != "NOTSET":
        raise cx.unsupported(node, "ConvTranspose with output_shape/auto_pad")
    pads = list(_attr(node, "pads", [0] * (2 * spatial)))
    extra = list(_attr(node, "output_padding", [0] * spatial))
    size = [
        strides[i] * (x.shape[2 + i] - 1)
        + extra[i]
        + (w_shape[2 + i] - 1) * dilations[i]
        + 1
        - pads[i]
        - pads[i + spatial]
        for i in range(spatial)
    ]
    return [
        cx.mb.conv_transpose(
            x=x,
            weight=weight,
            bias=cx.const(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else None,
            pad_type="custom",
            pad=_i32([p for i in range(spatial) for p in (pads[i], pads[i + spatial])]),
            output_shape=_i32([x.shape[0], w_shape[1] * groups, *size]),
            strides=_i32(strides),
            dilations=_i32(dilations),
            groups=groups,
            name=cx.out(node),
        )
    ]


def _pool(kind: str) -> Lower:
    def lower(cx, node):
        x = cx.var(node.inputs[0])
        spatial = x.rank - 2
        pad_type, pad = _pads(node, spatial)
        if _attr(node, "ceil_mode", 0) or any(d != 1 for d in _attr(node, "dilations", [1])):
            raise cx.unsupported(node, f"{node.op_type} with ceil_mode or dilations")
        args = dict(
            x=x,
            kernel_sizes=_i32(_attr(node, "kernel_shape")),
            strides=_i32(_attr(node, "strides", [1] * spatial)),
            pad_type=pad_type,
            pad=_i32(pad),
            name=cx.out(node),
        )
        if kind == "avg_pool":
            args["exclude_padding_from_average"] = not _attr(node, "count_include_pad", 0)
        return [getattr(cx.mb, kind)(**args)]

    return lower


def _global_pool(op: str) -> Lower:
    def lower(cx, node):
        x = cx.var(node.inputs[0])
        return [getattr(cx.mb, op)(
            x=x, axes=list(range(2, x.rank)), keep_dims=True, name=cx.out(node)
        )]  # fmt: skip

    return lower


def _reduce(op: str) -> Lower:
    def lower(cx, node):
        x = cx.var(node.inputs[0])
        axes = _attr(node, "axes")
        if axes is None and len(node.inputs) > 1 and node.inputs[1] is not None:
            axes = cx.const(node.inputs[1])
        if axes is None or len(axes) == 0:
            if _attr(node, "noop_with_empty_axes", 0):
                return [cx.mb.identity(x=x, name=cx.out(node))]
            axes = range(x.rank)
        keep = bool(_attr(node, "keepdims", 1))
        axes = sorted(_axis(int(a), x.rank) for a in axes)
        return [getattr(cx.mb, op)(x=x, axes=axes, keep_dims=keep, name=cx.out(node))]

    return lower


def _matmul(cx, node):
    a, b = node.inputs
    if (cx.is_const(b) or b.name in cx.plan.weights) and len(cx.shape_of(b)) == 2:
        weight = cx.weight(b, transpose=True)  # linear wants [out, in]
        return [cx.mb.linear(x=cx.var(a), weight=weight, name=cx.out(node))]
    return [cx.mb.matmul(x=cx.operand(a), y=cx.operand(b), name=cx.out(node))]


def _gemm(cx, node):
    a, b, *rest = node.inputs
    c = rest[0] if rest and rest[0] is not None else None
    alpha, beta = float(_attr(node, "alpha", 1.0)), float(_attr(node, "beta", 1.0))
    trans_a, trans_b = bool(_attr(node, "transA", 0)), bool(_attr(node, "transB", 0))
    x = cx.var(a)
    if trans_a:
        x = cx.mb.transpose(x=x, perm=[1, 0], name=cx.out(node) + "_at")
    const_c = c is not None and cx.is_const(c) and cx.const(c).ndim <= 1
    if (cx.is_const(b) or b.name in cx.plan.weights) and alpha == 1.0:
        bias = None
        if const_c:
            bias = np.broadcast_to(beta * cx.const(c), (cx.shape_of(b)[0 if trans_b else 1],))
        name = cx.out(node) if c is None or const_c else cx.out(node) + "_linear"
        y = cx.mb.linear(x=x, weight=cx.weight(b, transpose=not trans_b), bias=bias, name=name)
        if c is None or const_c:
            return [y]
    else:
        y = cx.mb.matmul(x=x, y=cx.operand(b), transpose_y=trans_b, name=cx.out(node) + "_mm")
        if alpha != 1.0:
            y = cx.mb.mul(x=y, y=np.float32(alpha), name=cx.out(node) + "_alpha")
        if c is None:
            return [cx.mb.identity(x=y, name=cx.out(node))]
    term = cx.operand(c)
    if beta != 1.0:
        term = cx.mb.mul(x=term, y=np.float32(beta), name=cx.out(node) + "_beta")
    return [cx.mb.add(x=y, y=term, name=cx.out(node))]


def _softmax(cx, node):
    return [cx.mb.softmax(x=cx.var(node.inputs[0]), axis=int(_attr(node, "axis", -1)),
                          name=cx.out(node))]  # fmt: skip


def _transpose(cx, node):
    x = cx.var(node.inputs[0])
    perm = _attr(node, "perm", list(reversed(range(x.rank))))
    return [cx.mb.transpose(x=x, perm=_i32(perm), name=cx.out(node))]


def _reshape(cx, node):
    x = cx.var(node.inputs[0])
    shape = [int(s) for s in cx.const(node.inputs[1])]
    if not _attr(node, "allowzero", 0):
        shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return [cx.mb.reshape(x=x, shape=_i32(shape), name=cx.out(node))]


def _flatten(cx, node):
    x = cx.var(node.inputs[0])
    axis = _axis(int(_attr(node, "axis", 1)), x.rank)
    lead = int(np.prod(x.shape[:axis], dtype=np.int64))
    return [cx.mb.reshape(x=x, shape=_i32([lead, -1]), name=cx.out(node))]


def _squeeze(cx, node):
    x = cx.var(node.inputs[0])
    axes = cx.const(node.inputs[1]) if len(node.inputs) > 1 and node.inputs[1] else None
    if axes is None:
        axes = [i for i, d in enumerate(x.shape) if d == 1]
    return [cx.mb.squeeze(x=x, axes=_i32([_axis(int(a), x.rank) for a in axes]),
                          name=cx.out(node))]  # fmt: skip


def _unsqueeze(cx, node):
    x = cx.var(node.inputs[0])
    axes = [int(a) for a in cx.const(node.inputs[1])]
    rank = x.rank + len(axes)
    return [cx.mb.expand_dims(x=x, axes=_i32(sorted(_axis(a, rank) for a in axes)),
                              name=cx.out(node))]  # fmt: skip


def _concat(cx, node):
    values = [cx.operand(v) for v in node.inputs]
    return [cx.mb.concat(values=values, axis=int(_attr(node, "axis")), name=cx.out(node))]


def _split(cx, node):
    x = cx.var(node.inputs[0])
    axis = _axis(int(_attr(node, "axis", 0)), x.rank)
    if len(node.inputs) > 1 and node.inputs[1] is not None:
        sizes = [int(s) for s in cx.const(node.inputs[1])]
    else:
        count = int(_attr(node, "num_outputs", len(node.outputs)))
        step = -(-x.shape[axis] // count)  # ONNX: the last chunk may be smaller
        sizes = [min(step, x.shape[axis] - i * step) for i in range(count)]
    names = [cx.out(node, i) for i in range(len(node.outputs))]
    if len(sizes) == 1:
        return [cx.mb.identity(x=x, name=names[0])]
    return list(cx.mb.split(x=x, split_sizes=_i32(sizes), axis=axis, name=names[0] + "_split"))


def _slice(cx, node):
    x = cx.var(node.inputs[0])
    starts, ends = (cx.const(v) for v in node.inputs[1:3])
    axes = cx.const(node.inputs[3]) if len(node.inputs) > 3 and node.inputs[3] else None
    steps = cx.const(node.inputs[4]) if len(node.inputs) > 4 and node.inputs[4] else None
    axes = range(len(starts)) if axes is None else axes
    steps = [1] * len(starts) if steps is None else steps
    begin, end, stride = [0] * x.rank, list(x.shape), [1] * x.rank
    for s, e, a, st in zip(starts, ends, axes, steps, strict=True):
        a, dim = _axis(int(a), x.rank), x.shape[_axis(int(a), x.rank)]
        if st < 0:
            raise cx.unsupported(node, "Slice with a negative step")
        begin[a] = int(min(max(s + dim if s < 0 else s, 0), dim))
        end[a] = int(min(max(e + dim if e < 0 else e, 0), dim))
        stride[a] = int(st)
    return [cx.mb.slice_by_index(x=x, begin=_i32(begin), end=_i32(end), stride=_i32(stride),
                                 name=cx.out(node))]  # fmt: skip


def _gather(cx, node):
    x = cx.var(node.inputs[0])
    axis = _axis(int(_attr(node, "axis", 0)), x.rank)
    if not cx.is_const(node.inputs[1]):
        return [cx.mb.gather(x=x, indices=cx.var(node.inputs[1]), axis=axis, name=cx.out(node))]
    indices = np.asarray(cx.const(node.inputs[1]), np.int64)
    indices = np.where(indices < 0, indices + x.shape[axis], indices)
    if indices.ndim == 0:
        begin, end = [0] * x.rank, list(x.shape)
        begin[axis], end[axis] = int(indices), int(indices) + 1
        part = cx.mb.slice_by_index(
            x=x, begin=_i32(begin), end=_i32(end), name=cx.out(node) + "_slice"
        )
        return [cx.mb.squeeze(x=part, axes=[axis], name=cx.out(node))]
    return [cx.mb.gather(x=x, indices=_i32(indices), axis=axis, name=cx.out(node))]


def _layer_norm(cx, node):
    x = cx.var(node.inputs[0])
    axis = _axis(int(_attr(node, "axis", -1)), x.rank)
    gamma = cx.const(node.inputs[1])
    beta = cx.const(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else None
    norm_shape = tuple(x.shape[axis:])
    return [
        cx.mb.layer_norm(
            x=x,
            axes=list(range(axis, x.rank)),
            gamma=np.broadcast_to(gamma, norm_shape).astype(np.float32),
            beta=None if beta is None else np.broadcast_to(beta, norm_shape).astype(np.float32),
            epsilon=np.float32(_attr(node, "epsilon", 1e-5)),
            name=cx.out(node),
        )
    ]


def _instance_norm(cx, node):
    return [
        cx.mb.instance_norm(
            x=cx.var(node.inputs[0]),
            gamma=cx.const(node.inputs[1]),
            beta=cx.const(node.inputs[2]),
            epsilon=np.float32(_attr(node, "epsilon", 1e-5)),
            name=cx.out(node),
        )
    ]


def _identity(cx, node):
    return [cx.mb.identity(x=cx.var(node.inputs[0]), name=cx.out(node))]


_FLOAT_TYPES = {ir.DataType.FLOAT, ir.DataType.FLOAT16, ir.DataType.DOUBLE, ir.DataType.BFLOAT16}


_CAST_TO = {ir.DataType.BOOL: "bool", ir.DataType.INT32: "int32", ir.DataType.INT64: "int32"}


def _cast(cx, node):
    """Float → float casts (quant::fp16 puts them at the graph's edges) are no-ops here: the
    program's precision is set for all ops at conversion (`compute_precision`). Casts from or
    to bool and integers (a binarised mask) are MIL `cast`s; int64 is int32 in Core ML."""
    to = ir.DataType(int(_attr(node, "to", 0)))
    source = node.inputs[0].dtype
    if to in _FLOAT_TYPES and (source is None or source in _FLOAT_TYPES):
        return [cx.mb.identity(x=cx.var(node.inputs[0]), name=cx.out(node))]
    dtype = "fp32" if to in _FLOAT_TYPES else _CAST_TO.get(to)
    if dtype is None:
        raise cx.unsupported(node, f"Cast from {source} to {to.name}")
    return [cx.mb.cast(x=cx.var(node.inputs[0]), dtype=dtype, name=cx.out(node))]


def _pow(cx, node):
    x = cx.var(node.inputs[0])
    if cx.is_const(node.inputs[1]) and float(cx.const(node.inputs[1])) == 2.0:
        return [cx.mb.mul(x=x, y=x, name=cx.out(node))]
    return [cx.mb.pow(x=x, y=cx.operand(node.inputs[1]), name=cx.out(node))]


def _pad(cx, node):
    """Constant/reflect/edge Pad with constant amounts (EfficientViT's window padding)."""
    x = cx.var(node.inputs[0])
    amounts = [int(v) for v in cx.const(node.inputs[1])]
    value = node.inputs[2] if len(node.inputs) > 2 else None
    fill = float(cx.const(value)) if value is not None else 0.0
    axes = cx.const(node.inputs[3]) if len(node.inputs) > 3 and node.inputs[3] else None
    axes = [_axis(int(a), x.rank) for a in (range(x.rank) if axes is None else axes)]
    begins, ends = [0] * x.rank, [0] * x.rank
    for i, a in enumerate(axes):
        begins[a], ends[a] = amounts[i], amounts[i + len(axes)]
    if min(begins + ends) < 0:
        raise cx.unsupported(node, "Pad with negative amounts (a crop)")
    mode = {"constant": "constant", "reflect": "reflect", "edge": "replicate"}.get(
        _attr(node, "mode", "constant")
    )
    if mode is None:
        raise cx.unsupported(node, f"Pad mode {_attr(node, 'mode', 'constant')}")
    pad = [v for pair in zip(begins, ends, strict=True) for v in pair]
    return [cx.mb.pad(x=x, pad=_i32(pad), mode=mode, constant_val=np.float32(fill),
                      name=cx.out(node))]  # fmt: skip


_BILINEAR_SAMPLING = {
    "half_pixel": "UNALIGN_CORNERS",  # PyTorch align_corners=False
    "pytorch_half_pixel": "UNALIGN_CORNERS",
    "align_corners": "ALIGN_CORNERS",
}


def _resize(cx, node):
    """4-D spatial Resize: bilinear (half-pixel or align-corners) to any size, or nearest
    (asymmetric, floor) by integer factors — what exporters write for F.interpolate; 5-D
    trilinear as two bilinear resizes (`_trilinear`)."""
    x = cx.var(node.inputs[0])
    if x.rank not in (4, 5):
        raise cx.unsupported(node, f"Resize of a rank-{x.rank} tensor")
    sizes = node.inputs[3] if len(node.inputs) > 3 else None
    if sizes is not None:
        out = [int(v) for v in cx.const(sizes)]
    else:
        scales = cx.const(node.inputs[2])
        out = [int(np.floor(d * float(f))) for d, f in zip(x.shape, scales, strict=True)]
    if out[:2] != list(x.shape[:2]):
        raise cx.unsupported(node, "Resize of the batch or channel axis")
    mode = _attr(node, "mode", "nearest")
    transform = _attr(node, "coordinate_transformation_mode", "half_pixel")
    if x.rank == 5:
        if mode == "linear" and transform in _BILINEAR_SAMPLING:
            return [_trilinear(cx, node, x, out, _BILINEAR_SAMPLING[transform])]
        raise cx.unsupported(node, f"5-D Resize mode={mode} coordinate_transformation_mode="
                                   f"{transform} (only trilinear is)")  # fmt: skip
    if mode == "linear" and transform in _BILINEAR_SAMPLING:
        return [cx.mb.resize_bilinear(x=x, target_size_height=out[2], target_size_width=out[3],
                                      sampling_mode=_BILINEAR_SAMPLING[transform],
                                      name=cx.out(node))]  # fmt: skip
    factors = [out[i] // x.shape[i] for i in (2, 3)]
    exact = all(out[i] == f * x.shape[i] for i, f in zip((2, 3), factors, strict=True))
    floor = _attr(node, "nearest_mode", "round_prefer_floor") == "floor"
    if mode == "nearest" and transform == "asymmetric" and floor and exact:
        return [cx.mb.upsample_nearest_neighbor(x=x, scale_factor_height=factors[0],
                                                scale_factor_width=factors[1],
                                                name=cx.out(node))]  # fmt: skip
    raise cx.unsupported(node, f"Resize mode={mode} coordinate_transformation_mode={transform}")


def _trilinear(cx, node, x, out, sampling: str):
    """Trilinear interpolation is separable: H×W bilinear on [N, C·D, H, W], then D linear
    as a bilinear resize of [N, C, D, H'·W'] whose last axis keeps its size (an identity under
    both half-pixel and align-corners mapping). SegFormer3D's volume upsampling."""
    n, c, d, _, _ = x.shape
    _, _, d2, h2, w2 = out
    name = cx.out(node)

    def reshape(v, shape, suffix):
        return cx.mb.reshape(x=v, shape=_i32(shape), name=cx.unique(f"{name}_{suffix}"))

    planes = reshape(x, [n, c * d, x.shape[3], x.shape[4]], "planes")
    planes = cx.mb.resize_bilinear(
        x=planes, target_size_height=h2, target_size_width=w2, sampling_mode=sampling,
        name=cx.unique(f"{name}_hw"),
    )  # fmt: skip
    depth = reshape(planes, [n, c, d, h2 * w2], "depth")
    depth = cx.mb.resize_bilinear(
        x=depth, target_size_height=d2, target_size_width=h2 * w2, sampling_mode=sampling,
        name=cx.unique(f"{name}_d"),
    )  # fmt: skip
    return cx.mb.reshape(x=depth, shape=_i32(out), name=name)


def _gelu(cx, node):
    mode = "TANH_APPROXIMATION" if _attr(node, "approximate", "none") == "tanh" else "EXACT"
    return [cx.mb.gelu(x=cx.var(node.inputs[0]), mode=mode, name=cx.out(node))]


FLOAT_OPS: dict[str, Lower] = {
    "Add": _binary("add"),
    "Sub": _binary("sub"),
    "Mul": _binary("mul"),
    "Div": _binary("real_div"),
    "Max": _binary("maximum"),
    "Min": _binary("minimum"),
    "Pow": _pow,
    "Relu": _unary("relu"),
    "Sigmoid": _unary("sigmoid"),
    "Tanh": _unary("tanh"),
    "Erf": _unary("erf"),
    "Sqrt": _unary("sqrt"),
    "Exp": _unary("exp"),
    "Sin": _unary("sin"),
    "Cos": _unary("cos"),
    "Neg": _unary("mul", y=np.float32(-1.0)),
    "Gelu": _gelu,
    "HardSwish": _hardswish,
    "HardSigmoid": _hardsigmoid,
    "Clip": _clip,
    "Identity": _identity,
    "Cast": _cast,
    "Conv": _conv,
    "ConvTranspose": _conv_transpose,
    "MaxPool": _pool("max_pool"),
    "AveragePool": _pool("avg_pool"),
    "GlobalAveragePool": _global_pool("reduce_mean"),
    "GlobalMaxPool": _global_pool("reduce_max"),
    "ReduceMean": _reduce("reduce_mean"),
    "ReduceSum": _reduce("reduce_sum"),
    "ReduceMax": _reduce("reduce_max"),
    "ReduceL2": _reduce("reduce_l2_norm"),
    "MatMul": _matmul,
    "Gemm": _gemm,
    "Softmax": _softmax,
    "Transpose": _transpose,
    "Reshape": _reshape,
    "Flatten": _flatten,
    "Squeeze": _squeeze,
    "Unsqueeze": _unsqueeze,
    "Concat": _concat,
    "Split": _split,
    "Slice": _slice,
    "Gather": _gather,
    "Resize": _resize,
    "Pad": _pad,
    "LayerNormalization": _layer_norm,
    "InstanceNormalization": _instance_norm,
}


def shape_inputs(op_type: str) -> tuple[int, ...]:
    """Input positions of `op_type` that must be constants for the lowering (shapes, axes)."""
    return _SHAPE_INPUTS.get(op_type, ())


_SHAPE_INPUTS = {
    "Reshape": (1,),
    "Split": (1,),
    "Slice": (1, 2, 3, 4),
    "Resize": (2, 3),
    "Pad": (1, 2, 3),
    "Squeeze": (1,),
    "Unsqueeze": (1,),
    "ReduceMean": (1,),
    "ReduceSum": (1,),
    "ReduceMax": (1,),
    "ReduceL2": (1,),
    "Clip": (1, 2),
    "LayerNormalization": (1, 2),
    "InstanceNormalization": (1, 2),
    "Conv": (1, 2),
    "ConvTranspose": (1, 2),
}
