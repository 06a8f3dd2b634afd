"""The `cleanup` pipeline on a real dynamo export of timm efficientvit_m0 (exported once)."""

from __future__ import annotations

import collections

import numpy as np
import onnx_ir as ir
import pytest

import edgec.passes  # noqa: F401  (registers the passes)
from edgec.errors import UserError
from edgec.pass_manager import PASSES, run_passes
from edgec.pipelines import PIPELINES, pipeline

BOUND = 5e-5


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(onnx_ir model, input, torch output) for a randomised efficientvit_m0."""
    torch = pytest.importorskip("torch")
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    model = timm.create_model("efficientvit_m0", pretrained=False).eval()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        # timm zero-initialises residual BN gammas and the attention biases; randomise them
        # so no folded weight is degenerate and no bias add is a no-op.
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d):
                c = module.num_features
                module.weight.copy_(torch.rand(c, generator=g) + 0.5)
                module.bias.copy_(torch.randn(c, generator=g) * 0.1)
                module.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
                module.running_var.copy_(torch.rand(c, generator=g) + 0.5)
        for name, param in model.named_parameters():
            if name.endswith("attention_biases"):
                param.copy_(torch.randn(param.shape, generator=g) * 0.5)
        x = torch.randn(1, 3, 224, 224, generator=g)
        expected = model(x).numpy()
    path = tmp_path_factory.mktemp("efficientvit_m0") / "model.onnx"
    torch.onnx.export(model, (x,), str(path), dynamo=True, opset_version=18, external_data=False)
    return ir.load(path), x.numpy(), expected


def ops(model: ir.Model) -> collections.Counter:
    return collections.Counter(node.op_type for node in model.graph.all_nodes())


def test_every_pipeline_id_is_registered():
    for name, ids in PIPELINES.items():
        assert ids == pipeline(name)
        assert [i for i in ids if i not in PASSES] == []


def test_unknown_pipeline_is_a_user_error():
    with pytest.raises(UserError, match="unknown pipeline 'nope'"):
        pipeline("nope")


@pytest.mark.slow
def test_cleanup_efficientvit_m0(helpers, exported):
    original, x, expected = exported
    model = helpers.clone(original)
    before = ops(model)
    records = run_passes(model, pipeline("cleanup"))
    after = ops(model)

    assert sum(after.values()) < sum(before.values())
    assert after["BatchNormalization"] == 0 < before["BatchNormalization"]
    stats = {r.id: r.stats for r in records}
    assert stats["cleanup::fold_bias_gather"]["gathers"] == 12
    assert stats["cleanup::fold_batchnorm"]["into_gemm"] == 1

    out = helpers.run_ort(model, {model.graph.inputs[0].name: x})[0]
    ref = helpers.run_ort(original, {original.graph.inputs[0].name: x})[0]
    for reference in (expected, ref):
        excess = np.abs(out - reference) - BOUND * np.maximum(1.0, np.abs(reference))
        assert excess.max() <= 0, f"max |Δ| {np.abs(out - reference).max()}"

    # The whole pipeline is a fixpoint: a second run changes nothing.
    fingerprint = helpers.fingerprint(model)
    again = run_passes(model, pipeline("cleanup"))
    assert [r.id for r in again if r.modified] == []
    assert helpers.fingerprint(model) == fingerprint
