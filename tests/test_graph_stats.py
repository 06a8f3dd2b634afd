"""Tests for edgec.graph_stats: histogram, IO, to_dict and format; then two real timm exports
(slow)."""

from __future__ import annotations

import json

import onnx
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper
from support.onnx_build import model as _model
from support.onnx_build import value_info as _vi
from support.onnx_build import weight as _weight

from edgec.graph_stats import format_stats, graph_stats

FLOAT = TensorProto.FLOAT


def test_histogram_io_to_dict_and_format():
    relus = [helper.make_node("Relu", [f"x{i}"], [f"x{i + 1}"], name=f"r{i}") for i in range(3)]
    conv = helper.make_node("Conv", ["x3", "w"], ["y"], name="conv", kernel_shape=[1, 1])
    sig = helper.make_node("Sigmoid", ["y"], ["z"], name="sig")
    model = _model(
        [*relus, conv, sig],
        [_vi("x0", ["batch", 3, 4, 4])],
        [_vi("z", ["batch", 2, 4, 4])],
        [_weight("w", [2, 3, 1, 1])],
    )
    stats = graph_stats(model, dims={"batch": 1})
    assert list(stats.op_histogram.items()) == [("Relu", 3), ("Conv", 1), ("Sigmoid", 1)]
    assert stats.node_count == 5
    assert stats.inputs[0].to_dict() == {
        "name": "x0",
        "dtype": "float32",
        "shape": ["batch", 3, 4, 4],
    }
    assert stats.macs == 2 * 4 * 4 * 3
    d = stats.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["macs"]["per_node"] == [["conv", "Conv", 96]]
    assert d["parameters"]["count"] == 6 and d["opset_imports"] == {"ai.onnx": 18}
    text = format_stats(stats)
    for needle in (
        "x0  float32 [batch, 3, 4, 4]",
        "MACs     96 (96)",
        "Relu",
        "conv",
        "all 1 contraction nodes counted",
        "batch=1",
    ):
        assert needle in text, needle


# -- real models (slow) ------------------------------------------------------------------------


def _trained_like(model):
    """Give a freshly built timm model non-trivial values everywhere, like a trained checkpoint.

    A fresh model has many all-zero tensors (BN betas, attention biases, the classifier bias).
    The exporter's optimizer drops a zero bias after folding Conv+BN and merges identical
    constants, so a fresh export would hold fewer initializers than a trained one would.
    """
    import torch

    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.rand(p.shape, generator=gen) - 0.5)
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=gen) - 0.5)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
    return model.eval()


def _export(name: str):
    torch = pytest.importorskip("torch")
    timm = pytest.importorskip("timm")
    from torch.utils.flop_counter import FlopCounterMode

    model = _trained_like(timm.create_model(name, pretrained=False))
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with FlopCounterMode(display=False) as counter:
        model(x)
    program = torch.onnx.export(model, (x,), dynamo=True, opset_version=18, verbose=False)
    bn = torch.nn.modules.batchnorm
    facts = {
        "params": sum(p.numel() for p in model.parameters()),
        "flop_counter_macs": counter.get_total_flops() // 2,
        "bn2d_channels": sum(
            m.num_features for m in model.modules() if isinstance(m, bn.BatchNorm2d)
        ),
        "bn1d_channels": sum(
            m.num_features for m in model.modules() if isinstance(m, bn.BatchNorm1d)
        ),
        "attention_biases": [
            p.shape for n, p in model.named_parameters() if n.endswith("attention_biases")
        ],
    }
    return program.model, facts


@pytest.fixture(scope="module")
def efficientvit_m0():
    return _export("efficientvit_m0")


@pytest.fixture(scope="module")
def shvit_s1():
    return _export("shvit_s1")


def _head_bn1d_delta(stats, bn1d: int) -> int:
    """The head BatchNorm1d: kept as BatchNormalization, its running mean/var become
    initializers (+2·C); folded into the Linear, its γ/β disappear (−2·C)."""
    return 2 * bn1d if "BatchNormalization" in stats.op_histogram else -2 * bn1d


