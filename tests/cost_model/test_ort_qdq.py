"""Which kernels of a W8A8 (QDQ) graph ONNX Runtime runs on int8: the estimate's classification
(`cost_model.ort_qdq`, `kernels.group_kernels` with `ORT_CPU`) against ORT's own optimized
graph, on small hand-built graphs."""

from collections import Counter

import numpy as np
import pytest
from onnx import helper, numpy_helper
from support.onnx_build import model, value_info

from edgec.cost_model.fusion import ORT_CPU
from edgec.cost_model.host_micro import _benchmarks
from edgec.cost_model.host_time import host_class
from edgec.cost_model.kernels import group_kernels
from edgec.runtimes.ort_kernels import kernels_by_output

C = 8  # channels


def _scales(inits):
    inits += [
        helper.make_tensor("s", 1, [], [0.05]),
        helper.make_tensor("z", 2, [], [128]),  # a zero point of 128: Relu is not a no-op
        helper.make_tensor("z0", 2, [], [0]),  # 0: uint8 holds no negative value, Relu is
    ]


def _weight(inits, name, shape, seed):
    w = np.random.default_rng(seed).integers(-60, 60, shape).astype(np.int8)
    inits += [numpy_helper.from_array(w, f"{name}8")]
    return [helper.make_node("DequantizeLinear", [f"{name}8", "s"], [name])]


def _qdq(src, name, zero="z"):
    return [
        helper.make_node("QuantizeLinear", [src, "s", zero], [f"{name}_q"]),
        helper.make_node("DequantizeLinear", [f"{name}_q", "s", zero], [name]),
    ]


def _conv_graph():
    """x → Q → DQ → Conv1(1×1, float bias) → Relu → Q(zero point 0) → DQ     (QLinearConv)
    → Conv2(3×3) → HardSwish → Q → DQ          (float Conv: HardSwish reads it, w DQ runs)
    → Conv3(dw 3×3) → Transpose → Q → DQ       (QLinearConv: the Q moves before the Transpose)
    → Add(·, DQ(first Q)) → Q → DQ → y          (QLinearAdd)"""
    inits: list = []
    _scales(inits)
    inits.append(numpy_helper.from_array(np.full(C, 0.1, np.float32), "b1"))
    nodes = _qdq("x", "xd")
    nodes += _weight(inits, "w1", (C, C, 1, 1), 1)
    nodes += [
        helper.make_node("Conv", ["xd", "w1", "b1"], ["c1"]),
        helper.make_node("Relu", ["c1"], ["r1"]),
    ]
    nodes += _qdq("r1", "r1d", zero="z0")
    nodes += _weight(inits, "w2", (C, C, 3, 3), 2)
    nodes += [
        helper.make_node("Conv", ["r1d", "w2"], ["c2"], pads=[1] * 4),
        helper.make_node("HardSwish", ["c2"], ["h2"]),
    ]
    nodes += _qdq("h2", "h2d")
    nodes += _weight(inits, "w3", (C, 1, 3, 3), 3)
    nodes += [
        helper.make_node("Conv", ["h2d", "w3"], ["c3"], pads=[1] * 4, group=C),
        helper.make_node("Transpose", ["c3"], ["t3"], perm=[0, 1, 3, 2]),
    ]
    nodes += _qdq("t3", "t3d")
    nodes += [helper.make_node("DequantizeLinear", ["xd_q", "s", "z"], ["xd2"])]
    nodes += [helper.make_node("Add", ["t3d", "xd2"], ["a"])]
    nodes += _qdq("a", "y")
    shape = [1, C, 6, 6]
    return model(nodes, [value_info("x", shape)], [value_info("y", shape)], inits)


