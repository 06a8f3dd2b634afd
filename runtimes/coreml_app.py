"""What makes a package app-ready: image input, class labels, output names, metadata, Swift.

`AppInterface.from_model(model)` reads edgec's metadata from the ONNX model
(`edgec.preprocessing`, `edgec.model`, `edgec.num_classes`, optional `edgec.labels`, a JSON
list of class names) and decides:

- **image input**: an N=1, 3-channel float input of an image model becomes a Core ML
  `ImageType` (RGB, 0–255 pixels) named `image`; the model's normalisation
  `(pixel·scale − mean_c) / std_c` is the first two MIL ops (`mul` by scale/std_c, `add`
  −mean_c/std_c), exact per channel (ImageType's own scale is one scalar for all channels).
  Resizing and centre-cropping to the input size are the app's job (Vision does it; see the
  Swift snippet).
- **classifier**: a single [1, K] output with K = `edgec.num_classes` becomes `logits`, a
  `softmax` gives `probabilities`, and Core ML's classifier outputs `classLabel` and
  `classLabel_probs` (labels from `edgec.labels`, else the class indices 0…K−1).
- **metadata**: description, author, license, version, input/output descriptions, and
  edgec's own keys under `edgec.*`.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

import numpy as np
import onnx_ir as ir

from edgec import __version__
from edgec.preprocess import Preprocessing

IMAGE_INPUT = "image"
LOGITS, PROBABILITIES, CLASS_LABEL = "logits", "probabilities", "classLabel"


@dataclasses.dataclass
class AppInterface:
    """How the package faces an app (decided from the ONNX model's metadata and I/O)."""

    model_name: str
    input_name: str
    input_shape: tuple[int, ...]
    preprocessing: Preprocessing | None
    labels: list[str] | list[int] | None
    output_name: str

    @classmethod
    def from_model(cls, model: ir.Model) -> AppInterface:
        meta = dict(model.metadata_props)
        (value, *more_inputs) = model.graph.inputs
        shape = tuple(d if isinstance(d, int) else -1 for d in (value.shape or []))
        raw = meta.get("edgec.preprocessing")
        pre = Preprocessing.from_dict(json.loads(raw)) if raw else None
        is_image = (
            pre is not None
            and not more_inputs
            and len(shape) == 4
            and shape[:2] == (1, 3)
            and pre.layout == "NCHW"
            and pre.color == "RGB"
            and value.dtype == ir.DataType.FLOAT
        )
        outputs = list(model.graph.outputs)
        classes = int(meta["edgec.num_classes"]) if meta.get("edgec.num_classes") else None
        out_shape = tuple(outputs[0].shape or []) if len(outputs) == 1 else ()
        labels = None
        if classes and out_shape == (1, classes):
            labels = json.loads(meta["edgec.labels"]) if meta.get("edgec.labels") else None
            if labels is None or len(labels) != classes:
                labels = list(range(classes))
        return cls(
            model_name=meta.get("edgec.model") or model.graph.name or "model",
            input_name=value.name,
            input_shape=shape,
            preprocessing=pre if is_image else None,
            labels=labels,
            output_name=outputs[0].name,
        )

    @property
    def is_image(self) -> bool:
        return self.preprocessing is not None

    @property
    def coreml_input(self) -> str:
        """The package's input name: `image` for image models, else the ONNX name."""
        return IMAGE_INPUT if self.is_image else self.input_name

    def input_transforms(self) -> dict[str, Any]:
        """`{onnx input: fn(mb, var, unique) -> var}`: the per-channel normalisation as MIL ops."""
        if not self.is_image:
            return {}
        pre = self.preprocessing
        std = np.asarray(pre.std, np.float32).reshape(1, 3, 1, 1)
        mean = np.asarray(pre.mean, np.float32).reshape(1, 3, 1, 1)

        def normalise(mb, var, unique):
            scale, shift = (pre.scale / std).astype(np.float32), (-mean / std).astype(np.float32)
            scaled = mb.mul(x=var, y=scale, name=unique("image_scaled"))
            return mb.add(x=scaled, y=shift, name=unique("image_normalised"))

        return {self.input_name: normalise}

    def output_transforms(self) -> dict[str, Any]:
        """`{onnx output: fn(mb, var) -> [vars]}` (names in `fn.names`): logits + softmax."""
        if self.labels is None:
            return {}

        def classify(mb, var):
            logits = mb.identity(x=var, name=LOGITS)
            return [logits, mb.softmax(x=logits, axis=-1, name=PROBABILITIES)]

        classify.names = (LOGITS, PROBABILITIES)
        return {self.output_name: classify}

    def ct_inputs(self, ct) -> list | None:
        if not self.is_image:
            return None
        return [ct.ImageType(name=self.coreml_input, shape=self.input_shape, scale=1.0,
                             bias=[0.0, 0.0, 0.0], color_layout=ct.colorlayout.RGB,
                             channel_first=True)]  # fmt: skip

    def classifier_config(self, ct):
        if self.labels is None:
            return None
        return ct.ClassifierConfig(self.labels, predicted_probabilities_output=PROBABILITIES)

    def describe(self, spec, precision: str, min_ios: str) -> None:
        """Fill the spec's metadata and input/output descriptions (in place)."""
        meta = spec.description.metadata
        meta.shortDescription = (
            f"{self.model_name} compiled by edgec {__version__} for Core ML "
            f"({precision}, {min_ios}+)"
        )
        meta.author = "edgec"
        meta.license = "see the license of the source model's weights"
        meta.versionString = __version__
        for key in list(meta.userDefined):
            if key.endswith("conversion_date"):  # makes two compiles differ by date
                del meta.userDefined[key]
        meta.userDefined["edgec.model"] = self.model_name
        meta.userDefined["edgec.precision"] = precision
        meta.userDefined["edgec.min_ios"] = min_ios
        if self.is_image:
            meta.userDefined["edgec.preprocessing"] = self.preprocessing.to_json()
        docs = self.feature_docs()
        for feature in (*spec.description.input, *spec.description.output):
            feature.shortDescription = docs.get(feature.name, feature.shortDescription)

    def feature_docs(self) -> dict[str, str]:
        _, _, height, width = (list(self.input_shape) + [0] * 4)[:4]
        docs = {}
        if self.is_image:
            p = self.preprocessing
            docs[self.coreml_input] = (
                f"RGB image, {width}×{height}; resize (short side to {height}/{p.crop_pct:g}, "
                f"{p.interpolation}) and centre-crop first; the model normalises with mean "
                f"{list(p.mean)}, std {list(p.std)} itself"
            )
        if self.labels is not None:
            docs[LOGITS] = f"class scores before softmax, [1, {len(self.labels)}]"
            docs[CLASS_LABEL] = "the most likely class"
            docs[f"{CLASS_LABEL}_probs"] = "softmax probability of every class"
        return docs


def swift_snippet(
    app: AppInterface, package_name: str, outputs: list[str], arrays: list[dict] | None = None
) -> str:
    """A short Swift program that loads the compiled model and runs one image (or arrays:
    `arrays` are the package's inputs as `inspect_package` lists them, name/shape/dtype)."""
    cls = re.sub(r"\W", "_", package_name)  # the class Xcode generates from the file name
    if app.is_image and app.labels is not None:
        return "\n".join(
            [
                "import CoreML",
                "import Vision",
                "",
                f"// Add {package_name}.mlpackage to the Xcode target; Xcode generates `{cls}`.",
                f"let coreml = try {cls}(configuration: MLModelConfiguration())",
                "let model = try VNCoreMLModel(for: coreml.model)",
                "let request = VNCoreMLRequest(model: model) { request, _ in",
                "    guard let top = (request.results as? [VNClassificationObservation])?.first "
                "else { return }",
                "    print(top.identifier, top.confidence)  // classLabel and its probability",
                "}",
                "request.imageCropAndScaleOption = .centerCrop  // the model's own crop",
                "try VNImageRequestHandler(cgImage: image, options: [:]).perform([request])",
            ]
        )
    if app.is_image:
        first = outputs[0]
        return "\n".join(
            [
                "import CoreML",
                "",
                f"let model = try {cls}(configuration: MLModelConfiguration())",
                f"let input = try {cls}Input({app.coreml_input}With: image)  // CGImage, "
                "already resized and centre-cropped",
                "let output = try model.prediction(input: input)",
                f"print(output.{first}.shape)",
            ]
        )
    arrays = arrays or [
        {"name": app.coreml_input, "shape": [max(d, 1) for d in app.input_shape], "dtype": "fp32"}
    ]
    lines = ["import CoreML", "", f"let model = try {cls}(configuration: MLModelConfiguration())"]
    for array in arrays:
        shape = ", ".join(str(d) for d in array["shape"])
        kind = ".int32" if array.get("dtype") == "int32" else ".float32"
        lines.append(f"let {array['name']} = try MLMultiArray(shape: [{shape}], dataType: {kind})")
    call = ", ".join(f"{a['name']}: {a['name']}" for a in arrays)
    lines += [f"let output = try model.prediction({call})", f"print(output.{outputs[0]}.shape)"]
    return "\n".join(lines)
