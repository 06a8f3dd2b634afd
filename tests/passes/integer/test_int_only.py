"""`integer::int_only` end to end on a small timm ViT (LayerNorm, Shiftmax, ShiftGELU, residual
adds, class token, MatMul biases): integer-only by the checker, runs in ONNX Runtime, close to
the float graph on real photos; idempotent; clear errors for what cannot lower."""

from pathlib import Path

import numpy as np
import onnx_ir as ir
import pytest
import timm
import torch
from onnx import TensorProto, helper
from support.onnx_build import model as build_model
from support.onnx_build import value_info

from edgec.errors import UserError
from edgec.exporters.export import export_onnx
from edgec.pass_manager import run_passes
from edgec.passes.integer.checker import check_int_only
from edgec.passes.quant.calibrate import model_preprocessing
from edgec.pipelines import pipeline
from edgec.preprocess import read_model_inputs

PHOTOS = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "imagenet_samples.npz"


@pytest.fixture(scope="module")
def tiny_vit() -> ir.Model:
    torch.manual_seed(0)
    module = timm.create_model(
        "vit_tiny_patch16_224", pretrained=False, img_size=32, patch_size=8, depth=2,
        embed_dim=48, num_heads=3, num_classes=10,
    ).eval()  # fmt: skip
    with torch.no_grad():  # timm zero-initialises biases; real checkpoints have them
        for p in module.parameters():
            if p.ndim == 1:
                p.add_(0.05 * torch.randn_like(p))
    model = export_onnx(module, (3, 32, 32))
    run_passes(model, pipeline("cleanup"))
    return model


def _clone(model: ir.Model) -> ir.Model:
    return ir.serde.deserialize_model(ir.serde.serialize_model(model))


@pytest.mark.skipif(not PHOTOS.is_file(), reason="../shared/data is not checked out here")
def test_vit_lowers_to_integer_only_close_to_float(tiny_vit, helpers):
    model = _clone(tiny_vit)
    result, p = helpers.run_pass("integer::int_only", model, data=str(PHOTOS), count=8)
    assert result.modified
    report = check_int_only(model)
    assert report.int_only, report.text()
    assert {"MatMulInteger", "ConvInteger", "BitShift", "ReduceSum"} <= set(report.ops)
    assert p.stats["op_MatMulInteger"] == report.ops["MatMulInteger"]
    photos = read_model_inputs(PHOTOS, model_preprocessing(tiny_vit), 24)[8:]
    name = tiny_vit.graph.inputs[0].name
    cosines, agree = [], 0
    for x in photos:
        ref = helpers.run_ort(tiny_vit, {name: x[None]})[0].ravel()
        got = helpers.run_ort(model, {name: x[None]})[0].ravel()
        cosines.append(ref @ got / np.linalg.norm(ref) / np.linalg.norm(got))
        agree += int(ref.argmax() == got.argmax())
    assert min(cosines) > 0.97 and agree >= 14, (cosines, agree)
    helpers.assert_idempotent("integer::int_only", model, data=str(PHOTOS), count=8)


def test_ops_without_integer_form_are_all_named_and_nothing_changes(helpers):
    nodes = [
        helper.make_node("Tanh", ["x"], ["s"], name="gate"),
        helper.make_node("Resize", ["s", "", "k"], ["y"], mode="cubic", name="up"),
    ]
    scales = helper.make_tensor("k", TensorProto.FLOAT, [4], [1, 1, 2, 2])
    model = build_model(
        nodes, [value_info("x", [1, 2, 4, 4])], [value_info("y", [1, 2, 8, 8])], [scales]
    )
    helpers.infer_shapes(model)
    before = helpers.fingerprint(model)
    with pytest.raises(UserError, match="Tanh: gate") as error:
        helpers.run_pass("integer::int_only", model, data="unused.npz")
    assert "Resize (mode cubic" in str(error.value)
    assert helpers.fingerprint(model) == before


def test_needs_calibration_data(tiny_vit, helpers):
    with pytest.raises(UserError, match="calibration data"):
        helpers.run_pass("integer::int_only", _clone(tiny_vit))