def _attention_graph():
    """q, k, v → Q → DQ; MatMul(q, kᵀ) → Softmax (MatMulIntegerToFloat, float Softmax)
    → Q → DQ → MatMul(·, v) → Q → DQ → y (QLinearMatMul)."""
    inits: list = []
    _scales(inits)
    nodes = _qdq("q", "qd") + _qdq("kt", "ktd") + _qdq("v", "vd")
    nodes += [
        helper.make_node("MatMul", ["qd", "ktd"], ["s0"]),
        helper.make_node("Softmax", ["s0"], ["p"], axis=-1),
    ]
    nodes += _qdq("p", "pd")
    nodes += [helper.make_node("MatMul", ["pd", "vd"], ["o"])]
    nodes += _qdq("o", "y")
    inputs = [value_info("q", [2, 16, 8]), value_info("kt", [2, 8, 16])]
    inputs.append(value_info("v", [2, 16, 8]))
    return model(nodes, inputs, [value_info("y", [2, 16, 8])], inits)


def _ours(graph) -> Counter:
    """What the estimate says ORT runs, in ORT's op names."""
    names = Counter()
    for k in group_kernels(graph, rules=ORT_CPU):
        op = k.op_types[0]
        if k.int8 and op in ("Conv", "MatMul", "Add"):
            float_out = op == "MatMul" and k.op_types[-1] != "QuantizeLinear"
            op = "MatMulIntegerToFloat" if float_out else f"QLinear{op}"
        names[op] += 1
    return names


def _ort(graph) -> Counter:
    ops = Counter(op.split("::")[-1] for op in kernels_by_output(graph).values())
    ops["Conv"] += ops.pop("FusedConv", 0)  # a float Conv with its activation fused
    return ops


@pytest.mark.parametrize("build", [_conv_graph, _attention_graph])
def test_int8_and_float_kernels_are_the_ones_ort_runs(build):
    graph = build()
    ours, ort = _ours(graph), _ort(graph)
    for op in ("QLinearConv", "QLinearMatMul", "MatMulIntegerToFloat", "QLinearAdd", "Conv"):
        assert ours[op] == ort[op], (op, ours, ort)
    # every Q and DQ ORT keeps is a kernel of ours, and no other
    for op in ("QuantizeLinear", "DequantizeLinear"):
        assert ours[op] == ort[op], (op, ours, ort)


def test_conv_kernels_say_how_ort_runs_them():
    kernels = [k for k in group_kernels(_conv_graph(), rules=ORT_CPU) if k.op_types[0] == "Conv"]
    assert [k.int8 for k in kernels] == [True, False, True]
    assert [k.runtime_weights for k in kernels] == [False, True, False]
    assert [host_class(k) for k in kernels] == ["conv1x1", "conv_rw", "dwconv"]
    assert kernels[0].op_types == ["Conv", "Relu", "QuantizeLinear"]  # the Relu is redundant
    # the float conv's weight DQ runs at every inference: a kernel reading the int8 weight
    weight_dq = [
        k
        for k in group_kernels(_conv_graph(), rules=ORT_CPU)
        if k.op_types == ["DequantizeLinear"] and k.weight_elements >= C * C * 9
    ]
    assert len(weight_dq) == 1 and host_class(weight_dq[0]) == "quantize"


def test_a_float_graph_has_no_int8_kernels_and_the_accelerator_rules_fold_weight_dqs():
    graph = _conv_graph()
    assert not any(k.int8 or k.runtime_weights for k in group_kernels(graph))
    assert not any(k.op_types == ["DequantizeLinear"] for k in group_kernels(graph))


def test_w8a8_micro_benchmarks_run_every_op_as_an_integer_kernel_in_ort():
    """The bug this guards against: a chain ending in a float op (its output a graph output)
    ran as a float Conv with its weights dequantized at every call, and slowed the int8 rate."""
    for name, cls, precision, build in _benchmarks(0.1):
        if precision != "w8a8":
            continue
        graph = build()
        ops = _ort(graph)
        assert not any(ops[op] for op in ("Conv", "Add", "MatMul")), (name, ops)
        work = [k for k in group_kernels(graph, rules=ORT_CPU) if host_class(k) != "quantize"]
        assert work and all(k.int8 for k in work), name
        if cls != "peak":
            assert {host_class(k) for k in work} == {cls}, name
