"""Kernel grouping on hand-built graphs whose FLOPs and bytes are known by hand."""

import numpy as np
from onnx import helper
from support.onnx_build import model, value_info, weight

from edgec.cost_model.host_time import host_class
from edgec.cost_model.kernels import group_kernels


def _conv_block():
    """x[1,8,16,16] → Conv(16, 3×3, pad 1) → BatchNormalization → Relu → Add(x') → y."""
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("BatchNormalization", ["c", "s", "b", "m", "v"], ["bn"], name="bn"),
        helper.make_node("Relu", ["bn"], ["r"], name="relu"),
        helper.make_node("Add", ["r", "skip"], ["y"], name="add"),
    ]
    inits = [weight("w", (16, 8, 3, 3))] + [weight(n, (16,)) for n in "sbmv"]
    inputs = [value_info("x", [1, 8, 16, 16]), value_info("skip", [1, 16, 16, 16])]
    return model(nodes, inputs, [value_info("y", [1, 16, 16, 16])], inits)


def test_conv_bn_relu_add_is_one_kernel_with_known_flops_and_bytes():
    (kernel,) = group_kernels(_conv_block())
    assert kernel.cls == "conv"
    assert kernel.op_types == ["Conv", "BatchNormalization", "Relu", "Add"]
    out = 16 * 16 * 16
    assert kernel.macs == out * 8 * 9
    assert kernel.element_ops == 3 * out  # BN, Relu, Add: one per output element each
    assert kernel.flops == 2 * out * 8 * 9 + 3 * out
    # reads x and skip, writes y; the intermediate c, bn, r never leave the kernel
    assert kernel.activation_elements == 8 * 16 * 16 + out + out
    assert kernel.weight_elements == 16 * 8 * 9 + 4 * 16


def _attention(with_transpose: bool):
    """q,k,v [1,2,49,16]: MatMul(q, kᵀ) → Mul(scale) → Softmax → [Transpose] → MatMul(·, v)."""
    nodes = [
        helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2]),
        helper.make_node("MatMul", ["q", "kt"], ["s"]),
        helper.make_node("Mul", ["s", "scale"], ["ss"]),
        helper.make_node("Softmax", ["ss"], ["p"], axis=-1),
    ]
    if with_transpose:
        nodes += [
            helper.make_node("Transpose", ["p"], ["pt"], perm=[0, 1, 3, 2]),
            helper.make_node("MatMul", ["v", "pt"], ["o"]),
        ]
        out = [value_info("o", [1, 2, 16, 49])]
        v_shape = [1, 2, 16, 49]
    else:
        nodes.append(helper.make_node("MatMul", ["p", "v"], ["o"]))
        out = [value_info("o", [1, 2, 49, 16])]
        v_shape = [1, 2, 49, 16]
    inputs = [
        value_info("q", [1, 2, 49, 16]),
        value_info("k", [1, 2, 49, 16]),
        value_info("v", v_shape),
    ]
    return model(nodes, inputs, out, [weight("scale", ())])


def test_attention_is_one_kernel_and_the_score_matrix_never_moves():
    for with_transpose in (False, True):
        kernels = group_kernels(_attention(with_transpose))
        transpose_k, attention = kernels
        assert transpose_k.cls == "layout" and transpose_k.op_types == ["Transpose"]
        assert attention.cls == "attention"
        assert attention.op_types[:3] == ["MatMul", "Mul", "Softmax"]
        assert attention.macs == 2 * (2 * 49 * 16 * 49)  # QKᵀ and PV
        # reads q, kᵀ, v and writes o: the 2×49×49 scores are not counted
        assert attention.activation_elements == 4 * (2 * 49 * 16)


def test_the_onnx_attention_op_is_one_attention_kernel():
    """Attention (opset 23) on q, k, v [1,2,49,16]: the same kernel as the MatMul form."""
    node = helper.make_node("Attention", ["q", "k", "v"], ["o"], name="sdpa")
    shape = [1, 2, 49, 16]
    graph = model([node], [value_info(n, shape) for n in "qkv"], [value_info("o", shape)], opset=23)
    (attention,) = group_kernels(graph)
    assert attention.cls == "attention" and attention.op_types == ["Attention"]
    assert attention.macs == 2 * (2 * 49 * 16 * 49)
    assert attention.activation_elements == 4 * (2 * 49 * 16)


