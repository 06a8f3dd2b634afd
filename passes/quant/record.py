"""What each layer of a quantized graph really holds: the manifest's `quantization.layers`.

Read from the graph, not from what was asked for. Per Conv / ConvTranspose / Gemm / MatMul:
the weight as stored (bits, block size) and as computed (int4 widened to int8 by the ORT
realisation computes in 8 bit), the activation bits of its input and output (8 with a static
calibrated Q/DQ pair, else float 32), and — given `kernels` (tensor name → op, e.g. from
`runtimes.ort_kernels`) — the kernel that produces its output. `precision` is `w4a8`, `w8a8`,
`w4a32`/`w8a32` (weights only: a float input, or a weight folded to float at load, so the
kernel is a float one whatever its input) or `fp32`, by those facts alone; `integer_kernel` says
whether the kernel is an integer one (QLinear*, QGemm, …). `sensitivity` and `fallback` are
`quant::sensitivity`'s score and what the accuracy budget (or `quant::ort_slow_int8`,
`quant::ort_float_attention`, `quant::ort_fold_weights`) did to the layer.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import numpy as np
import onnx_ir as ir

from edgec.passes._graph import const_array
from edgec.passes.quant import _policy

_WIDENING = {"Cast", "Reshape", "Mul"}
_BITS = {ir.DataType.INT4: 4, ir.DataType.UINT4: 4, ir.DataType.INT8: 8, ir.DataType.UINT8: 8}


def quantization_record(model: ir.Model, kernels: dict[str, str] | None = None) -> dict[str, Any]:
    """`{"layers": [...], "summary": {precision: count}}` for `model` (module docstring)."""
    layers = []
    for node in model.graph:
        if node.op_type not in _policy.WEIGHT_OPS or len(node.inputs) < 2:
            continue
        stored, computed, block = _weight(node.inputs[1])
        if stored is None and node.op_type in ("MatMul", "Gemm"):  # activation × activation
            stored = computed = _BITS.get(_activation_dtype(node.inputs[1]))
        a_in = _activation_bits(node.inputs[0])
        out = _policy.after_activation(node.outputs[0])
        a_out = _output_bits(out)
        unit_out = out.uses()[0].node.outputs[0].name if a_out == 8 else node.outputs[0].name
        kernel = None
        if kernels is not None:  # a Q that survived means the op itself was not fused
            kernel = kernels.get(unit_out)
            if kernel in (None, "QuantizeLinear"):
                kernel = kernels.get(node.outputs[0].name, kernel)
            if kernel is None:  # ORT fused the activation after it: the kernel writes its output
                fused = _policy.after_activation(node.outputs[0], _ORT_FUSED_ACTIVATIONS)
                kernel = kernels.get(fused.name)
        layers.append(
            {
                "name": node.name,
                "op": node.op_type,
                "weight_bits_stored": stored or 32,
                "weight_bits_computed": computed or 32,
                "weight_qmax": _qmax(node.inputs[1]),
                "block_size": block,
                "activation_bits_in": a_in,
                "activation_bits_out": a_out,
                "activations": "static" if 8 in (a_in, a_out) else "float",
                "kernel": kernel,
                "integer_kernel": None if kernel is None else _is_integer(kernel),
                "precision": _precision(stored, computed, a_in, kernel),
                "sensitivity": _sensitivity(node),
                "fallback": node.metadata_props.get(_policy.KEEP_FLOAT_KEY)
                or node.metadata_props.get(_policy.FLOAT_ACTIVATIONS_KEY)
                or node.metadata_props.get(_policy.FLOAT_KERNEL_KEY)
                or node.metadata_props.get(_policy.OUTPUT_LAYER_KEY)
                or ("8-bit weights" if _policy.WEIGHT_BITS_KEY in node.metadata_props else None),
            }
        )
    summary = Counter(layer["precision"] for layer in layers)
    return {"layers": layers, "summary": dict(sorted(summary.items()))}


# activations ONNX Runtime fuses into the Conv/Gemm before them (FusedConv, FusedGemm)
_ORT_FUSED_ACTIVATIONS = {"Relu", "Clip", "Sigmoid", "Tanh", "LeakyRelu", "HardSigmoid"}


def _sensitivity(node: ir.Node) -> float | None:
    text = node.metadata_props.get("edgec.quant.sensitivity")
    return None if text is None else json.loads(text)


def _weight(value: ir.Value) -> tuple[int | None, int | None, int | None]:
    """(bits stored, bits computed, block size) of a weight input; Nones when float."""
    folded = _folded_source(value)
    if folded is not None:  # quant::ort_fold_weights: stored narrow, computed in float
        return _stored_bits(folded, _BITS.get(folded.dtype)), 32, None
    dq = value.producer()
    if dq is None or dq.op_type != "DequantizeLinear":
        return None, None, None
    source = dq.inputs[0]
    block = dq.attributes["block_size"].as_int() if "block_size" in dq.attributes else None
    computed = _BITS.get(source.dtype)
    return _stored_bits(source, computed), computed, block


def _folded_source(value: ir.Value) -> ir.Value | None:
    """The integer tensor of a `Mul(Cast(q → FLOAT), scale)` weight, else None."""
    mul = value.producer()
    if mul is None or mul.op_type != "Mul" or const_array(mul.inputs[1]) is None:
        return None
    cast = mul.inputs[0].producer()
    if cast is None or cast.op_type != "Cast" or _BITS.get(cast.inputs[0].dtype) is None:
        return None
    return cast.inputs[0]


def _stored_bits(source: ir.Value, bits: int | None) -> int | None:
    """`bits`, or 4 when `source` comes from the ORT widening of an int4 initializer."""
    stored = bits
    node = source.producer()
    while node is not None:  # the ORT widening: Cast(INT4 → …) … Cast(INT8)
        if node.op_type == "Cast" and _BITS.get(node.inputs[0].dtype) == 4:
            stored = 4
            break
        node = node.inputs[0].producer() if node.inputs else None
    return stored


def _qmax(value: ir.Value) -> int | None:
    """The largest |stored integer| of a weight behind a DequantizeLinear (int4 before widening)."""
    source = _folded_source(value)
    dq = value.producer()
    if source is None and (dq is None or dq.op_type != "DequantizeLinear"):
        return None
    source = source if source is not None else dq.inputs[0]
    while source.producer() is not None and source.producer().op_type in _WIDENING:
        source = source.producer().inputs[0]  # the ORT widening: report the stored int4
    array = const_array(source)
    return None if array is None else int(np.abs(array.astype(np.int32)).max())


def _activation_dtype(value: ir.Value) -> ir.DataType | None:
    """The integer type of a static Q/DQ pair in front of `value`, else None (float)."""
    dq = value.producer()
    q = dq.inputs[0].producer() if dq is not None and dq.op_type == "DequantizeLinear" else None
    return dq.inputs[0].dtype if q is not None and q.op_type == "QuantizeLinear" else None


def _activation_bits(value: ir.Value) -> int:
    return _BITS.get(_activation_dtype(value), 32)


def _output_bits(value: ir.Value) -> int:
    uses = value.uses()
    if len(uses) == 1 and uses[0].node.op_type == "QuantizeLinear":
        return _BITS.get(uses[0].node.outputs[0].dtype, 32)
    return 32


def _is_integer(kernel: str) -> bool:
    op = kernel.split("::")[-1]
    return op.startswith(("QLinear", "QGemm", "ConvInteger", "MatMulInteger", "DynamicQuantize"))


def _precision(stored, computed, a_in, kernel) -> str:
    if stored is None:
        return "fp32"
    if a_in != 8 or computed == 32:  # float input, or a weight ORT folds to float at load
        return f"w{stored}a32"
    if kernel is not None and not _is_integer(kernel):
        return f"w{stored}a8 (float kernel {kernel})"
    return f"w{stored}a8"
