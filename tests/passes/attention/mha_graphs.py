"""Small multi-head attention graphs as exporters write them, built with onnx.helper.

`mha(...)` gives one attention block in one of three layouts:

- "tokens": timm's ViT — x[B,N,C] · W → Reshape[B,N,3,H,d] → Transpose(2,0,3,1,4) →
  Split/Squeeze → q, k, v [B,H,N,d]; out Transpose(0,2,1,3) → Reshape[B,N,C] · Wo.
- "map": LowFormer — Conv1×1 → [B,3C,h,w] → Reshape[B,H,3d,N] → Transpose(0,1,3,2) →
  Split(last axis) → q, k, v; out Transpose(0,1,3,2) → Reshape[B,C,h,w].
- "strided": like "tokens" but the projection is laid out [3, d, H] (head is the fastest
  channel index), so a head is not a contiguous block of channels (not for split_heads).

`attention_op(...)` gives the same block around the ONNX `Attention` op (opset 23), as
torch.onnx writes `scaled_dot_product_attention` from opset 23 on.
"""

from __future__ import annotations

import numpy as np
from onnx import helper, numpy_helper
from support import onnx_build


def _init(name, array):
    return numpy_helper.from_array(np.ascontiguousarray(array), name)


def _ints(name, values):
    return _init(name, np.asarray(values, dtype=np.int64))


def mha(layout="tokens", *, b=1, h=2, d=4, n=6, bias=None, seed=0, softmax_axis=-1):
    """One attention block; `bias` None | "per_head" ([H,N,N] constant) | "shared" ([N,N])."""
    rng = np.random.default_rng(seed)
    c = h * d
    inits, nodes = [], []
    if layout == "map":
        side = round(n**0.5)
        assert side * side == n
        x = onnx_build.value_info("x", [b, c, side, side])
        y = onnx_build.value_info("y", [b, c, side, side])
        inits.append(_init("w", rng.standard_normal((3 * c, c, 1, 1)).astype(np.float32) / c**0.5))
        inits += [_ints("s_heads", [b, h, 3 * d, n]), _ints("s_out", [b, c, side, side])]
        nodes += [
            helper.make_node("Conv", ["x", "w"], ["p"], kernel_shape=[1, 1]),
            helper.make_node("Reshape", ["p", "s_heads"], ["p4"]),
            helper.make_node("Transpose", ["p4"], ["pt"], perm=[0, 1, 3, 2]),
            helper.make_node("Split", ["pt"], ["q", "k", "v"], axis=3, num_outputs=3),
            helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2]),
        ]
    else:
        x = onnx_build.value_info("x", [b, n, c])
        y = onnx_build.value_info("y", [b, n, c])
        inits.append(_init("w", rng.standard_normal((c, 3 * c)).astype(np.float32) / c**0.5))
        inits.append(_init("wo", rng.standard_normal((c, c)).astype(np.float32) / c**0.5))
        five = [b, n, 3, h, d] if layout == "tokens" else [b, n, 3, d, h]
        perm = [2, 0, 3, 1, 4] if layout == "tokens" else [2, 0, 4, 1, 3]
        inits += [_ints("s5", five), _ints("s_out", [b, n, c]), _ints("ax0", [0])]
        nodes += [
            helper.make_node("MatMul", ["x", "w"], ["p"]),
            helper.make_node("Reshape", ["p", "s5"], ["p5"]),
            helper.make_node("Transpose", ["p5"], ["pt"], perm=perm),
            helper.make_node("Split", ["pt"], ["q5", "k5", "v5"], axis=0, num_outputs=3),
            helper.make_node("Squeeze", ["q5", "ax0"], ["q"]),
            helper.make_node("Squeeze", ["k5", "ax0"], ["k"]),
            helper.make_node("Squeeze", ["v5", "ax0"], ["v"]),
            helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2]),
        ]
    inits.append(_init("scale", np.asarray(d**-0.5, np.float32)))
    nodes += [
        helper.make_node("MatMul", ["q", "kt"], ["l0"]),
        helper.make_node("Mul", ["l0", "scale"], ["l1"]),
    ]
    logits = "l1"
    if bias is not None:
        shape = (h, n, n) if bias == "per_head" else (n, n)
        inits.append(_init("bias", rng.standard_normal(shape).astype(np.float32)))
        nodes.append(helper.make_node("Add", ["l1", "bias"], ["l2"]))
        logits = "l2"
    nodes += [
        helper.make_node("Softmax", [logits], ["pr"], axis=softmax_axis),
        helper.make_node("MatMul", ["pr", "v"], ["o"]),
    ]
    if layout == "map":
        nodes += [
            helper.make_node("Transpose", ["o"], ["ot"], perm=[0, 1, 3, 2]),
            helper.make_node("Reshape", ["ot", "s_out"], ["y"]),
        ]
    else:
        nodes += [
            helper.make_node("Transpose", ["o"], ["ot"], perm=[0, 2, 1, 3]),
            helper.make_node("Reshape", ["ot", "s_out"], ["om"]),
            helper.make_node("MatMul", ["om", "wo"], ["y"]),
        ]
    return onnx_build.model(nodes, [x], [y], inits)


