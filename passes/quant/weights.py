"""`quant::weights`: Conv / ConvTranspose / Gemm / MatMul weights → integers behind a DQ.

    before: W (float32 initializer) ───────────────────────────────► Conv(x, W, b)
    after (bits=8): W_q (INT8) ─ DequantizeLinear(scale [O], zp 0, axis=out) ─► Conv(x, ·, b)
    after (bits=4): W_q4 (INT4) ─ DequantizeLinear(scale, axis=red, block_size=B) ─► Conv(x, ·, b)

The exact form (axes, the two-level int4 scales, which layers stay 8-bit) is
docs/quantization.md's; the arithmetic is `weight_math.py`. With bits=4 a layer whose
reduction has fewer than `min_reduction` elements per output channel (depthwise, stem) gets
8 bits. A reduction that is not a multiple of `block_size` gets the largest smaller block
(halving, down to `min_block`) that divides it, e.g. 48 → 16 (no partial blocks, so every
backend can widen int4 to int8 by reshaping); with none it gets 8 bits, and so does a layer
the accuracy budget wants at 8 bit (`_policy.WEIGHT_BITS_KEY`), and so do the model's output
layers (the last weight layer on a path to a graph output: a classifier or segmentation head,
`_policy.OUTPUT_LAYER_KEY`). A head is a small share of the weights, but int4 error there is
not averaged by any later layer and, on a folded BatchNorm1d → Linear head, is multiplied by the
uncentred pooled features: on a trained EfficientViT-M2 (CIFAR-10) the int4 head alone moved the
logits by 39 % (relative squared error), the next worst layer by 0.7 %. Layers marked float
(`_policy.KEEP_FLOAT_KEY`: the accuracy budget, `quant::ort_slow_int8`) are left alone. Where
quant::calibrate measured a layer's mean input, its bias absorbs the mean error the quantized
weight causes (`bias_correction.py`; option `bias_correction`). A quantized weight is no
longer a constant input, so a second run changes nothing.
"""

from __future__ import annotations

import dataclasses
import json

import ml_dtypes
import numpy as np
import onnx_ir as ir

from edgec.errors import UserError
from edgec.pass_manager import EdgecPass, register_pass
from edgec.passes._graph import Names, const_array, drop_if_unused
from edgec.passes.quant import _policy, bias_correction
from edgec.passes.quant._build import add_initializer
from edgec.passes.quant.weight_math import int4_blocks, int8_per_channel

CHANNEL_SCALE_KEY = "edgec.quant.channel_scale"  # on an int4 DQ node: JSON list, base scales
OUTPUT_LAYER = "8-bit weights: a model output layer (int4 there costs the most accuracy)"
INT4_OPSET = 21
BLOCK_SIZES = (32, 64, 128)


