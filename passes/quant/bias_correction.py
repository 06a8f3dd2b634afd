"""Bias correction: remove the mean output error that quantizing a layer's weights causes.

A layer computes y = W·x + b. With quantized weights W' = W + ΔW it computes y + ΔW·x, whose
mean over the data is ΔW·E[x]: the weight error shifts every output channel by a constant that
no later layer undoes (Nagel et al., "Data-Free Quantization", 2019). Folding −ΔW·E[x] into the
bias removes that shift exactly in expectation:

    before: W' ─► Conv(x, W', b)            E[y'] = E[y] + ΔW·E[x]
    after:  W' ─► Conv(x, W', b − ΔW·μ)     E[y'] = E[y]          (μ = E[x] per input channel)

`quant::calibrate` measures μ (each weight layer's mean input per channel, over the calibration
samples and every position) and `quant::weights` applies the shift when it quantizes the
weight. A convolution with a k×k kernel, a stride or padding gets μ per channel *and tap*: the
mean, over the output positions, of the input each kernel tap reads (zero where it reads the
padding, every stride-th position), so ΔW·μ is the exact mean shift of its output even where
the borders are much of the map (a 5×5 conv on a 4×4 map reads padding at every output):

    μ[c, i, j] = mean over samples and outputs (y, x) of pad(x)[c, s·y + d·i, s·x + d·j]
    shift[o]   = Σ_{c, i, j} ΔW[o, c, i, j] · μ[c of o's group, i, j]

Where a layer's bias is not a constant of its own (a Gemm whose C is an activation, a MatMul
not followed by an Add of a constant) nothing is changed.
"""

from __future__ import annotations

import json

import numpy as np
import onnx_ir as ir

from edgec.passes._graph import Names, const_array, drop_if_unused
from edgec.passes.quant import _policy
from edgec.passes.quant._build import add_initializer


def input_channel_axis(node: ir.Node) -> int | None:
    """The channel axis of a weight layer's input, or None for a layer bias correction does not
    take (ConvTranspose, a Gemm with transA)."""
    if node.op_type == "Conv":
        return 1
    if node.op_type == "MatMul" or (
        node.op_type == "Gemm" and not node.attributes.get_int("transA", 0)
    ):
        return -1
    return None


def mean_reading(node: ir.Node) -> tuple:
    """How `node` reads its input, as far as its mean input goes: `("channels", axis)`, or
    `("taps", kernel, strides, pads, dilations)` for a convolution whose taps do not all see
    the same positions (kernel > 1, a stride, padding)."""
    axis = input_channel_axis(node)
    weight = node.inputs[1].shape if len(node.inputs) > 1 else None
    if node.op_type != "Conv" or weight is None or not all(isinstance(d, int) for d in weight):
        return ("channels", axis)
    kernel = tuple(weight[2:])
    spatial = len(kernel)
    strides = tuple(node.attributes.get_ints("strides", [1] * spatial))
    pads = tuple(node.attributes.get_ints("pads", [0] * 2 * spatial))
    dilations = tuple(node.attributes.get_ints("dilations", [1] * spatial))
    same = node.attributes.get_string("auto_pad", "NOTSET") not in ("NOTSET", "VALID")
    # 1×1, stride 1, unpadded: its one tap reads every position; auto_pad SAME: the padding
    # is not in the attributes, so the channel mean stays (the pre-tap approximation)
    if same or (set(kernel) | set(strides) == {1} and not any(pads)):
        return ("channels", axis)
    return ("taps", kernel, strides, pads, dilations)


