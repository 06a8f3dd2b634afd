"""Hand-built quantized (QDQ) ONNX graphs, in the forms the quantizers of the field write.

`w8a8_cnn(style)`: Q/DQ activations and per-channel int8 weights around Conv → Relu → pooled
MatMul; `style="ort"` is ONNX Runtime's x86 form (uint8 asymmetric activations, int32 bias
DQ), `style="tensorrt"` the symmetric int8 form with float biases. `w4_mlp(activations)`:
int4 block-wise (block 32, axis 0) weight DQ → MatMul, with (`"int8"`) or without (`None`)
an int8 Q/DQ pair on the MatMul's input. Weights are seeded random, scales computed from them,
so ONNX Runtime runs every graph and its outputs mean something.
"""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
from onnx import TensorProto, helper, numpy_helper
from support.onnx_build import model, value_info


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def _int8_per_channel(w: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    others = tuple(i for i in range(w.ndim) if i != axis)
    scale = (np.abs(w).max(axis=others) / 127).astype(np.float32)
    shape = [1] * w.ndim
    shape[axis] = -1
    q = np.clip(np.rint(w / scale.reshape(shape)), -127, 127).astype(np.int8)
    return q, scale


def _act_pair(
    name: str, x: str, lo: float, hi: float, style: str, inits: list
) -> tuple[list, np.float32]:
    """Q → DQ on activation `x` calibrated to [lo, hi]: (the nodes, output `name`; the scale)."""
    if style == "ort":
        scale = np.float32((hi - lo) / 255)
        zp = np.array(np.rint(-lo / scale), np.uint8)
    else:
        scale = np.float32(max(abs(lo), abs(hi)) / 127)
        zp = np.array(0, np.int8)
    inits += [
        numpy_helper.from_array(np.array(scale), f"{name}_s"),
        numpy_helper.from_array(zp, f"{name}_zp"),
    ]
    return [
        helper.make_node("QuantizeLinear", [x, f"{name}_s", f"{name}_zp"], [f"{name}_q"]),
        helper.make_node("DequantizeLinear", [f"{name}_q", f"{name}_s", f"{name}_zp"], [name]),
    ], scale


def w8a8_cnn(style: str = "tensorrt", seed: int = 0) -> ir.Model:
    """1×3×16×16 → QDQ Conv(8, 3×3) + bias → Relu → GAP → Flatten → QDQ MatMul(8×5) → 1×5."""
    rng = _rng(seed)
    w = (rng.standard_normal((8, 3, 3, 3)) * 0.3).astype(np.float32)
    b = (rng.standard_normal(8) * 0.1).astype(np.float32)
    wm = (rng.standard_normal((8, 5)) * 0.5).astype(np.float32)
    qw, sw = _int8_per_channel(w, 0)
    qm, sm = _int8_per_channel(wm, 1)
    inits = [
        numpy_helper.from_array(qw, "w_q"),
        numpy_helper.from_array(sw, "w_s"),
        numpy_helper.from_array(np.zeros(8, np.int8), "w_zp"),
        numpy_helper.from_array(qm, "wm_q"),
        numpy_helper.from_array(sm, "wm_s"),
        numpy_helper.from_array(np.zeros(5, np.int8), "wm_zp"),
    ]
    nodes, x_scale = _act_pair("xd", "x", -4.0, 4.0, style, inits)
    nodes += [
        helper.make_node("DequantizeLinear", ["w_q", "w_s", "w_zp"], ["w"], axis=0),
        helper.make_node("DequantizeLinear", ["wm_q", "wm_s", "wm_zp"], ["wm"], axis=1),
    ]
    if style == "ort":  # int32 bias with scale = activation scale × weight scale
        bias_scale = (sw * x_scale).astype(np.float32)
        inits += [
            numpy_helper.from_array(np.rint(b / bias_scale).astype(np.int32), "b_q"),
            numpy_helper.from_array(bias_scale, "b_s"),
            numpy_helper.from_array(np.zeros(8, np.int32), "b_zp"),
        ]
        nodes.append(helper.make_node("DequantizeLinear", ["b_q", "b_s", "b_zp"], ["b"], axis=0))
    else:
        inits.append(numpy_helper.from_array(b, "b"))
    nodes += [
        helper.make_node("Conv", ["xd", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("GlobalAveragePool", ["r"], ["p"], name="pool"),
        helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
    ]
    nodes += _act_pair("fd", "f", 0.0 if style == "ort" else -3.0, 3.0, style, inits)[0]
    nodes.append(helper.make_node("MatMul", ["fd", "wm"], ["y"], name="fc"))
    return model(
        nodes,
        [value_info("x", [1, 3, 16, 16])],
        [value_info("y", [1, 5])],
        inits,
        opset=21,
    )


def w4_mlp(activations: str | None = None, seed: int = 0, block: int = 32) -> ir.Model:
    """1×16×64 → [int8 Q/DQ] → MatMul(DQ int4 64×32, block 32) + bias → Relu → MatMul → 1×16×8."""
    rng = _rng(seed)
    w1 = (rng.standard_normal((64, 32)) * 0.2).astype(np.float32)
    b1 = (rng.standard_normal(32) * 0.1).astype(np.float32)
    w2 = (rng.standard_normal((32, 8)) * 0.2).astype(np.float32)
    blocks = w1.reshape(64 // block, block, 32)
    scale = (np.abs(blocks).max(axis=1) / 7).astype(np.float32)  # [K/block, N]
    q = np.clip(np.rint(blocks / scale[:, None, :]), -8, 7).reshape(64, 32).astype(np.int8)
    inits = [
        helper.make_tensor("w1_q", TensorProto.INT4, [64, 32], q.flatten().tolist()),
        numpy_helper.from_array(scale, "w1_s"),
        numpy_helper.from_array(b1, "b1"),
        numpy_helper.from_array(w2, "w2"),
    ]
    nodes = []
    x = "x"
    if activations == "int8":
        nodes += _act_pair("xd", "x", -4.0, 4.0, "tensorrt", inits)[0]
        x = "xd"
    nodes += [
        helper.make_node(
            "DequantizeLinear", ["w1_q", "w1_s"], ["w1"], axis=0, block_size=block, name="w1_dq"
        ),
        helper.make_node("MatMul", [x, "w1"], ["m1"], name="fc1"),
        helper.make_node("Add", ["m1", "b1"], ["a1"], name="fc1_bias"),
        helper.make_node("Relu", ["a1"], ["r1"], name="relu"),
        helper.make_node("MatMul", ["r1", "w2"], ["y"], name="fc2"),
    ]
    return model(
        nodes,
        [value_info("x", [1, 16, 64])],
        [value_info("y", [1, 16, 8])],
        inits,
        opset=21,
    )
