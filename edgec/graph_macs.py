"""Multiply-accumulates of one contraction node, from static shapes.

The contraction ops and what one node counts (the convention of the papers' "FLOPs" columns
and of `torch.utils.flop_counter`, i.e. FLOPs / 2):

=====================================  ===================================================
Conv, ConvInteger, QLinearConv         |Y| · C_in/group · kH · kW   = |Y| · prod(W.shape[1:])
ConvTranspose                          |X| · C_out/group · kH · kW  = |X| · prod(W.shape[1:])
MatMul, MatMulInteger, QLinearMatMul   batch · M · K · N, batch dims broadcast numpy-style,
                                       1-D operands promoted as the ONNX spec says
Gemm                                   M · K · N (transA / transB respected)
com.microsoft MatMulNBits              |A| / K · K · N
Attention (opset 23)                   B · Hq · Nq · Nk · (dk + dv): q·kᵀ and p·v, q [B,Hq,Nq,dk]
                                       and v [B,Hkv,Nk,dv], or [B,N,H·d] with q/kv_num_heads
=====================================  ===================================================

Bias additions, Gemm's alpha/beta and everything else are not MACs. A shape the formula
needs that is not static raises `UnknownShape`; a node that cannot be counted for another
reason (a scalar MatMul operand, a Gemm operand that is not 2-D, MatMulNBits without K/N)
gets `(None, reason)`.
"""

from __future__ import annotations

import dataclasses
import math

import onnx_ir as ir

from edgec.graph_shapes import ShapeFn, node_input, node_output

__all__ = [
    "DEFAULT_DOMAINS",
    "MACS_CONVENTION",
    "AttentionDims",
    "NodeMacs",
    "UnknownShape",
    "attention_dims",
    "contraction_macs",
    "is_contraction",
    "matmul_macs",
]

MACS_CONVENTION = (
    "multiply-accumulates of Conv/ConvTranspose/MatMul/Gemm/Attention (and their integer, "
    "QLinear and MatMulNBits forms) from static shapes; bias adds, elementwise ops, Softmax, "
    "norms and pooling are counted apart as other_ops (element operations)"
)

DEFAULT_DOMAINS = ("", "ai.onnx")

# Contraction ops of the default domain -> input position of the weight / of (A, B).
_CONV_WEIGHT = {"Conv": 1, "ConvInteger": 1, "QLinearConv": 3}
_MATMUL_OPERANDS = {"MatMul": (0, 1), "MatMulInteger": (0, 1), "QLinearMatMul": (0, 3)}


@dataclasses.dataclass(frozen=True)
class NodeMacs:
    """One contraction node. `macs` is None when it could not be counted; `reason` says why."""

    name: str
    op_type: str
    macs: int | None
    reason: str | None = None


class UnknownShape(Exception):
    """A shape the count needs is not known."""


def is_contraction(node: ir.Node) -> bool:
    """Whether `node` is one of the ops whose multiply-accumulates are counted."""
    if node.domain in DEFAULT_DOMAINS:
        return (
            node.op_type in _CONV_WEIGHT
            or node.op_type in _MATMUL_OPERANDS
            or node.op_type in ("ConvTranspose", "Gemm", "Attention")
        )
    return node.domain == "com.microsoft" and node.op_type == "MatMulNBits"


