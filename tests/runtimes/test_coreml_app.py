"""App-ready packages: image input with the model's normalisation, labels, output names,
metadata, a Swift snippet that matches the package's interface, byte-stable rebuilds.

Packages are saved and reloaded with coremltools; Core ML itself cannot run on Linux, so the
numbers are checked with edgec's numpy evaluator of the saved MIL program against ONNX
Runtime (which also proves the baked-in normalisation equals the recorded preprocessing).
"""

from __future__ import annotations

import json

import numpy as np
import onnx_ir as ir
import pytest
from onnx import helper, numpy_helper
from support.onnx_build import model, value_info

pytest.importorskip("coremltools", reason="coremltools is not installed")

from edgec.artifact import file_entries
from edgec.preprocess import Preprocessing
from edgec.runtimes import coreml
from edgec.runtimes.coreml_package import load_program

LABELS = ["cat", "dog", "fox"]


def classifier(labels: bool = True) -> ir.Model:
    """1×3×16×16 image → Conv → Relu → GAP → Flatten → Gemm → 1×3, with edgec's metadata."""
    rng = np.random.default_rng(3)
    inits = [
        numpy_helper.from_array((rng.standard_normal((4, 3, 3, 3)) * 0.4).astype(np.float32), "w"),
        numpy_helper.from_array((rng.standard_normal((3, 4)) * 0.5).astype(np.float32), "wg"),
    ]
    nodes = [
        helper.make_node("Conv", ["input", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "wg"], ["output"], transB=1),
    ]
    m = model(nodes, [value_info("input", [1, 3, 16, 16])], [value_info("output", [1, 3])], inits)
    pre = Preprocessing(input_size=(3, 16, 16), mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3))
    m.metadata_props.update(
        {
            "edgec.preprocessing": pre.to_json(),
            "edgec.model": "tiny",
            "edgec.num_classes": "3",
            **({"edgec.labels": json.dumps(LABELS)} if labels else {}),
        }
    )
    return m


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("app")
    return coreml.emit(classifier(), out, name="tiny", precision="fp16"), out


def test_image_input_labels_and_output_names(built):
    art, _ = built
    package = art.details["package"]
    assert package["inputs"] == [
        {"name": "image", "type": "imageType", "width": 16, "height": 16, "color": "RGB"}
    ]
    outputs = {o["name"]: o["type"] for o in package["outputs"]}
    assert outputs == {
        "classLabel": "stringType",
        "classLabel_probs": "dictionaryType",
        "logits": "multiArrayType",
    }


def test_metadata_and_feature_descriptions(built):
    art, _ = built
    mlmodel, _ = load_program(art.path)
    meta = mlmodel.get_spec().description.metadata
    assert meta.author == "edgec" and meta.versionString and meta.license
    assert "tiny" in meta.shortDescription and "fp16" in meta.shortDescription
    assert json.loads(meta.userDefined["edgec.preprocessing"])["std"] == [0.2, 0.25, 0.3]
    assert not any(k.endswith("conversion_date") for k in meta.userDefined)
    docs = {f.name: f.shortDescription for f in mlmodel.get_spec().description.input}
    assert "centre-crop" in docs["image"]


def test_normalisation_and_classes_match_onnx_runtime(built):
    check = built[0].details["reference_check"]
    assert check["passed"] and check["top1_agrees"], check
    assert check["outputs"][0]["cosine"] > 0.999


def test_swift_snippet_names_the_real_interface(built):
    usage = built[0].details["usage"]
    assert usage["language"] == "swift"
    assert "tiny(configuration:" in usage["code"]
    assert "VNClassificationObservation" in usage["code"]


def test_rebuild_is_byte_identical(built, tmp_path):
    art, _ = built
    again = coreml.emit(classifier(), tmp_path, name="tiny", precision="fp16", verify=False)
    assert file_entries(again.path) == file_entries(art.path)


def test_index_labels_without_names_and_plain_tensor_models(tmp_path):
    art = coreml.emit(classifier(labels=False), tmp_path / "a", name="idx", verify=False)
    outputs = {o["name"]: o["type"] for o in art.details["package"]["outputs"]}
    assert outputs["classLabel"] == "int64Type"
    plain = model(
        [helper.make_node("Relu", ["x"], ["y"])],
        [value_info("x", [1, 8])],
        [value_info("y", [1, 8])],
    )
    art = coreml.emit(plain, tmp_path / "b", name="plain", precision="fp32")
    assert art.details["package"]["inputs"][0]["type"] == "multiArrayType"
    assert "model.prediction(x: x)" in art.details["usage"]["code"]
    assert (
        art.details["reference_check"]["bound"] == 5e-5 and art.details["reference_check"]["passed"]
    )