def input_mean(array: np.ndarray, reading: tuple) -> np.ndarray:
    """The mean input of one sample as `reading` (`mean_reading`) says: [C] or [C, *kernel]
    (float64)."""
    if reading[0] == "channels":
        moved = np.moveaxis(array.astype(np.float64), reading[1], 0)
        return moved.reshape(moved.shape[0], -1).mean(axis=1)
    _, kernel, strides, pads, dilations = reading
    spatial = len(kernel)
    padded = np.pad(
        array.astype(np.float64),
        [(0, 0), (0, 0), *zip(pads[:spatial], pads[spatial:], strict=True)],
    )
    outputs = [
        (size - dilation * (k - 1) - 1) // stride + 1
        for size, k, stride, dilation in zip(
            padded.shape[2:], kernel, strides, dilations, strict=True
        )
    ]
    means = np.empty((array.shape[1], *kernel))
    for tap in np.ndindex(*kernel):
        window = tuple(
            slice(t * dilation, t * dilation + stride * (n - 1) + 1, stride)
            for t, dilation, stride, n in zip(tap, dilations, strides, outputs, strict=True)
        )
        means[(slice(None), *tap)] = padded[(slice(None), slice(None), *window)].mean(
            axis=(0, *range(2, 2 + spatial))
        )
    return means


def output_shift(node: ir.Node, delta: np.ndarray, mean: np.ndarray) -> np.ndarray | None:
    """ΔW·μ per output channel, for a Conv, Gemm or MatMul weight error `delta` and the mean
    input `mean` (per channel, or per channel and tap for a Conv: `input_mean`)."""
    if node.op_type == "Conv":
        groups = node.attributes.get_int("group", 1)
        out_channels, per_group = delta.shape[:2]
        if mean.shape[0] != groups * per_group or mean.shape[1:] not in ((), delta.shape[2:]):
            return None
        per_group_mean = mean.reshape(groups, per_group, *mean.shape[1:])[
            np.arange(out_channels) * groups // out_channels
        ]
        if mean.ndim == 1:  # every tap sees the channel's mean
            delta = delta.reshape(out_channels, per_group, -1).sum(axis=2)
        return (delta * per_group_mean).reshape(out_channels, -1).sum(axis=1)
    transposed = node.op_type == "Gemm" and node.attributes.get_int("transB", 0)
    matrix = delta.T if transposed else delta  # [K, O]
    return None if mean.size != matrix.shape[0] else mean @ matrix


def correct_bias(model: ir.Model, node: ir.Node, shift: np.ndarray, names: Names) -> bool:
    """Subtract `shift` from the layer's own constant bias (a new one if it has none)."""
    bias_input = _bias_input(node)
    if bias_input is None:
        return False
    reader, index = bias_input
    old = reader.inputs[index] if index < len(reader.inputs) else None
    base = np.zeros(shift.shape, np.float32) if old is None else const_array(old)
    if base is None or base.size != shift.size:
        return False
    corrected = (base.reshape(-1) - shift).astype(np.float32).reshape(base.shape)
    label = old.name if old is not None else f"{node.name or node.op_type}_bias"
    value = add_initializer(model, names, f"{label}_corrected", corrected)
    if old is None:
        reader.resize_inputs(index + 1)
    reader.replace_input_with(index, value)
    if old is not None:
        drop_if_unused(old)
    return True


def mean_of(node: ir.Node) -> np.ndarray | None:
    """The mean input per channel quant::calibrate recorded on `node`, if any."""
    text = node.metadata_props.get(_policy.INPUT_MEAN_KEY)
    return None if text is None else np.asarray(json.loads(text), np.float64)


def _bias_input(node: ir.Node) -> tuple[ir.Node, int] | None:
    """(node, input index) of the constant the layer adds per output channel: the Conv's or
    Gemm's bias input (present or not), or the constant of the Add that alone reads a MatMul."""
    if node.op_type in ("Conv", "Gemm"):
        index = 2
        present = index < len(node.inputs) and node.inputs[index] is not None
        if present and const_array(node.inputs[index]) is None:
            return None  # an activation added inside the Gemm (e.g. the cascade's chunk)
        return node, index
    uses = node.outputs[0].uses()
    if len(uses) != 1 or uses[0].node.op_type != "Add":
        return None
    add = uses[0].node
    other = 1 - uses[0].idx
    if const_array(add.inputs[other]) is None or len(add.inputs[other].uses()) != 1:
        return None
    return add, other