def contraction_macs(node: ir.Node, shape_of: ShapeFn) -> tuple[int | None, str | None]:
    """MACs of one contraction node, or (None, reason); raises UnknownShape for a missing shape."""
    op = node.op_type

    def need(value: ir.Value | None, what: str) -> tuple[int, ...]:
        shape = shape_of(value)
        if shape is None:
            label = value.name if value is not None and value.name else "?"
            raise UnknownShape(f"shape of {what} {label!r} unknown or not static")
        return shape

    if node.domain == "com.microsoft":  # MatMulNBits: A [..., K] times packed B [N, K]
        a = need(node_input(node, 0), "input A")
        k, n = node.attributes.get_int("K", None), node.attributes.get_int("N", None)
        if k is None or n is None or not a:
            return None, "MatMulNBits without K/N attributes or with a scalar input"
        return math.prod(a[:-1]) * k * n, None
    if op in _CONV_WEIGHT:
        w = need(node_input(node, _CONV_WEIGHT[op]), "weight")
        y = need(node_output(node, 0), "output")
        return math.prod(y) * math.prod(w[1:]), None
    if op == "ConvTranspose":
        x = need(node_input(node, 0), "input")
        w = need(node_input(node, 1), "weight")
        return math.prod(x) * math.prod(w[1:]), None
    if op == "Attention":
        q, k, v = (need(node_input(node, i), what) for i, what in enumerate("qkv"))
        dims = attention_dims(node, q, k, v)
        if isinstance(dims, str):
            return None, dims
        return dims.batch * dims.heads * dims.nq * dims.nk * (dims.dk + dims.dv), None
    if op in _MATMUL_OPERANDS:
        a_idx, b_idx = _MATMUL_OPERANDS[op]
        a, b = need(node_input(node, a_idx), "input A"), need(node_input(node, b_idx), "input B")
        if not a or not b:
            return None, "MatMul with a scalar operand (invalid ONNX)"
        return matmul_macs(a, b), None
    # Gemm
    a = need(node_input(node, 0), "input A")
    b = need(node_input(node, 1), "input B")
    if len(a) != 2 or len(b) != 2:
        return None, f"Gemm operands are not 2-D ({list(a)}, {list(b)})"
    m, k = (a[1], a[0]) if node.attributes.get_int("transA", 0) else a
    n = b[0] if node.attributes.get_int("transB", 0) else b[1]
    return m * k * n, None


@dataclasses.dataclass(frozen=True)
class AttentionDims:
    """The sizes of one ONNX Attention op (opset 23)."""

    batch: int
    heads: int  # q's
    kv_heads: int  # k's and v's (fewer with grouped queries)
    nq: int
    nk: int
    dk: int
    dv: int
    merged: bool  # q, k, v are [B, N, heads·d] (`q_num_heads`/`kv_num_heads`), not [B, H, N, d]


def attention_dims(
    node: ir.Node, q: tuple[int, ...], k: tuple[int, ...], v: tuple[int, ...]
) -> AttentionDims | str:
    """The Attention op's sizes from the shapes of q, k and v, or why they cannot be read."""
    if not len(q) == len(k) == len(v) or len(q) not in (3, 4):
        return f"Attention q, k, v are not all 3-D or all 4-D ({list(q)}, {list(k)}, {list(v)})"
    if len(q) == 4:
        (batch, heads, nq, dk), (kv_heads, nk, dv) = q, v[1:]
        return AttentionDims(batch, heads, kv_heads, nq, nk, dk, dv, merged=False)
    heads = node.attributes.get_int("q_num_heads", 0)
    kv_heads = node.attributes.get_int("kv_num_heads", 0)
    if not heads or not kv_heads or q[2] % heads or k[2] % kv_heads or v[2] % kv_heads:
        return "the 3-D Attention op's q_num_heads/kv_num_heads do not divide its channels"
    dk, dv = q[2] // heads, v[2] // kv_heads
    return AttentionDims(q[0], heads, kv_heads, q[1], v[1], dk, dv, merged=True)


def matmul_macs(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    """batch · M · K · N of numpy-style matmul (1-D operands promoted, batch dims broadcast)."""
    m = a[-2] if len(a) >= 2 else 1
    k = a[-1]
    n = b[-1] if len(b) >= 2 else 1
    batch_a, batch_b = a[:-2], b[:-2]
    rank = max(len(batch_a), len(batch_b))
    batch_a = (1,) * (rank - len(batch_a)) + batch_a
    batch_b = (1,) * (rank - len(batch_b)) + batch_b
    batch = math.prod(y if x == 1 else x for x, y in zip(batch_a, batch_b, strict=True))
    return batch * m * k * n