def attention_op(form="4d", *, b=1, h=2, kv_h=None, d=4, n=6, mask=None, seed=0, **attributes):
    """x[B,N,C] · Wq, Wk, Wv → Attention → · Wo. `form` "4d": q, k, v reshaped and transposed
    to [B,H,N,d] (torch.onnx's export); "3d": [B,N,H·d] with q_num_heads/kv_num_heads. `kv_h`
    < `h`: grouped queries. `mask` None | "per_head" ([H,N,N] float) | "shared" ([N,N] float)
    | "bool" ([N,N] boolean); `attributes` go to the op (is_causal, softcap, scale)."""
    rng = np.random.default_rng(seed)
    kv_h = kv_h or h
    c, ckv = h * d, kv_h * d
    inits = [
        _init("wq", rng.standard_normal((c, c)).astype(np.float32) / c**0.5),
        _init("wk", rng.standard_normal((c, ckv)).astype(np.float32) / c**0.5),
        _init("wv", rng.standard_normal((c, ckv)).astype(np.float32) / c**0.5),
        _init("wo", rng.standard_normal((c, c)).astype(np.float32) / c**0.5),
        _ints("s_q", [b, n, h, d]),
        _ints("s_kv", [b, n, kv_h, d]),
        _ints("s_out", [b, n, c]),
    ]
    nodes = [helper.make_node("MatMul", ["x", f"w{t}"], [f"p{t}"]) for t in "qkv"]
    if form == "4d":
        for t in "qkv":
            nodes += [
                helper.make_node("Reshape", [f"p{t}", "s_q" if t == "q" else "s_kv"], [f"r{t}"]),
                helper.make_node("Transpose", [f"r{t}"], [t], perm=[0, 2, 1, 3]),
            ]
    else:
        attributes = {"q_num_heads": h, "kv_num_heads": kv_h, **attributes}
        nodes += [helper.make_node("Identity", [f"p{t}"], [t]) for t in "qkv"]
    inputs = ["q", "k", "v"]
    if mask is not None:
        shape = (h, n, n) if mask == "per_head" else (n, n)
        table = rng.standard_normal(shape).astype(np.float32)
        inits.append(_init("mask", table > 0 if mask == "bool" else table))
        inputs.append("mask")
    nodes.append(helper.make_node("Attention", inputs, ["o"], **attributes))
    if form == "4d":
        nodes += [
            helper.make_node("Transpose", ["o"], ["ot"], perm=[0, 2, 1, 3]),
            helper.make_node("Reshape", ["ot", "s_out"], ["om"]),
        ]
    else:
        nodes.append(helper.make_node("Identity", ["o"], ["om"]))
    nodes.append(helper.make_node("MatMul", ["om", "wo"], ["y"]))
    x = onnx_build.value_info("x", [b, n, c])
    y = onnx_build.value_info("y", [b, n, c])
    return onnx_build.model(nodes, [x], [y], inits, opset=23)


def max_rank(model) -> int:
    return max(len(v.shape) for node in model.graph for v in node.outputs if v.shape is not None)