@register_pass
class QuantizeWeights(EdgecPass):
    id = "quant::weights"

    @dataclasses.dataclass(frozen=True)
    class Options:
        bits: int = 8
        block_size: int = 32
        reduce_range: bool = False
        min_reduction: int = 32
        min_block: int = 16  # smallest block for a reduction that `block_size` does not divide
        # subtract ΔW·E[x] from the bias where quant::calibrate measured E[x]
        bias_correction: bool = True

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        opts = self.options
        if opts.bits not in (4, 8):
            raise UserError(f"quant::weights bits must be 4 or 8, got {opts.bits}")
        if opts.bits == 4 and opts.block_size not in BLOCK_SIZES:
            raise UserError(
                f"int4 block size {opts.block_size} is not supported",
                f"choose one of: {', '.join(map(str, BLOCK_SIZES))}",
            )
        names = Names(model)
        heads = output_layers(model.graph) if opts.bits == 4 else set()
        for node in list(model.graph):
            axes = weight_axes(node)
            if axes is None or _policy.KEEP_FLOAT_KEY in node.metadata_props:
                continue
            weight = node.inputs[1]
            array = const_array(weight)
            out_axis, red_axis = axes
            reduction = array.shape[red_axis]
            block = layer_block(reduction, opts.block_size, opts.min_block)
            four = (
                opts.bits == 4
                and node.metadata_props.get(_policy.WEIGHT_BITS_KEY) != "8"
                and reduction >= opts.min_reduction
                and block is not None
            )
            if four and node in heads:
                node.metadata_props[_policy.OUTPUT_LAYER_KEY] = OUTPUT_LAYER
                self.stats["int8_output_layers"] += 1
                four = False
            if four:
                dequantized = self._int4(model, node, weight, array, axes, block, names)
                self.stats["int4_smaller_block"] += block != opts.block_size
            else:
                dequantized = self._int8(model, node, weight, array, out_axis, names)
            if opts.bias_correction:
                self._correct_bias(model, node, dequantized - array, names)
            self.stats["int4_layers" if four else "int8_layers"] += 1
            self.stats["weights_quantized"] += int(array.size)
            drop_if_unused(weight)
        modified = bool(self.stats["int4_layers"] or self.stats["int8_layers"])
        if self.stats["int4_layers"] and model.opset_imports.get("", 0) < INT4_OPSET:
            model.opset_imports[""] = INT4_OPSET
            model.graph.opset_imports[""] = INT4_OPSET
            self.stats["opset_raised_to_21"] = 1
        return ir.passes.PassResult(model, modified=modified)

    def _correct_bias(self, model, node, delta: np.ndarray, names) -> None:
        mean = bias_correction.mean_of(node)
        if mean is None:
            return
        shift = bias_correction.output_shift(node, delta, mean)
        corrected = shift is not None and bias_correction.correct_bias(model, node, shift, names)
        self.stats["bias_corrected" if corrected else "bias_not_correctable"] += 1

    def _int8(self, model, node, weight, array, out_axis, names) -> np.ndarray:
        """Quantize to int8 behind a DQ; returns the dequantized weight."""
        qmax = 63 if self.options.reduce_range else 127
        q, scale = int8_per_channel(array, out_axis, qmax)
        inputs = [
            add_initializer(model, names, f"{weight.name}_q", q),
            add_initializer(model, names, f"{weight.name}_scale", scale),
            add_initializer(
                model, names, f"{weight.name}_zero_point", np.zeros(len(scale), np.int8)
            ),
        ]
        _insert_dq(node, inputs, {"axis": out_axis}, weight, names)
        shape = [1] * array.ndim
        shape[out_axis] = -1
        return q.astype(np.float32) * scale.reshape(shape)

    def _int4(self, model, node, weight, array, axes, block, names) -> np.ndarray:
        """Quantize to int4 blocks behind a DQ; returns the dequantized weight."""
        out_axis, red_axis = axes
        k_max = 7 if self.options.reduce_range else 15
        quant = int4_blocks(array, out_axis, red_axis, block, k_max)
        inputs = [
            add_initializer(model, names, f"{weight.name}_q4", quant.q.astype(ml_dtypes.int4)),
            add_initializer(model, names, f"{weight.name}_block_scale", quant.block_scale),
        ]
        attrs = {"axis": red_axis, "block_size": block}
        dq = _insert_dq(node, inputs, attrs, weight, names)
        dq.metadata_props[CHANNEL_SCALE_KEY] = json.dumps(quant.channel_scale.tolist())
        return quant.dequantized(red_axis, block)


def output_layers(graph: ir.Graph) -> set[ir.Node]:
    """The weight layers nearest the graph outputs: walking up from each output through
    non-weight nodes, the first weight layer met on every path."""
    heads: set[ir.Node] = set()
    seen: set[ir.Node] = set()
    stack = [v.producer() for v in graph.outputs]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if weight_axes(node) is not None:
            heads.add(node)
        else:
            stack.extend(v.producer() for v in node.inputs if v is not None)
    return heads


def layer_block(reduction: int, block_size: int, min_block: int) -> int | None:
    """`block_size`, or the largest half, quarter… of it (≥ `min_block`) dividing `reduction`."""
    block = block_size
    while block >= min_block:
        if reduction % block == 0:
            return block
        block //= 2
    return None


def weight_axes(node: ir.Node) -> tuple[int, int] | None:
    """(output-channel axis, reduction axis) of `node`'s constant float weight, or None."""
    if node.op_type not in _policy.WEIGHT_OPS or len(node.inputs) < 2:
        return None
    weight = node.inputs[1]
    array = const_array(weight)
    if array is None or array.dtype != np.float32 or weight.name is None:
        return None
    return _axes(node, array.ndim)


def output_axis_of_dq(dq: ir.Node) -> int:
    """The output-channel axis of the weight a DequantizeLinear feeds (its first reader's)."""
    reader = dq.outputs[0].uses()[0].node
    return _axes(reader, len(dq.inputs[0].shape))[0]


def _axes(node: ir.Node, ndim: int) -> tuple[int, int] | None:
    if node.op_type == "Conv":
        return (0, 1) if ndim >= 3 else None
    if node.op_type == "ConvTranspose":
        return None if ndim < 3 or _attr(node, "group", 1) != 1 else (1, 0)
    if ndim != 2:
        return None
    if node.op_type == "Gemm":
        return (0, 1) if _attr(node, "transB", 0) else (1, 0)
    return (1, 0)  # MatMul: [K, N]


def _attr(node: ir.Node, name: str, default: int) -> int:
    attr = node.attributes.get(name)
    return default if attr is None else attr.as_int()


def _insert_dq(node: ir.Node, inputs, attrs, weight: ir.Value, names: Names) -> ir.Node:
    out = ir.Value(name=names.fresh(f"{weight.name}_dequantized"), shape=weight.shape)
    out.dtype = ir.DataType.FLOAT
    dq = ir.node(
        "DequantizeLinear", inputs, attributes=attrs, outputs=[out], name=f"{weight.name}_DQ"
    )
    node.graph.insert_before(node, dq)
    node.replace_input_with(1, out)
    return dq
