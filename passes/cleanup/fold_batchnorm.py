"""`cleanup::fold_batchnorm`: fold inference BatchNormalization into a neighbouring linear op."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir

from edgec.pass_manager import EdgecPass, register_pass
from edgec.passes._graph import Names, bypass, const_array, drop_if_unused

_ONNX = ("", "ai.onnx")


@register_pass
class FoldBatchNormPass(EdgecPass):
    """Fold `BatchNormalization` (inference: y = x·s + t, s = γ/√(σ²+ε), t = β − μ·s) into the
    Conv, ConvTranspose, Gemm or MatMul beside it, so no BatchNormalization is left to run.

    Tried in this order, the first that applies wins:

    1. **after Conv** (`W[Cout, Cin/g, k…]`): W' = W·s per output channel, b' = b·s + t.
    2. **after ConvTranspose** (`W[Cin, Cout/g, k…]`, output channel = group·Cout/g + j):
       W' scales axis 1 within each group, b' = b·s + t.
    3. **after Gemm** (`Y = α·A·B + β·C`, BN on the 2-D output): B' = B·s per output
       column, C' = β·C·s + t, β' = 1.
    4. **after MatMul (+ Add)** with a constant 2-D weight on a 2-D input: W' = W·s per
       column; the Add's constant becomes b·s + t, or an Add of t takes the BN's place.
    5. **before Gemm / MatMul** (EfficientViT and SHViT heads: BatchNorm1d → Linear, a BN on
       a 2-D tensor read only by the linear layer): W' = diag(s)·W, bias b' = b + α·t·W (an
       `Add` is inserted after a MatMul that has no bias).

    Cases 1–4 need the producer's output to be read only by the BN; case 5 needs the BN's
    output to be read only by the linear layer. Every parameter must be constant. A BN in
    training mode, or with nothing to fold into (e.g. after a Relu), stays.

    Before (case 5, the EfficientViT head)::

        feat = BatchNormalization <epsilon = 1e-5> (x, gamma, beta, mean, var)    # x: [1, 192]
        y = Gemm <transB = 1> (feat, W)                                          # W: [1000, 192]

    After::

        y = Gemm <transB = 1, beta = 1.0> (x, W', b')      # W' = W·diag(s), b' = W·t

    Stats: `folded` plus one count per case (`into_conv`, `into_conv_transpose`,
    `into_gemm`, `into_matmul`), `kept` (BNs left alone).
    """

    id = "cleanup::fold_batchnorm"

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        names = Names(model)
        for node in list(ir.traversal.RecursiveGraphIterator(model.graph)):
            if node.op_type != "BatchNormalization" or node.domain not in _ONNX:
                continue
            affine = _affine(node)
            params = list(node.inputs[1:])
            case = None
            if affine is not None:
                case = _fold_into_producer(node, *affine, names) or _fold_into_consumer(
                    node, *affine, names
                )
            if case:
                self.stats[case] += 1
                self.stats["folded"] += 1
                for param in params:  # γ, β, μ, σ² of the BN that is gone
                    drop_if_unused(param)
            else:
                self.stats["kept"] += 1
        return ir.passes.PassResult(model, modified=bool(self.stats["folded"]))


def _affine(bn: ir.Node) -> tuple[np.ndarray, np.ndarray] | None:
    """(s, t) of an inference-mode BN with constant parameters, in float64."""
    if len(bn.inputs) != 5 or any(o.uses() or o.is_graph_output() for o in bn.outputs[1:]):
        return None
    if bn.attributes.get_int("training_mode", 0) or not bn.attributes.get_int("spatial", 1):
        return None
    params = [const_array(v) for v in bn.inputs[1:]]
    if any(p is None or p.ndim != 1 for p in params):
        return None
    gamma, beta, mean, var = (p.astype(np.float64) for p in params)
    s = gamma / np.sqrt(var + bn.attributes.get_float("epsilon", 1e-5))
    return s, beta - mean * s


def _only_reader(value: ir.Value, reader: ir.Node) -> bool:
    """`value` is read by `reader` alone, once, and is not a graph output."""
    uses = list(value.uses())
    return len(uses) == 1 and uses[0].node is reader and not value.is_graph_output()


def _rank(value: ir.Value | None) -> int | None:
    return None if value is None or value.shape is None else len(value.shape)


def _set_const(
    node: ir.Node, index: int, array: np.ndarray, like: ir.Value | None, names: Names, hint: str
) -> None:
    """Make input `index` of `node` the constant `array` (in `like`'s dtype when given).

    An initializer read only here is updated in place (it keeps its name); anything else gets
    a new initializer, and the old one is dropped once unused.
    """
    old = node.inputs[index] if index < len(node.inputs) else None
    dtype = (like.dtype if like is not None else None) or ir.DataType.FLOAT
    array = np.ascontiguousarray(array.astype(dtype.numpy()))
    if (
        old is not None
        and old.is_initializer()
        and not old.is_graph_input()
        and (len(old.uses()) == 1 and not old.is_graph_output())
    ):
        old.const_value = ir.tensor(array, dtype=dtype, name=old.name)
        old.shape = ir.Shape(array.shape)
        return
    graph = node.graph
    assert graph is not None
    name = names.fresh(hint)
    value = ir.Value(
        name=name,
        type=ir.TensorType(dtype),
        shape=ir.Shape(array.shape),
        const_value=ir.tensor(array, dtype=dtype, name=name),
    )
    graph.register_initializer(value)
    if index >= len(node.inputs):
        node.resize_inputs(index + 1)
    node.replace_input_with(index, value)
    drop_if_unused(old)


def _add_after(value: ir.Value, bias: np.ndarray, names: Names, hint: str) -> None:
    """Insert `value + bias` between `value` and all its readers (graph output name kept)."""
    producer = value.producer()
    assert producer is not None and producer.graph is not None
    graph = producer.graph
    name = names.fresh(hint)
    dtype = value.dtype or ir.DataType.FLOAT
    bias_value = ir.Value(
        name=name,
        type=ir.TensorType(dtype),
        shape=ir.Shape(bias.shape),
        const_value=ir.tensor(bias.astype(dtype.numpy()), dtype=dtype, name=name),
    )
    graph.register_initializer(bias_value)
    out = ir.Value(name=names.fresh(f"{value.name}_biased"), type=value.type, shape=value.shape)
    was_output = value.is_graph_output()
    value.replace_all_uses_with(out, replace_graph_outputs=True)
    add = ir.Node("", "Add", [value, bias_value], outputs=[out], name=names.fresh(f"{name}_add"))
    graph.insert_after(producer, add)
    if was_output:  # the graph output keeps its name
        original = value.name
        value.name = names.fresh(f"{original}_unbiased")
        out.name = original


def _fold_into_producer(bn: ir.Node, s: np.ndarray, t: np.ndarray, names: Names) -> str | None:
    x = bn.inputs[0]
    producer = x.producer() if x is not None else None
    if producer is None or producer.domain not in _ONNX or not _only_reader(x, bn):
        return None
    op = producer.op_type
    if op in ("Conv", "ConvTranspose"):
        case = _into_conv(producer, s, t, names)
    elif op == "Gemm":  # Gemm's output is always 2-D: BN channels are its columns
        case = _into_gemm_before(producer, s, t, names)
    elif op in ("MatMul", "Add"):  # 2-D input × 2-D weight checked below
        case = _into_matmul_before(producer, bn, s, t, names)
    else:
        case = None
    if case is None:
        return None
    if case == "into_matmul_add_t":  # BN becomes `+ t`: an Add replaces it
        if np.any(t):
            _add_after(x, t, names, f"{bn.name or 'bn'}_shift")
        case = "into_matmul"
    bypass(bn, bn.inputs[0])
    return case


def _into_conv(conv: ir.Node, s: np.ndarray, t: np.ndarray, names: Names) -> str | None:
    w = const_array(conv.inputs[1]) if len(conv.inputs) > 1 else None
    b_value = conv.inputs[2] if len(conv.inputs) > 2 else None
    b = const_array(b_value) if b_value is not None else None
    if w is None or w.ndim < 3 or (b_value is not None and b is None):
        return None
    if conv.op_type == "Conv":
        if w.shape[0] != s.size:
            return None
        new_w = w * s.reshape((-1,) + (1,) * (w.ndim - 1))
    else:
        group = conv.attributes.get_int("group", 1)
        if w.shape[0] % group or w.shape[1] * group != s.size:
            return None
        grouped = w.reshape((group, w.shape[0] // group, *w.shape[1:]))
        scale = s.reshape((group, 1, w.shape[1], *(1,) * (w.ndim - 2)))
        new_w = (grouped * scale).reshape(w.shape)
    new_b = (b if b is not None else 0.0) * s + t
    weight = conv.inputs[1]
    _set_const(conv, 1, new_w, weight, names, f"{weight.name or conv.name}_bn")
    _set_const(conv, 2, new_b, weight, names, f"{conv.name or 'conv'}_bias")
    return "into_conv" if conv.op_type == "Conv" else "into_conv_transpose"


def _gemm_operands(gemm: ir.Node) -> tuple[np.ndarray, np.ndarray | None, bool] | None:
    """(B, C or None, transB) of a Gemm with constant B and C."""
    b = const_array(gemm.inputs[1]) if len(gemm.inputs) > 1 else None
    c_value = gemm.inputs[2] if len(gemm.inputs) > 2 else None
    c = const_array(c_value) if c_value is not None else None
    if b is None or b.ndim != 2 or (c_value is not None and c is None):
        return None
    return b, c, bool(gemm.attributes.get_int("transB", 0))


def _set_gemm(gemm: ir.Node, new_b: np.ndarray, new_c: np.ndarray, names: Names) -> None:
    weight = gemm.inputs[1]
    _set_const(gemm, 1, new_b, weight, names, f"{weight.name or gemm.name}_bn")
    _set_const(gemm, 2, new_c, weight, names, f"{gemm.name or 'gemm'}_bias")
    gemm.attributes["beta"] = ir.AttrFloat32("beta", 1.0)


def _into_gemm_before(gemm: ir.Node, s: np.ndarray, t: np.ndarray, names: Names) -> str | None:
    operands = _gemm_operands(gemm)
    if operands is None:
        return None
    b, c, trans_b = operands
    if (b.shape[0] if trans_b else b.shape[1]) != s.size:
        return None
    beta = gemm.attributes.get_float("beta", 1.0)
    new_b = b * (s[:, None] if trans_b else s[None, :])
    new_c = (beta * c * s if c is not None else 0.0) + t
    _set_gemm(gemm, new_b, np.asarray(new_c), names)
    return "into_gemm"


def _into_matmul_before(
    producer: ir.Node, bn: ir.Node, s: np.ndarray, t: np.ndarray, names: Names
) -> str | None:
    add = None
    if producer.op_type == "Add":  # MatMul → Add(bias) → BN
        add = producer
        bias = None
        for i in (0, 1):
            mm_out, bias_value = add.inputs[i], add.inputs[1 - i]
            bias = const_array(bias_value)
            mm = mm_out.producer() if mm_out is not None else None
            if bias is not None and mm is not None and mm.op_type == "MatMul":
                break
        else:
            return None
        if (bias.ndim > 1 and bias.shape[:-1] != (1,) * (bias.ndim - 1)) or not _only_reader(
            mm_out, add
        ):
            return None
        if bias.size not in (1, s.size) or bias.ndim > 2:
            return None
        bias_index = 1 - i
    else:
        mm = producer
    w = const_array(mm.inputs[1])
    if mm.domain not in _ONNX or w is None or w.ndim != 2 or w.shape[1] != s.size:
        return None
    if _rank(mm.inputs[0]) != 2:
        return None
    weight = mm.inputs[1]
    _set_const(mm, 1, w * s[None, :], weight, names, f"{weight.name or mm.name}_bn")
    if add is None:
        return "into_matmul_add_t"
    new_bias = (bias.reshape(-1) * s + t).reshape((1,) * (bias.ndim - 1) + (s.size,))
    _set_const(add, bias_index, new_bias, weight, names, f"{add.name or 'add'}_bias")
    return "into_matmul"


def _fold_into_consumer(bn: ir.Node, s: np.ndarray, t: np.ndarray, names: Names) -> str | None:
    x, y = bn.inputs[0], bn.outputs[0]
    uses = list(y.uses())
    if x is None or _rank(x) != 2 or len(uses) != 1 or y.is_graph_output():
        return None
    linear, index = uses[0]
    if linear.domain not in _ONNX or index != 0:
        return None
    if linear.op_type == "Gemm" and not linear.attributes.get_int("transA", 0):
        operands = _gemm_operands(linear)
        if operands is None:
            return None
        b, c, trans_b = operands
        w = b.T if trans_b else b  # [Cin, Cout]
        if w.shape[0] != s.size:
            return None
        alpha = linear.attributes.get_float("alpha", 1.0)
        beta = linear.attributes.get_float("beta", 1.0)
        new_b = b * (s[None, :] if trans_b else s[:, None])
        new_c = (beta * c if c is not None else 0.0) + alpha * (t @ w)
        _set_gemm(linear, new_b, np.asarray(new_c), names)
        case = "into_gemm"
    elif linear.op_type == "MatMul":
        w = const_array(linear.inputs[1])
        if w is None or w.ndim != 2 or w.shape[0] != s.size:
            return None
        weight = linear.inputs[1]
        _set_const(linear, 1, w * s[:, None], weight, names, f"{weight.name or linear.name}_bn")
        shift = t @ w
        if np.any(shift):
            _fold_shift_after_matmul(linear, shift, names)
        case = "into_matmul"
    else:
        return None
    bypass(bn, x)
    return case


def _fold_shift_after_matmul(mm: ir.Node, shift: np.ndarray, names: Names) -> None:
    """Add `shift` ([Cout]) to the MatMul's result: into the bias Add that follows, if any."""
    out = mm.outputs[0]
    uses = list(out.uses())
    if len(uses) == 1 and uses[0].node.op_type == "Add" and not out.is_graph_output():
        add = uses[0].node
        bias_index = 1 - uses[0].idx
        bias = const_array(add.inputs[bias_index])
        if (
            bias is not None
            and bias.ndim <= 2
            and bias.shape[:-1] in ((), (1,))
            and (bias.shape[-1:] in ((1,), (shift.size,)))
        ):
            new_bias = (bias.astype(np.float64) + shift).reshape(
                (1,) * max(bias.ndim - 1, 0) + (shift.size,)
            )
            _set_const(add, bias_index, new_bias, mm.inputs[1], names, f"{add.name or 'add'}_bias")
            return
    _add_after(out, shift, names, f"{mm.name or 'matmul'}_bn_shift")
