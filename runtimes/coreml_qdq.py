"""ONNX QDQ → MIL: quantized weights as `constexpr_*` ops, activation Q→DQ as quantize/dequantize.

Before (ONNX, the QDQ form of docs/quantization.md):

    W_q (int8 [O, I, kh, kw], or int4 [K, N] blocked) ─ DequantizeLinear(scale, zp, axis
        [, block_size]) ─┐
    x ─ QuantizeLinear(s, zp) ─ DequantizeLinear(s, zp) ─ Conv / MatMul / Gemm ─ …

After (MIL):

    constexpr_blockwise_shift_scale(data=W_q, scale, offset)   (iOS18: int8 or int4, any
        granularity) or constexpr_affine_dequantize(W_q, scale, zero_point, axis)   (iOS17:
        int8, per-tensor / per-channel) ─┐
    x ─ quantize(scale, zero_point, int8|uint8) ─ dequantize(scale, zero_point) ─ conv / linear

The weight stays compressed in the package and is expanded by Core ML at load time (or, on
the Neural Engine with int8 activations, used by its int8×int8 path on A17 Pro / M4 and newer).
Every quantized weight and activation is recorded (`QuantPlan.weight_records`,
`activation_records`) with what it got and why, for the manifest.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import onnx_ir as ir

WEIGHT_DTYPES = {"INT8": 8, "UINT8": 8, "INT4": 4, "UINT4": 4}
_ANE_NOTE_BLOCK = (
    "per-block int4 as the QDQ graph gives it; Apple's guidance: per-block scales help the GPU, "
    "the Neural Engine prefers per-channel scales or 4-bit palettization (peers.md §6.4), so "
    "this layer may run on the GPU or decompress to fp16"
)


@dataclasses.dataclass
class QuantWeight:
    """A constant integer weight behind a DequantizeLinear, in ONNX's own layout."""

    node: ir.Node
    data: np.ndarray  # integer values (int8/uint8 storage, also for 4-bit)
    dtype: str  # ONNX data type name: INT8, UINT8, INT4, UINT4
    scale: np.ndarray
    zero_point: np.ndarray | None
    axis: int
    block_size: int

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)

    @property
    def bits(self) -> int:
        return WEIGHT_DTYPES[self.dtype]

    def granularity(self) -> str:
        if self.scale.size == 1:
            return "per-tensor"
        return f"per-block({self.block_size})" if self.block_size else "per-channel"

    def full_scale(self) -> tuple[np.ndarray, np.ndarray | None]:
        """Scale and zero point with the data's rank (blocks as a dim per block, else 1)."""
        rank = self.data.ndim
        scale, zp = self.scale, self.zero_point
        if scale.ndim == 0 or scale.size == 1:
            shape = [1] * rank
        elif self.block_size:
            shape = list(scale.shape)
        else:
            shape = [1] * rank
            shape[self.axis] = scale.size
        scale = np.asarray(scale, np.float32).reshape(shape)
        zp = None if zp is None else np.asarray(zp).reshape(shape)
        return scale, zp


def _attr(node: ir.Node, name: str, default):
    a = node.attributes.get(name)
    return default if a is None else a.value


def _const(value: ir.Value | None) -> np.ndarray | None:
    if value is None:
        return None
    tensor = ir.convenience.get_const_tensor(value)
    return None if tensor is None else tensor.numpy()


def _int_storage(array: np.ndarray, dtype: str) -> np.ndarray:
    """onnx_ir's 4-bit numpy (ml_dtypes int4/uint4) → int8/uint8 values."""
    return np.asarray(array).astype(np.int8 if dtype.startswith("INT") else np.uint8)


class QuantNeedsIOS18(Exception):
    """A 4-bit or per-block weight met an iOS17 deployment target."""


