"""Core ML: lower the ONNX IR to an ML program (MIL), save a `.mlpackage`, reload and check it.

    ok, why = available()
    problems = check(model)                         # {op or problem: [node names]}; {} if none
    art = emit(model, out_dir, name="m0", precision="fp16", min_ios="ios17")

Core ML is reached from the ONNX graph edgec's passes produced, not by converting PyTorch a
second time, so head splitting, fusions and quantization carry over. The work lives in:
`coreml_lower` (graph walk, all failures at once) with `coreml_ops` (float op table) and
`coreml_qdq` (QDQ → constexpr weights, quantize/dequantize activations); `coreml_app`
(image input, labels, output names, metadata, Swift snippet); `coreml_package` (convert,
byte-stable save, reload and inspect); `coreml_eval` (a numpy reference evaluator of the
saved MIL program, because Core ML itself cannot run on Linux) and `coreml_placement`
(ops the Neural Engine is known not to run).

Precisions: `fp16` (default: Core ML's compute precision on the Neural Engine and GPU), `fp32`
(CPU/GPU only), and `w8a8` / `w4a8`, which lower a graph that already holds QDQ
quantization (docs/quantization.md): W8A8 needs iOS17+, W4A8 (int4 weights) iOS18. What the
package really holds is derived from the lowered graph, never taken from the request.

Files `emit` writes: `<name>.mlpackage` (a folder: `Manifest.json`, the model spec and
`weights/weight.bin`). Same model → same bytes.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import onnx_ir as ir

from edgec.artifact import Artifact
from edgec.errors import UnsupportedOpsError, UserError
from edgec.runtimes.coreml_sdk import DEFAULT_MIN_IOS, MIN_IOS, NAME, deployment_target, import_ct

__all__ = ["MIN_IOS", "NAME", "PRECISIONS", "available", "check", "emit", "ensure_supported"]

PRECISIONS = ("fp16", "fp32", "w8a8", "w4a8")
# Packages are built with fixed input shapes (the lowering resolves every shape statically);
# multi-graph compiles export dynamic dims at their example size for this backend.
DYNAMIC_SHAPES = False


def available() -> tuple[bool, str]:
    """Whether coremltools (MIL builder, package save/load) can be used here, and why not."""
    try:
        ct = import_ct()
    except ImportError as e:
        return False, (
            f"coremltools is not installed ({e}); install it with "
            "`pip install -c constraints.txt -e '.[coreml]'`"
        )
    return (
        True,
        f"coremltools {ct.__version__} (build and inspect only; Core ML runs on Apple OSes)",
    )


def check(model: ir.Model, device: object = None, min_ios: str = "ios18") -> dict[str, list[str]]:
    """Everything that stops a lowering of `model`, all at once: `{op or problem: [nodes]}`.

    The check is the lowering itself (nothing is written): unknown ops, shape inputs that are
    not constants, tensors above rank 5, dynamic input shapes, and ops coremltools rejects.
    `min_ios` matters for quantized weights (4-bit and per-block need iOS18).
    """
    return {key: nodes for key, (nodes, _) in _problems(model, min_ios).items()}


def ensure_supported(model: ir.Model, device: object = None, min_ios: str = "ios18") -> None:
    """Raise `UnsupportedOpsError` (every op, its nodes and why) if `check` finds anything."""
    problems = _problems(model, min_ios)
    if problems:
        _raise_unsupported(problems)


def _problems(model: ir.Model, min_ios: str) -> dict[str, tuple[list[str], str]]:
    from edgec.runtimes.coreml_app import AppInterface
    from edgec.runtimes.coreml_lower import lower

    app = AppInterface.from_model(model)
    return lower(
        model,
        target=deployment_target(min_ios),
        input_names={app.input_name: app.coreml_input},
        input_transforms=app.input_transforms(),
        output_transforms=app.output_transforms(),
    ).problems


def _raise_unsupported(problems: dict[str, tuple[list[str], str]]) -> None:
    why = "; ".join(f"{key}: {reason}" for key, (_, reason) in sorted(problems.items()))
    raise UnsupportedOpsError(
        NAME,
        {key: nodes for key, (nodes, _) in problems.items()},
        f"{why}. Rewrite these into ops edgec lowers (docs/coreml.md lists them), or choose "
        "another target",
    )


def emit(
    model: ir.Model,
    out_dir: Path,
    *,
    name: str,
    precision: str = "fp16",
    device: object = None,
    min_ios: str | None = None,
    ort_format: bool = False,
    verify: bool = True,
    split_heads: bool = False,
    example_inputs: dict[str, np.ndarray] | None = None,
) -> Artifact:
    """Write `<name>.mlpackage` into `out_dir` and return the Artifact (see the module doc).

    `min_ios` defaults to ios18 for w4a8 and ios17 otherwise. With `verify` (default) the
    saved package is reloaded and its MIL program evaluated on one deterministic input (or
    `example_inputs`, ONNX input name → array, for graphs whose inputs are not images, e.g.
    indices) with edgec's numpy reference evaluator and compared with ONNX Runtime on
    `model`; the result is in `details["reference_check"]`. `split_heads` (the compile asked
    for the Neural Engine's split-head layout) holds every tensor to rank ≤ 4, else rank ≤ 5;
    the reloaded program is checked for it (`details["structure"]`), and a tensor above it is a
    `UserError` naming the ops. Nothing is written when the graph cannot be lowered.
    """
    from edgec.runtimes.coreml_app import AppInterface, swift_snippet
    from edgec.runtimes.coreml_lower import MAX_RANK, SPLIT_HEADS_RANK, lower
    from edgec.runtimes.coreml_package import convert, inspect_package, save
    from edgec.runtimes.coreml_placement import placement_notes
    from edgec.runtimes.coreml_verify import check_structure

    if precision not in PRECISIONS:
        raise UserError(
            f"precision {precision!r} is not available for Core ML",
            f"choose one of: {', '.join(PRECISIONS)}",
        )
    if ort_format:
        raise UserError("--ort-format writes ONNX Runtime files", "drop it for Core ML targets")
    min_ios = (min_ios or ("ios18" if precision == "w4a8" else DEFAULT_MIN_IOS)).lower()
    target = deployment_target(min_ios)
    if precision == "w4a8" and min_ios != "ios18":
        raise UserError(
            "w4a8 on Core ML needs iOS18 (int4 constexpr weights)", "use --min-ios ios18"
        )
    app = AppInterface.from_model(model)
    max_rank = SPLIT_HEADS_RANK if split_heads else MAX_RANK
    lowered = lower(
        model,
        target=target,
        input_names={app.input_name: app.coreml_input},
        input_transforms=app.input_transforms(),
        output_transforms=app.output_transforms(),
        max_rank=max_rank,
    )
    if lowered.problems:
        _raise_unsupported(lowered.problems)
    realised = _realised_precision(precision, lowered.weights, lowered.activations)
    ct = import_ct()
    mlmodel = convert(
        lowered.program,
        target=target,
        precision="fp32" if precision == "fp32" else "fp16",
        inputs=app.ct_inputs(ct),
        classifier=app.classifier_config(ct),
    )
    spec = mlmodel.get_spec()
    app.describe(spec, realised, MIN_IOS[min_ios])
    mlmodel = ct.models.MLModel(spec, weights_dir=mlmodel.weights_dir, skip_model_load=True)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.mlpackage"
    save(mlmodel, path)
    try:
        structure = check_structure(path, max_rank, "split heads" if split_heads else "Core ML")
    except UserError:
        shutil.rmtree(path)  # never leave a package that failed its check
        raise
    package = inspect_package(path)
    outputs = [o["name"] for o in package["outputs"]]
    details: dict[str, Any] = {
        "format": "mlpackage (ML program)",
        "coremltools": ct.__version__,
        "minimum_deployment_target": MIN_IOS[min_ios],
        "compute_precision": "fp32" if precision == "fp32" else "fp16",
        "package": package,
        "structure": structure,
        "layers": {"weights": lowered.weights, "activations": lowered.activations},
        "placement": placement_notes(
            {**package, "compute_precision": precision}, lowered.weights, device
        ),
        "usage": {
            "language": "swift",
            "code": swift_snippet(app, name, outputs, package["inputs"]),
        },
        "notes": [
            "Core ML cannot run on Linux: the package was built, saved and reloaded with "
            "coremltools, and its MIL program evaluated by edgec's numpy reference evaluator",
        ],
    }
    if precision == "w4a8" and realised == "w8a8":
        details["notices"] = [
            "w4a8 was asked for, but the quantization passes kept every weight at 8 bits "
            "(layers too small for int4 blocks, or too sensitive): the package is w8a8"
        ]
    if verify:
        from edgec.runtimes.coreml_verify import reference_check

        details["reference_check"] = reference_check(model, path, app, realised, example_inputs)
    return Artifact(path, NAME, realised, [], details)


def _realised_precision(requested: str, weights: list[dict], activations: list[dict]) -> str:
    """What the lowered graph really is; a `UserError` if that is not what was asked for."""
    bits = {w["bits"] for w in weights}
    low = min(bits) if bits else None  # W4A8 keeps small or sensitive layers at 8 bits
    if activations and bits:
        realised = f"w{low}a8"
    elif bits:
        realised = f"w{low}a16"
    elif activations:
        realised = "a8"
    else:
        realised = requested if requested in ("fp16", "fp32") else "fp16"
    if requested == "w4a8" and realised == "w8a8":
        return realised  # every layer kept 8-bit weights (the emit notes say so, per layer)
    if requested in ("w8a8", "w4a8") and realised != requested:
        raise UserError(
            f"precision {requested} was asked for, but the graph holds {realised} "
            f"({len(weights)} quantized weights, {len(activations)} quantized activations)",
            "Core ML lowers the QDQ graph the quantization passes make (docs/quantization.md); "
            "run them (or give a quantized .onnx), or ask for fp16",
        )
    return realised
