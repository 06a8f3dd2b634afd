"""A numpy reference evaluator for the MIL programs edgec emits (Core ML cannot run on Linux).

    outputs = run_program(program, {"image": pixels})    # program: coreml_package.load_program
    record = reference_check(onnx_model, package_path, app, precision)

The program is the one read back from the saved `.mlpackage`, after every coremltools pass
(fusions, fp16 casts, constexpr weights), so this checks what ships. Each op is computed in
float32 (float64 for reductions that need it) and its result is stored in the op's declared
dtype: an fp16 program rounds every intermediate to fp16, as Core ML stores it. Quantized
weights are expanded by coremltools' own `materialized_val_inference` of the `constexpr_*`
op (Apple's reference semantics); `quantize` rounds half to even and saturates.

What it does not reproduce: the Neural Engine's and GPU's accumulation order and internal
precision, and op fusions Core ML makes when it compiles the model on the device. It is a
check of the graph, its weights and quantization parameters, not of Apple's kernels.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from edgec.errors import UserError

_DTYPES = {
    "fp16": np.float16,
    "fp32": np.float32,
    "int32": np.int32,
    "int16": np.int16,
    "uint16": np.uint16,
    "int8": np.int8,
    "uint8": np.uint8,
    "bool": np.bool_,
    "int64": np.int64,
    "int4": np.int8,
    "uint4": np.uint8,
}  # fmt: skip  (4-bit values in 8-bit storage)
_erf = np.vectorize(math.erf, otypes=[np.float64])


def run_program(program, feeds: dict[str, np.ndarray]) -> dict[str, Any]:
    """Evaluate the `main` function of a MIL program on `feeds` (name → array)."""
    from coremltools.converters.mil.mil import types

    function = program.functions["main"]
    values: dict[str, Any] = {}
    for name, var in function.inputs.items():
        if name not in feeds:
            raise UserError(f"no value for program input {name!r}")
        values[var.name] = np.asarray(feeds[name]).astype(_np_dtype(var, types))
    for op in function.operations:
        results = _evaluate(op, values)
        results = results if isinstance(results, tuple) else (results,)
        for var, result in zip(op.outputs, results, strict=True):
            if types.is_tensor(var.sym_type) or (
                types.is_scalar(var.sym_type) and (types.builtin_to_string(var.sym_type) in _DTYPES)
            ):
                result = np.asarray(result).astype(_np_dtype(var, types))
            values[var.name] = result
    return {var.name: values[var.name] for var in function.outputs}


def _np_dtype(var, types):
    name = types.builtin_to_string(var.dtype if types.is_tensor(var.sym_type) else var.sym_type)
    if name not in _DTYPES:
        raise UserError(f"the reference evaluator has no dtype {name} (var {var.name})")
    return _DTYPES[name]


def _evaluate(op, values: dict[str, Any]):
    if op.op_type == "const":
        return op.outputs[0].val
    if op.op_type.startswith("constexpr_"):
        return op.materialized_val_inference()
    kernel = KERNELS.get(op.op_type)
    if kernel is None:
        raise UserError(
            f"the Core ML reference evaluator has no kernel for MIL op {op.op_type!r}",
            "add it to runtimes/coreml_eval.py (KERNELS)",
        )
    args = {}
    for name, var in op.inputs.items():
        if isinstance(var, (list, tuple)):
            args[name] = [_value(v, values) for v in var]
        else:
            args[name] = _value(var, values)
    return kernel(**args)


def _value(var, values):
    if var.name in values:
        return values[var.name]
    return var.val


def _f(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)


def _bshape(v: np.ndarray, rank: int, axis: int = 1) -> np.ndarray:
    shape = [1] * rank
    shape[axis] = -1
    return _f(v).reshape(shape)


# --- convolution ---------------------------------------------------------------------------


def _explicit_pads(pad_type, pad, size, kernel, strides, dilations) -> list[tuple[int, int]]:
    spatial = len(kernel)
    if pad_type == "custom":
        return [(int(pad[2 * i]), int(pad[2 * i + 1])) for i in range(spatial)]
    if pad_type == "valid":
        return [(0, 0)] * spatial
    pads = []
    for i in range(spatial):
        out = -(-size[i] // strides[i])
        total = max(0, (out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - size[i])
        lo = total // 2 if pad_type == "same" else total - total // 2
        pads.append((lo, total - lo))
    return pads


def _conv(x, weight, bias=None, strides=None, pad_type="valid", pad=None, dilations=None,
          groups=1):  # fmt: skip
    """N×C×spatial convolution (2-D and 3-D; 1-D treated as H = 1), grouped, by sliding
    windows + einsum."""
    x, w = _f(x), _f(weight)
    one_d = x.ndim == 3
    if one_d:
        x, w = x[:, :, None], w[:, :, None]
        strides = [1, *(strides if strides is not None else [1])]
        dilations = [1, *(dilations if dilations is not None else [1])]
        pad = None if pad is None else [0, 0, *pad]
    spatial = x.ndim - 2
    strides = [int(s) for s in (strides if strides is not None else [1] * spatial)]
    dilations = [int(d) for d in (dilations if dilations is not None else [1] * spatial)]
    kernel = [(k - 1) * d + 1 for k, d in zip(w.shape[2:], dilations, strict=True)]
    pads = _explicit_pads(pad_type, pad, x.shape[2:], w.shape[2:], strides, dilations)
    x = np.pad(x, [(0, 0), (0, 0), *pads])
    n, c = x.shape[:2]
    g = int(groups)
    o = w.shape[0]
    windows = np.lib.stride_tricks.sliding_window_view(x, kernel, axis=tuple(range(2, x.ndim)))
    steps = tuple(slice(None, None, s) for s in strides + dilations)
    windows = windows[(slice(None), slice(None), *steps)]
    windows = windows.reshape(n, g, c // g, *windows.shape[2:])
    wg = w.reshape(g, o // g, c // g, *w.shape[2:])
    out, taps = "hwz"[:spatial], "ijk"[:spatial]
    y = np.einsum(f"ngc{out}{taps},goc{taps}->ngo{out}", windows, wg, optimize=True)
    y = y.reshape(n, o, *y.shape[3:])
    if bias is not None:
        y = y + _bshape(bias, 2 + spatial)
    return y[:, :, 0] if one_d else y


def _conv_transpose(x, weight, bias=None, pad=None, output_shape=None, pad_type="valid",
                    strides=None, dilations=None, groups=1):  # fmt: skip
    """Transposed conv as a conv of the stride-dilated input with the flipped kernel."""
    x, w = _f(x), _f(weight)
    g = int(groups)
    c_in, c_out_g = w.shape[:2]
    k = w.shape[2:]
    strides = [int(s) for s in (strides if strides is not None else [1, 1])]
    dilations = [int(d) for d in (dilations if dilations is not None else [1, 1])]
    n, _, h, wd = x.shape
    up = np.zeros((n, c_in, (h - 1) * strides[0] + 1, (wd - 1) * strides[1] + 1), np.float32)
    up[:, :, :: strides[0], :: strides[1]] = x
    # weight [C_in, C_out/g, kh, kw] → conv weight [C_out, C_in/g, kh, kw], spatially flipped
    wc = w.reshape(g, c_in // g, c_out_g, *k).transpose(0, 2, 1, 3, 4)
    wc = wc.reshape(g * c_out_g, c_in // g, *k)[:, :, ::-1, ::-1]
    full = [(k[i] - 1) * dilations[i] for i in range(2)]
    y = _conv(up, wc, None, [1, 1], "custom", [full[0], full[0], full[1], full[1]],
              dilations, g)  # fmt: skip
    pads = [int(p) for p in (pad if pad is not None and pad_type == "custom" else [0] * 4)]
    y = y[:, :, pads[0] : y.shape[2] - pads[1], pads[2] : y.shape[3] - pads[3]]
    if output_shape is not None:
        oh, ow = (int(s) for s in list(output_shape)[2:])
        y = np.pad(y, [(0, 0), (0, 0), (0, max(0, oh - y.shape[2])), (0, max(0, ow - y.shape[3]))])
        y = y[:, :, :oh, :ow]
    if bias is not None:
        y = y + _bshape(bias, 4)
    return y


def _pool(reduce):
    def pool(x, kernel_sizes, strides=None, pad_type="valid", pad=None,
             exclude_padding_from_average=False, ceil_mode=False):  # fmt: skip
        x = _f(x)
        k = [int(v) for v in kernel_sizes]
        strides = [int(s) for s in (strides if strides is not None else [1] * len(k))]
        pads = _explicit_pads(pad_type, pad, x.shape[2:], k, strides, [1] * len(k))
        fill = -np.inf if reduce is np.max else 0.0
        xp = np.pad(x, [(0, 0), (0, 0), *pads], constant_values=fill)
        win = np.lib.stride_tricks.sliding_window_view(xp, k, axis=(2, 3))
        win = win[:, :, :: strides[0], :: strides[1]]
        if reduce is np.max:
            return win.max(axis=(-2, -1))
        total = win.sum(axis=(-2, -1))
        if exclude_padding_from_average:
            ones = np.pad(np.ones(x.shape[2:], np.float32), pads)
            cnt = np.lib.stride_tricks.sliding_window_view(ones, k)[:: strides[0], :: strides[1]]
            return total / cnt.sum(axis=(-2, -1))
        return total / float(np.prod(k))

    return pool


# --- normalisation, activation, reduction ---------------------------------------------------


def _norm(x, axes, gamma, beta, epsilon, param_axis=None):
    x = _f(x).astype(np.float64)
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    y = (x - mean) / np.sqrt(var + float(epsilon))
    if param_axis is not None:  # instance norm: per-channel gamma/beta
        gamma = None if gamma is None else _bshape(gamma, x.ndim, param_axis)
        beta = None if beta is None else _bshape(beta, x.ndim, param_axis)
    if gamma is not None:
        y = y * _f(gamma)
    if beta is not None:
        y = y + _f(beta)
    return y


def _layer_norm(x, axes=None, gamma=None, beta=None, epsilon=1e-5):
    axes = tuple(int(a) for a in (axes if axes is not None else range(np.ndim(x))))
    return _norm(x, axes, gamma, beta, epsilon)


def _instance_norm(x, gamma=None, beta=None, epsilon=1e-5):
    return _norm(x, tuple(range(2, np.ndim(x))), gamma, beta, epsilon, param_axis=1)


def _batch_norm(x, mean, variance, gamma=None, beta=None, epsilon=1e-5):
    x = _f(x)
    r = x.ndim
    y = (x - _bshape(mean, r)) / np.sqrt(_bshape(variance, r) + float(epsilon))
    if gamma is not None:
        y = y * _bshape(gamma, r)
    return y + _bshape(beta, r) if beta is not None else y


def _softmax(x, axis=-1):
    x = _f(x).astype(np.float64)
    e = np.exp(x - x.max(axis=int(axis), keepdims=True))
    return e / e.sum(axis=int(axis), keepdims=True)


def _gelu(x, mode="EXACT"):
    x = _f(x).astype(np.float64)
    if mode == "TANH_APPROXIMATION":
        return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    if mode == "SIGMOID_APPROXIMATION":
        return x / (1 + np.exp(-1.702 * x))
    return 0.5 * x * (1 + _erf(x / math.sqrt(2)))


def _reduce(fn):
    def reduce(x, axes=None, keep_dims=False):
        axes = None if axes is None else tuple(int(a) for a in np.ravel(axes))
        return fn(_f(x).astype(np.float64), axis=axes, keepdims=bool(keep_dims))

    return reduce


# --- layout ---------------------------------------------------------------------------------


def _reshape(x, shape):
    shape = [int(s) for s in shape]
    shape = [np.shape(x)[i] if s == 0 else s for i, s in enumerate(shape)]
    return np.reshape(x, shape)


def _split(x, split_sizes=None, num_splits=None, axis=0):
    axis = int(axis)
    if split_sizes is None:
        return tuple(np.split(x, int(num_splits), axis=axis))
    return tuple(np.split(x, np.cumsum([int(s) for s in split_sizes])[:-1], axis=axis))


def _slice_by_index(x, begin, end, stride=None, begin_mask=None, end_mask=None,
                    squeeze_mask=None):  # fmt: skip
    index = []
    for i in range(np.ndim(x)):
        b = None if begin_mask is not None and begin_mask[i] else int(begin[i])
        e = None if end_mask is not None and end_mask[i] else int(end[i])
        s = 1 if stride is None else int(stride[i])
        if squeeze_mask is not None and squeeze_mask[i]:
            index.append(b)
        else:
            index.append(slice(b, e, s))
    return np.asarray(x)[tuple(index)]


def _concat(values, axis, interleave=False):
    if interleave:
        raise UserError("the reference evaluator has no interleaved concat")
    return np.concatenate([np.asarray(v, np.float32) if np.asarray(v).dtype == np.float16
                           else np.asarray(v) for v in values], axis=int(axis))  # fmt: skip


def _sdpa(query, key, value, attn_mask=None):
    q, k, v = _f(query), _f(key), _f(value)
    scores = q @ np.swapaxes(k, -1, -2) / math.sqrt(q.shape[-1])
    if attn_mask is not None:
        mask = np.asarray(attn_mask)
        scores = np.where(mask, scores, -np.inf) if mask.dtype == np.bool_ else scores + _f(mask)
    return _softmax(scores, -1) @ v


# --- quantization ---------------------------------------------------------------------------


def _qparams(x, scale, zero_point, axis):
    scale = _f(scale)
    zp = np.zeros((), np.float32) if zero_point is None else _f(zero_point)
    if axis is not None and scale.ndim == 1 and scale.size > 1:
        scale = _bshape(scale, np.ndim(x), int(axis))
        zp = _bshape(zp, np.ndim(x), int(axis)) if zp.size > 1 else zp
    return scale, zp


def _quantize(input, scale, zero_point=None, axis=None, output_dtype="uint8"):
    scale, zp = _qparams(input, scale, zero_point, axis)
    info = np.iinfo(_DTYPES[str(output_dtype)])
    q = np.round(_f(input) / scale) + zp  # np.round: half to even, as ONNX QuantizeLinear
    return np.clip(q, info.min, info.max).astype(_DTYPES[str(output_dtype)])


def _dequantize(input, scale, zero_point=None, axis=None):
    scale, zp = _qparams(input, scale, zero_point, axis)
    return (_f(input) - zp) * scale


def _classify(probabilities, classes):
    probs = np.asarray(probabilities).reshape(-1)
    labels = list(getattr(classes, "ls", classes))
    return labels[int(np.argmax(probs))], dict(zip(labels, probs.tolist(), strict=True))


def _resize_bilinear(x, target_size_height, target_size_width, sampling_mode="DEFAULT"):
    """N×C×H×W bilinear resize as Core ML's UNALIGN_CORNERS (PyTorch align_corners=False)
    or ALIGN_CORNERS sampling."""
    x = _f(x)
    for axis, size in ((2, int(target_size_height)), (3, int(target_size_width))):
        n = x.shape[axis]
        dst = np.arange(size, dtype=np.float64)
        if sampling_mode == "ALIGN_CORNERS":
            src = dst * ((n - 1) / (size - 1)) if size > 1 else np.zeros(size)
        elif sampling_mode == "UNALIGN_CORNERS":
            src = np.maximum((dst + 0.5) * (n / size) - 0.5, 0.0)
        else:
            raise NotImplementedError(f"resize_bilinear sampling_mode {sampling_mode}")
        low = np.minimum(np.floor(src).astype(np.int64), n - 1)
        high = np.minimum(low + 1, n - 1)
        shape = [1] * x.ndim
        shape[axis] = size
        weight = (src - low).reshape(shape)
        x = np.take(x, low, axis=axis) * (1 - weight) + np.take(x, high, axis=axis) * weight
    return x.astype(np.float32)


def _pad(x, pad, mode="constant", constant_val=0.0):
    """MIL pad: `pad` holds (begin, end) pairs for the last len(pad)/2 axes."""
    x = np.asarray(x)
    pairs = np.asarray(pad, np.int64).reshape(-1, 2).tolist()
    widths = [(0, 0)] * (x.ndim - len(pairs)) + [tuple(p) for p in pairs]
    if mode == "constant":
        return np.pad(x, widths, constant_values=float(constant_val))
    return np.pad(x, widths, mode={"reflect": "reflect", "replicate": "edge"}[str(mode)])


def _binary(fn):
    return lambda x, y: fn(_f(x), _f(y)) if np.asarray(x).dtype.kind == "f" else fn(x, y)


def _gather_nd(x, indices, batch_dims=0, validate_indices=False):
    """MIL gather_nd: index tuples in the last axis of `indices` pick slices of `x`."""
    x, idx, batch = np.asarray(x), np.asarray(indices, np.int64), int(batch_dims)
    if batch:
        return np.stack([_gather_nd(a, i, batch - 1) for a, i in zip(x, idx, strict=True)])
    depth = idx.shape[-1]
    picked = [x[tuple(i)] for i in idx.reshape(-1, depth)]
    return np.asarray(picked).reshape(idx.shape[:-1] + x.shape[depth:])


KERNELS = {
    "add": _binary(np.add),
    "sub": _binary(np.subtract),
    "mul": _binary(np.multiply),
    "real_div": _binary(np.divide),
    "maximum": _binary(np.maximum),
    "minimum": _binary(np.minimum),
    "pow": _binary(np.power),
    "relu": lambda x: np.maximum(_f(x), 0),
    "sigmoid": lambda x: 1 / (1 + np.exp(-_f(x).astype(np.float64))),
    "sigmoid_hard": lambda x, alpha=0.2, beta=0.5: np.clip(
        float(alpha) * _f(x) + float(beta), 0, 1
    ),
    "silu": lambda x: _f(x) / (1 + np.exp(-_f(x).astype(np.float64))),
    "tanh": lambda x: np.tanh(_f(x)),
    "erf": lambda x: _erf(_f(x)),
    "exp": lambda x: np.exp(_f(x)),
    "sqrt": lambda x: np.sqrt(_f(x)),
    "sin": lambda x: np.sin(_f(x)),
    "cos": lambda x: np.cos(_f(x)),
    "equal": _binary(np.equal),
    "greater": _binary(np.greater),
    "less": _binary(np.less),
    "greater_equal": _binary(np.greater_equal),
    "less_equal": _binary(np.less_equal),
    "not_equal": _binary(np.not_equal),
    "logical_and": np.logical_and,
    "logical_or": np.logical_or,
    "logical_not": np.logical_not,
    "tile": lambda x, reps: np.tile(x, [int(r) for r in reps]),
    "select": lambda cond, a, b: np.where(np.asarray(cond, bool), a, b),
    "reduce_argmax": lambda x, axis=-1, keep_dims=False, output_dtype="int32": np.argmax(
        _f(x), axis=int(axis), keepdims=bool(keep_dims)
    ),
    "gather_nd": _gather_nd,
    "clip": lambda x, alpha, beta: np.clip(_f(x), float(alpha), float(beta)),
    "gelu": _gelu,
    "identity": lambda x: x,
    "cast": lambda x, dtype: np.asarray(x).astype(_DTYPES[str(dtype)]),
    "conv": _conv,
    "conv_transpose": _conv_transpose,
    "max_pool": _pool(np.max),
    "avg_pool": _pool(np.mean),
    "linear": lambda x, weight, bias=None: _f(x) @ _f(weight).T + (0 if bias is None else _f(bias)),
    "matmul": lambda x, y, transpose_x=False, transpose_y=False: np.matmul(
        np.swapaxes(_f(x), -1, -2) if transpose_x else _f(x),
        np.swapaxes(_f(y), -1, -2) if transpose_y else _f(y),
    ),
    "softmax": _softmax,
    "layer_norm": _layer_norm,
    "instance_norm": _instance_norm,
    "batch_norm": _batch_norm,
    "reduce_mean": _reduce(np.mean),
    "reduce_sum": _reduce(np.sum),
    "reduce_max": _reduce(np.max),
    "reduce_l2_norm": _reduce(lambda x, **kw: np.sqrt(np.sum(x * x, **kw))),
    "reshape": _reshape,
    "transpose": lambda x, perm: np.transpose(x, [int(p) for p in perm]),
    "squeeze": lambda x, axes=None: np.squeeze(
        x, None if axes is None else tuple(int(a) for a in axes)
    ),
    "expand_dims": lambda x, axes: np.expand_dims(x, tuple(int(a) for a in axes)),
    "concat": _concat,
    "split": _split,
    "slice_by_index": _slice_by_index,
    "resize_bilinear": _resize_bilinear,
    "pad": _pad,
    "upsample_nearest_neighbor": lambda x, scale_factor_height=1, scale_factor_width=1: np.repeat(
        np.repeat(x, int(scale_factor_height), axis=2), int(scale_factor_width), axis=3
    ),
    "gather": lambda x, indices, axis=0, batch_dims=0, validate_indices=False: np.take(
        x, np.asarray(indices, np.int64), axis=int(axis)
    ),
    "scaled_dot_product_attention": _sdpa,
    "quantize": _quantize,
    "dequantize": _dequantize,
    "classify": _classify,
}