@pytest.mark.slow
def test_efficientvit_m0_matches_published_counts(efficientvit_m0):
    model, facts = efficientvit_m0
    stats = graph_stats(model)
    # MACs: exactly what torch's FlopCounterMode counts on the PyTorch model, which is the
    # 79.19 M in shared/reference/models-a.md (and the paper's "79M FLOPs").
    assert stats.macs == facts["flop_counter_macs"] == 79_193_600
    assert stats.uncounted == () and stats.shape_inference.startswith("all needed")
    assert stats.macs_by_op.keys() == {"Conv", "MatMul", "Gemm"}
    assert facts["params"] == 2_349_436
    # Parameters in the graph differ from the 2,349,436 PyTorch parameters, by construction:
    #  - the exporter folds each of the 112 Conv+BatchNorm2d pairs: BN γ and β (2·C each, 14,136
    #    channels in all) become one conv bias (C): −14,136;
    #  - the head BatchNorm1d(192) stays a BatchNormalization node here, so its running
    #    mean/var (buffers in PyTorch) become initializers: +384 (if folded: −384);
    #  - eval() caches each attention bias table gathered by its int64 index: the [4, 49]
    #    and [4, 16] parameters (780) are replaced by [4, 49, 49] and [4, 16, 16] float
    #    tables (3·9604 + 3·1024 = 31,884 elements); the int64 indices are not parameters;
    #  - the attention scale 0.25 is a float scalar initializer: +1.
    # Total 2,349,436 − 14,136 + 384 − 780 + 31,884 + 1 = 2,366,789.
    tables = sum(s[0] * s[1] * s[1] for s in facts["attention_biases"])
    expected = (
        facts["params"]
        - facts["bn2d_channels"]
        + _head_bn1d_delta(stats, facts["bn1d_channels"])
        - sum(s.numel() for s in facts["attention_biases"])
        + tables
        + 1
    )
    assert stats.parameter_count == expected == 2_366_789
    assert stats.parameter_bytes == 4 * stats.parameter_count
    assert stats.op_histogram["Conv"] == 116 and stats.op_histogram["MatMul"] == 48
    assert stats.inputs[0].shape == (1, 3, 224, 224) and stats.outputs[0].shape == (1, 1000)
    # Re-inferring shapes on a copy agrees with the shapes the exporter recorded.
    assert graph_stats(model, infer_shapes=True).macs == stats.macs
    # With every intermediate shape stripped, nothing is counted without inference, and
    # inference (data propagation through the attention Reshapes) recovers every count.
    proto = ir.serde.serialize_model(model)
    del proto.graph.value_info[:]
    for out in proto.graph.output:
        out.type.tensor_type.ClearField("shape")
    stripped = ir.serde.deserialize_model(proto)
    assert len(graph_stats(stripped, infer_shapes=False).uncounted) == len(stats.mac_nodes)
    inferred = graph_stats(stripped)
    assert (inferred.macs, inferred.other_ops, inferred.uncounted) == (
        stats.macs,
        stats.other_ops,
        (),
    )
    assert inferred.shape_inference.startswith("onnx shape inference")


@pytest.mark.slow
def test_shvit_s1_matches_published_counts(shvit_s1):
    model, facts = shvit_s1
    stats = graph_stats(model)
    assert stats.macs == facts["flop_counter_macs"] == 241_320_768  # 241.32 M
    assert stats.uncounted == ()
    # 6,330,808 PyTorch parameters − 21,508 (BN2d γ/β folded into conv biases) + 640 (head
    # BN1d(320) running stats) + 3 (GroupNorm(1, C) becomes InstanceNormalization with one
    # shared [1] scale and [1] bias, then a per-channel Mul/Add holding the affine γ/β;
    # plus the 0.25 attention scale) = 6,309,943.
    expected = (
        facts["params"]
        - facts["bn2d_channels"]
        + _head_bn1d_delta(stats, facts["bn1d_channels"])
        + 3
    )
    assert stats.parameter_count == expected == 6_309_943
    text = format_stats(stats)
    assert "241,320,768 (241.32 M)" in text and "all 96 contraction nodes counted" in text


def test_model_proto_roundtrip_gives_same_stats(tmp_path):
    conv = helper.make_node("Conv", ["x", "w"], ["y"], name="conv", kernel_shape=[3, 3])
    model = _model([conv], [_vi("x", [1, 3, 8, 8])], [_vi("y", None)], [_weight("w", [4, 3, 3, 3])])
    path = tmp_path / "m.onnx"
    onnx.save(ir.serde.serialize_model(model), path)
    assert graph_stats(ir.load(path)).to_dict() == graph_stats(model).to_dict()