def test_views_are_free_and_constant_subgraphs_fold():
    """Reshape costs nothing; Gather on a constant table (an attention bias) is folded."""
    nodes = [
        helper.make_node("Reshape", ["x", "shape"], ["r"]),
        helper.make_node("Gather", ["table", "idx"], ["bias"], axis=0),
        helper.make_node("Add", ["r", "bias"], ["y"]),
    ]
    inits = [
        helper.make_tensor("shape", 7, [2], [4, 8]),
        weight("table", (4, 8)),
        helper.make_tensor("idx", 7, [4], [0, 1, 2, 3]),
    ]
    graph = model(nodes, [value_info("x", [2, 16])], [value_info("y", [4, 8])], inits)
    (kernel,) = group_kernels(graph)
    assert kernel.cls == "elementwise" and kernel.op_types == ["Add"]
    assert kernel.activation_elements == 32 + 32 and kernel.weight_elements == 32


def test_depthwise_conv_is_its_own_class():
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], group=8, pads=[1, 1, 1, 1])]
    graph = model(
        nodes,
        [value_info("x", [1, 8, 8, 8])],
        [value_info("y", [1, 8, 8, 8])],
        [weight("w", (8, 1, 3, 3))],
    )
    (kernel,) = group_kernels(graph)
    assert kernel.cls == "dwconv" and kernel.macs == 8 * 8 * 8 * 9


def test_a_kxk_conv_of_an_rgb_image_is_a_stem_to_the_host_and_others_are_not():
    """ORT's NCHWc convolution reads fewer than 8 input channels unblocked: a class of its own."""
    nodes = [
        helper.make_node("Conv", ["x", "w3"], ["s"], pads=[1] * 4, strides=[2, 2], name="stem"),
        helper.make_node("Conv", ["x", "w1"], ["p"], name="pointwise"),
        helper.make_node("Conv", ["s", "w8"], ["c"], pads=[1] * 4, name="dense"),
        helper.make_node("Conv", ["c", "wd"], ["d"], pads=[1] * 4, group=8, name="depthwise"),
    ]
    inits = [weight("w3", (8, 3, 3, 3)), weight("w1", (8, 3, 1, 1))]
    inits += [weight("w8", (8, 8, 3, 3)), weight("wd", (8, 1, 3, 3))]
    outputs = [value_info("p", [1, 8, 8, 8]), value_info("d", [1, 8, 4, 4])]
    kernels = {
        k.name: k
        for k in group_kernels(model(nodes, [value_info("x", [1, 3, 8, 8])], outputs, inits))
    }
    assert kernels["stem"].narrow_input and host_class(kernels["stem"]) == "conv_stem"
    assert host_class(kernels["pointwise"]) == "conv1x1" and not kernels["pointwise"].narrow_input
    assert host_class(kernels["dense"]) == "conv" and host_class(kernels["depthwise"]) == "dwconv"


def test_a_tensor_read_by_two_kernels_is_written_once_and_read_by_each():
    """x → Conv → c; c feeds a Softmax (own kernel) and the graph output."""
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"]),
        helper.make_node("Softmax", ["c"], ["y"], axis=1),
    ]
    graph = model(
        nodes,
        [value_info("x", [1, 4, 2, 2])],
        [value_info("c", [1, 4, 2, 2]), value_info("y", [1, 4, 2, 2])],
        [helper.make_tensor("w", 1, [4, 4, 1, 1], np.ones(16, np.float32))],
    )
    conv, softmax = group_kernels(graph)
    assert conv.activation_elements == 16 + 16  # reads x, writes c
    assert softmax.cls == "softmax" and softmax.activation_elements == 16 + 16


def test_npu_runtimes_run_attention_layer_by_layer_and_the_scores_move():
    """Core ML / TFLite (NPU_LAYERWISE): Q·Kᵀ and P·V are kernels of their own and the score
    matrix [1,2,49,49] is written and read back through Softmax; TensorRT fuses the three."""
    from edgec.cost_model.fusion import ACCELERATOR, NPU_LAYERWISE, rules_for

    assert rules_for("coreml") is NPU_LAYERWISE and rules_for("tflite") is NPU_LAYERWISE
    assert rules_for("tensorrt") is ACCELERATOR
    # the Transpose of k (a graph input) is the same copy kernel under both rules
    fused = group_kernels(_attention(False), rules=ACCELERATOR)[1:]
    layerwise = group_kernels(_attention(False), rules=NPU_LAYERWISE)[1:]
    assert [k.cls for k in fused] == ["attention"]
    assert [k.cls for k in layerwise] == ["attention", "softmax", "attention"]
    scores = 2 * 49 * 49
    moved = sum(k.activation_elements for k in layerwise) - fused[0].activation_elements
    assert moved == 4 * scores  # Q·Kᵀ writes, Softmax reads and writes, P·V reads
    assert sum(k.macs for k in layerwise) == fused[0].macs == 2 * 2 * 49 * 49 * 16
