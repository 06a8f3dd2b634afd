"""Segmenter / I-Segmenter exported to ONNX: ONNX Runtime against PyTorch and against the
official forward at odd sizes and 512², and `edgec compile` end to end.

Exports use official-layout checkpoints (non-trivial random weights from the shared manifests)
cut to 2 encoder blocks: every op kind of the 12-block model is in them (the export of a block
does not depend on its index) and each export takes seconds instead of a minute.
`test_segmenter.py` checks the full 12-block models against the official forward in PyTorch;
the compile test exports a full one.
"""

from __future__ import annotations

import json

import numpy as np
import onnx_ir as ir
import onnxruntime as ort
import pytest
import torch
from support.official import MANIFESTS
from support.official_segmenter import ISEGMENTER, segmenter_forward, segmenter_state_dict

from edgec.cli import main
from edgec.errors import UserError
from edgec.exporters.export import export_onnx
from edgec.models import create

LINEAR, MASK, ISEG = "segmenter_vit_tiny_linear", "segmenter_vit_tiny_mask", "isegmenter_vit_tiny"
DEPTH = 2
pytestmark = pytest.mark.skipif(
    not (MANIFESTS / f"{MASK}.json").is_file(), reason="../shared manifests not present"
)


def _shallow_weights(variant: str) -> dict[str, torch.Tensor]:
    sd = segmenter_state_dict(LINEAR if variant == LINEAR else MASK, seed=3)
    keep = tuple(f"encoder.blocks.{i}." for i in range(DEPTH))
    return {
        k: v for k, v in sd.items() if not k.startswith("encoder.blocks.") or k.startswith(keep)
    }


def _run_onnx(model: ir.Model, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(
        ir.to_proto(model).SerializeToString(), providers=["CPUExecutionProvider"]
    )
    (out,) = session.run(None, {session.get_inputs()[0].name: x})
    return out


def _within_float_bound(got: np.ndarray, ref: np.ndarray) -> bool:
    return bool(np.all(np.abs(got - ref) <= 5e-5 * max(1.0, float(np.abs(ref).max()))))


@pytest.mark.parametrize(
    ("variant", "size"),
    [
        (LINEAR, (37, 61)),
        (MASK, (37, 61)),
        (ISEG, (37, 61)),
        (MASK, (512, 512)),
        (ISEG, (512, 512)),
    ],
    ids=["linear-37x61", "mask-37x61", "iseg-37x61", "mask-512", "iseg-512"],
)
def test_onnx_matches_pytorch_and_the_official_forward(variant, size):
    sd = _shallow_weights(variant)
    model = create(variant, checkpoint=sd, n_layers=DEPTH)
    onnx_model = export_onnx(model, (3, *size))
    x = np.random.default_rng(4).standard_normal((1, 3, *size)).astype(np.float32)
    got = _run_onnx(onnx_model, x)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
        options = ISEGMENTER if variant == ISEG else {}
        official = segmenter_forward(torch.from_numpy(x), sd, **options).numpy()
    assert got.shape == ref.shape == (1, 150, *size)
    assert _within_float_bound(got, ref)
    assert _within_float_bound(got, official)
    if variant == ISEG:
        _check_integer_friendly(onnx_model)


def _check_integer_friendly(onnx_model: ir.Model) -> None:
    """No erf GELU or L2 norm; once constants are folded (the input size is fixed), the only
    Resize left is the nearest ×16 upsampling: the position-embedding resize is a constant."""
    import edgec.passes  # noqa: F401  (registers the passes)
    from edgec.pass_manager import run_passes

    assert not {n.op_type for n in onnx_model.graph} & {"Erf", "ReduceL2", "Sqrt", "Gelu"}
    # The default input_size_limit (8192 elements) leaves the 1025×192 table unfolded.
    options = {"cleanup::fold_constants": {"input_size_limit": 1 << 20}}
    run_passes(onnx_model, ["cleanup::fold_constants"], options=options)
    resizes = [n for n in onnx_model.graph if n.op_type == "Resize"]
    assert [n.attributes["mode"].value for n in resizes] == ["nearest"]


def test_export_at_a_wrong_input_size_is_a_user_error():
    model = create(LINEAR, n_layers=1)
    with pytest.raises(UserError) as err:
        export_onnx(model, (1, 64, 64))
    assert "(B, 3, H, W)" in err.value.message and err.value.exit_code == 2


def test_edgec_compile_end_to_end(tmp_path, capsys):
    """`edgec compile segmenter_vit_tiny_linear --target host` at a small odd input size: the
    artifact is a (1, 150, H, W) segmentation map equal to the PyTorch model's."""
    out = tmp_path / "out"
    code = main(
        [
            "compile",
            LINEAR,
            "--target",
            "host",
            "--input-size",
            "3,40,56",
            "--out",
            str(out),
            "--verify-count",
            "2",
            "--latency-runs",
            "5",
            "--json",
            "-q",
        ]
    )
    assert code == 0, capsys.readouterr().err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"]["outputs"][0]["shape"] == [1, 150, 40, 56]
    assert manifest["model"]["num_classes"] == 150
    assert manifest["model"]["preprocessing"]["mean"] == [0.5, 0.5, 0.5]
    assert manifest["fidelity"]["final_vs_pytorch"]["passed"]
    x = np.random.default_rng(5).standard_normal((1, 3, 40, 56)).astype(np.float32)
    session = ort.InferenceSession(
        str(out / manifest["artifact"]["path"]), providers=["CPUExecutionProvider"]
    )
    (got,) = session.run(None, {"input": x})
    with torch.no_grad():
        ref = create(LINEAR)(torch.from_numpy(x)).numpy()
    assert _within_float_bound(got, ref)