class QuantPlan:
    """The quantized weights of a graph, and the records of what the lowering made of them."""

    def __init__(self, weights: dict[str, QuantWeight], ios: int):
        self.weights = weights
        self.ios = ios  # the deployment target's iOS major version
        self.weight_records: list[dict[str, Any]] = []
        self.activation_records: list[dict[str, Any]] = []
        self._made: dict[tuple[str, bool], Any] = {}

    @classmethod
    def scan(cls, graph: ir.Graph, ios: int) -> QuantPlan:
        """Find every DequantizeLinear whose input is a constant 8- or 4-bit integer tensor."""
        weights = {}
        for node in graph:
            if node.op_type != "DequantizeLinear" or node.domain not in ("", "ai.onnx"):
                continue
            x = node.inputs[0]
            dtype = x.dtype.name if x.dtype is not None else ""
            data = _const(x)
            scale = _const(node.inputs[1])
            zp = _const(node.inputs[2]) if len(node.inputs) > 2 else None
            if data is None or scale is None or dtype not in WEIGHT_DTYPES:
                continue
            rank = data.ndim
            axis = int(_attr(node, "axis", 1))
            weights[node.outputs[0].name] = QuantWeight(
                node=node,
                data=_int_storage(data, dtype),
                dtype=dtype,
                scale=np.asarray(scale, np.float32),
                zero_point=None if zp is None else _int_storage(zp, dtype),
                axis=axis + rank if axis < 0 else axis,
                block_size=int(_attr(node, "block_size", 0)),
            )
        return cls(weights, ios)

    def owns(self, node: ir.Node) -> bool:
        """True for the weight DequantizeLinear nodes (lowered where a layer uses them)."""
        return node.op_type == "DequantizeLinear" and node.outputs[0].name in self.weights

    def constexpr(self, cx, name: str, transpose: bool):
        """The MIL constexpr var for quantized weight `name` (transposed for `linear`)."""
        key = (name, transpose)
        if key not in self._made:
            self._made[key] = self._make(cx, self.weights[name], transpose)
        return self._made[key]

    def _make(self, cx, w: QuantWeight, transpose: bool):
        from coremltools.converters.mil.mil import types

        data = w.data
        scale, zp = w.full_scale()
        axis = w.axis
        if transpose:
            data, scale = data.T, scale.T
            zp = None if zp is None else zp.T
            axis = data.ndim - 1 - axis
        data = np.ascontiguousarray(data)
        name = cx.unique(w.node.outputs[0].name or "weight")
        if self.ios >= 18:
            if w.bits == 4:
                np_dtype = types.np_int4_dtype if w.dtype == "INT4" else types.np_uint4_dtype
                data = data.astype(np_dtype)
                zp = None if zp is None else zp.astype(np_dtype)
            var = cx.mb.constexpr_blockwise_shift_scale(
                data=data, scale=scale, offset=zp, name=name
            )
            op = "constexpr_blockwise_shift_scale"
        else:
            if w.bits == 4 or w.block_size:
                raise QuantNeedsIOS18(
                    f"{w.granularity()} int{w.bits} weight {w.node.inputs[0].name!r} needs "
                    "iOS18 (constexpr_blockwise_shift_scale)"
                )
            per_channel = scale.size > 1
            var = cx.mb.constexpr_affine_dequantize(
                quantized_data=data,
                scale=scale.reshape(-1) if per_channel else np.float32(scale.reshape(())),
                zero_point=_zp_for_affine(zp, data.dtype, per_channel, scale.size),
                axis=axis if per_channel else 0,
                name=name,
            )
            op = "constexpr_affine_dequantize"
        self.weight_records.append(
            {
                "weight": w.node.inputs[0].name,
                "bits": w.bits,
                "dtype": w.dtype.lower(),
                "granularity": w.granularity(),
                "mil_op": op,
                "why": _ANE_NOTE_BLOCK
                if w.block_size
                else (
                    f"{w.granularity()} int{w.bits} weights as the QDQ graph gives them "
                    "(the Neural Engine's preferred weight scales)"
                ),
            }
        )
        return var


def _zp_for_affine(zp, dtype, per_channel: bool, count: int):
    if zp is None:
        zp = np.zeros(count if per_channel else 1, dtype)
    zp = np.asarray(zp, dtype).reshape(-1)
    return zp if per_channel else zp.reshape(())


def _scale_zp(node: ir.Node, cx) -> tuple[np.ndarray, np.ndarray | None, int | None]:
    scale = np.asarray(cx.const(node.inputs[1]), np.float32)
    zp = cx.const(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else None
    axis = int(_attr(node, "axis", 1)) if scale.size > 1 else None
    if axis is not None and axis < 0:
        x = cx.operand(node.inputs[0])
        axis += x.ndim if isinstance(x, np.ndarray) else x.rank
    return (scale if scale.size > 1 else scale.reshape(())), zp, axis


def _quantize(cx, node):
    """QuantizeLinear of an activation → MIL quantize (int8 or uint8)."""
    scale, zp, axis = _scale_zp(node, cx)
    if zp is None:
        zp = np.zeros(scale.shape, np.uint8)  # ONNX: no zero point means uint8, zero
    if zp.dtype not in (np.int8, np.uint8) or _attr(node, "block_size", 0):
        raise cx.unsupported(node, f"QuantizeLinear to {zp.dtype} (only 8-bit, not blocked)")
    cx.plan.activation_records.append(
        {
            "tensor": node.inputs[0].name,
            "dtype": str(zp.dtype),
            "granularity": "per-tensor" if axis is None else "per-channel",
            "mil_op": "quantize/dequantize",
            "why": "int8 activation QDQ as the graph gives it (iOS17+); with int8 weights the "
            "Neural Engine of A17 Pro / M4 and newer can run int8×int8",
        }
    )
    return [cx.mb.quantize(input=cx.var(node.inputs[0]), scale=scale, zero_point=zp, axis=axis,
                           output_dtype=str(zp.dtype), name=cx.out(node))]  # fmt: skip


def _dequantize(cx, node):
    """DequantizeLinear of a computed (activation) tensor → MIL dequantize; of any other
    constant (an int32 bias, say) → the float constant it computes."""
    scale, zp, axis = _scale_zp(node, cx)
    if cx.is_const(node.inputs[0]):
        data = cx.const(node.inputs[0]).astype(np.float32)
        if axis is not None:
            shape = [1] * data.ndim
            shape[axis] = -1
            scale = scale.reshape(shape)
            zp = None if zp is None else np.asarray(zp).reshape(shape)
        return [(data - (0 if zp is None else np.asarray(zp, np.float32))) * scale]
    return [cx.mb.dequantize(input=cx.var(node.inputs[0]), scale=scale, zero_point=zp,
                             axis=axis, name=cx.out(node))]  # fmt: skip


QDQ_OPS = {"QuantizeLinear": _quantize, "DequantizeLinear": _dequantize}
