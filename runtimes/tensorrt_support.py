"""What TensorRT will reject, run slowly, or move off the DLA, all at once, before any build.

    report = findings(model, device)
    report["rejected"]      # {op: [nodes]}: TensorRT cannot take these (check / ensure_supported)
    report["slow"]          # {what: [nodes]}: runs, but outside TensorRT's fused fast paths
    report["dla_fallback"]  # {op: [nodes]}: would leave the DLA for the GPU (DLA targets only)

Rejected: ops of other domains (e.g. `com.microsoft::MatMulNBits`), op types the installed
parser reports it cannot import (`OnnxParser.supports_operator`, when TensorRT or
TensorRT-RTX is importable), and Q/DQ that no rewrite can bring into TensorRT's form:
non-constant scales or zero points, 16-bit integers, int4 on activations, and int4 weights on
anything but MatMul/Gemm (TensorRT's INT4 is weight-only GEMM). What `to_tensorrt_form`
fixes (zero points, int32 bias DQ, int8 activations of int4 MatMuls) is not reported.

Slow: ops with data-dependent output shapes (the device profile's own `fallbacks` are in the
manifest's target record). DLA: nodes whose op is not in the profile's DLA `ops`, convolutions
beyond the DLA's kernel (≤ 32) and stride (≤ 8) limits or not 2-D, and MatMul/Gemm without
constant weights (DLA runs them only as fully connected layers).
"""

from __future__ import annotations

from collections import defaultdict

import onnx_ir as ir

from edgec.errors import UnsupportedOpsError
from edgec.runtimes.ort_proto import node_labels
from edgec.runtimes.tensorrt_qdq import FOUR_BIT, QUANTIZED_TYPES, const, producer_op
from edgec.runtimes.tensorrt_sdk import NAME, find_sdk

DATA_DEPENDENT = ("NonZero", "NonMaxSuppression", "Unique", "Compress")
NO_LAYER = ("Constant", "Identity", "QuantizeLinear", "DequantizeLinear", "Shape")
DLA_MAX_KERNEL, DLA_MAX_STRIDE = 32, 8


def check(model: ir.Model, device: object = None) -> dict[str, list[str]]:
    """Ops TensorRT cannot take in `model`: `{op or problem: [node names]}`, {} when none."""
    return findings(model, device)["rejected"]


def ensure_supported(model: ir.Model, device: object = None) -> None:
    """Raise `UnsupportedOpsError` naming every node TensorRT would reject."""
    rejected = check(model, device)
    if rejected:
        raise UnsupportedOpsError(
            NAME,
            rejected,
            "rewrite these into standard ONNX ops (QDQ: constant symmetric scales, int4 only "
            "as MatMul/Gemm weights), or choose a target with another runtime",
        )


def findings(model: ir.Model, device: object = None) -> dict[str, dict[str, list[str]]]:
    """Rejected, slow and DLA-fallback nodes, each `{key: [node names]}`."""
    nodes = list(model.graph)
    labels = node_labels([n.name for n in nodes], [n.op_type for n in nodes])
    rejected: dict[str, list[str]] = defaultdict(list)
    slow: dict[str, list[str]] = defaultdict(list)
    unsupported = _parser_unsupported({n.op_type for n in nodes if n.domain in ("", "ai.onnx")})
    for node, label in zip(nodes, labels, strict=True):
        for key in _rejections(node, unsupported):
            rejected[key].append(label)
        if node.op_type in DATA_DEPENDENT:
            slow[f"{node.op_type} (data-dependent output shape)"].append(label)
    return {
        "rejected": dict(rejected),
        "slow": dict(slow),
        "dla_fallback": dla_fallbacks(model, device, labels),
    }


def _parser_unsupported(op_types: set[str]) -> set[str]:
    """Op types the installed TensorRT parser says it cannot import (empty without an SDK)."""
    sdk = find_sdk()
    if sdk is None:
        return set()
    trt = sdk.module
    logger = trt.Logger(trt.Logger.ERROR)
    network = trt.Builder(logger).create_network(0)
    parser = trt.OnnxParser(network, logger)
    return {op for op in op_types if not parser.supports_operator(op)}


def _rejections(node: ir.Node, unsupported: set[str]) -> list[str]:
    if node.domain not in ("", "ai.onnx"):
        return [f"{node.domain}::{node.op_type}"]
    if node.op_type in unsupported:
        return [node.op_type]
    if node.op_type not in ("QuantizeLinear", "DequantizeLinear"):
        return []
    problems = []
    scale_zp = node.inputs[1:3]
    if any(v is not None and const(v) is None for v in scale_zp):
        problems.append(f"{node.op_type} (scale or zero point not constant)")
    types = {v.dtype for v in (*node.inputs, *node.outputs) if v is not None}
    if types & {ir.DataType.INT16, ir.DataType.UINT16}:
        problems.append(f"{node.op_type} (16-bit integers)")
    if node.op_type == "QuantizeLinear" and types & FOUR_BIT:
        problems.append("QuantizeLinear (int4 activations: TensorRT's INT4 is weight-only)")
    if node.op_type == "DequantizeLinear" and node.inputs[0].dtype in FOUR_BIT:
        users = {u.node.op_type for u in node.outputs[0].uses()}
        if const(node.inputs[0]) is None or not users <= {"MatMul", "Gemm"}:
            problems.append("DequantizeLinear (int4 other than MatMul/Gemm constant weights)")
    return problems


def dla_fallbacks(
    model: ir.Model, device: object, labels: list[str] | None = None
) -> dict[str, list[str]]:
    """Nodes that would leave the device's DLA for the GPU; {} on devices without a DLA list."""
    units = [u for u in getattr(device, "compute_units", ()) or () if u.kind == "dla" and u.ops]
    if not units:
        return {}
    allowed = set(units[0].ops)
    nodes = list(model.graph)
    labels = labels or node_labels([n.name for n in nodes], [n.op_type for n in nodes])
    out: dict[str, list[str]] = defaultdict(list)
    for node, label in zip(nodes, labels, strict=True):
        if node.op_type in NO_LAYER:
            continue
        reason = _dla_reason(node, allowed)
        if reason:
            out[reason].append(label)
    return dict(out)


def _dla_reason(node: ir.Node, allowed: set[str]) -> str:
    if node.domain not in ("", "ai.onnx") or node.op_type not in allowed:
        return f"{node.op_type} (no DLA layer)"
    if node.op_type in ("Conv", "ConvTranspose"):
        kernel = node.attributes.get_ints("kernel_shape", ()) or _kernel(node.inputs[1])
        strides = node.attributes.get_ints("strides", ())
        if len(kernel) != 2:
            return f"{node.op_type} (DLA runs 2-D convolutions only)"
        if max(kernel) > DLA_MAX_KERNEL or max(strides or (1,)) > DLA_MAX_STRIDE:
            return f"{node.op_type} (kernel > {DLA_MAX_KERNEL} or stride > {DLA_MAX_STRIDE})"
    if node.op_type in ("MatMul", "Gemm"):
        weight = node.inputs[1]
        dq = producer_op(weight, "DequantizeLinear")
        stored = dq.inputs[0] if dq is not None else None
        constant = const(weight) is not None or (
            stored is not None and stored.dtype in QUANTIZED_TYPES and const(stored) is not None
        )
        if not constant:
            return f"{node.op_type} (activation × activation: DLA has fully connected only)"
    return ""


def _kernel(weight: ir.Value | None) -> tuple[int, ...]:
    """A convolution's spatial kernel from its (possibly dequantized) constant weight."""
    dq = producer_op(weight, "DequantizeLinear")
    array = const(dq.inputs[0] if dq is not None else weight)
    return tuple(array.shape[2:]) if array is not None else ()
