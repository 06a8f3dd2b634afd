"""The proof a Core ML package computes what its ONNX graph computes, without Core ML.

`reference_check(model, package, app, precision)` feeds one deterministic input to ONNX
Runtime (the ONNX graph, optimisations off) and to `coreml_eval.run_program` (the MIL program
read back from the saved package), and compares every output:

- image models get one of edgec's synthetic photos at the input size: Core ML sees the raw
  0–255 pixels (its `image` input), ONNX the normalised tensor — so the preprocessing baked
  into the package is checked too;
- fp32 packages are held to the verification bound (5e-5·max(1, max|ref|));
- fp16 and quantized packages are judged by cosine similarity (≥ 0.999 for fp16, ≥ 0.99 for
  quantized), with max|Δ| recorded; fp16 rounding of every intermediate is what the
  evaluator models.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx_ir as ir

from edgec.errors import UserError
from edgec.preprocess import synthetic_images
from edgec.runtimes.compare import DEFAULT_BOUND, compare_outputs
from edgec.runtimes.coreml_app import LOGITS, AppInterface
from edgec.runtimes.coreml_eval import run_program
from edgec.runtimes.coreml_lower import mil_name
from edgec.runtimes.coreml_package import load_program

MIN_COSINE = {"fp32": None, "fp16": 0.999}
QUANTIZED_MIN_COSINE = 0.99


def check_structure(package: Path, max_rank: int, why: str) -> dict[str, Any]:
    """The reloaded program holds no tensor above `max_rank` (a record); else a `UserError`
    naming every op that makes one (`why`: what asked for the limit)."""
    from edgec.runtimes.coreml_package import tensor_ranks

    _, program = load_program(package)
    ranks = tensor_ranks(program)
    above = sorted(
        f"{op} ({op_type}, rank {rank})" for op, op_type, rank in ranks if rank > max_rank
    )
    if above:
        shown = ", ".join(above[:12]) + (f" and {len(above) - 12} more" if len(above) > 12 else "")
        raise UserError(
            f"the Core ML program has {len(above)} tensors above rank {max_rank} ({why} ask for "
            f"rank ≤ {max_rank}): {shown}",
            "these ops keep a high-rank layout the lowering could not fold; compile with "
            "--pipeline default to allow rank 5, or report the model",
        )
    return {
        "max_rank_allowed": max_rank,
        "why": why,
        "max_rank": max((rank for *_, rank in ranks), default=0),
        "passed": True,
    }


def reference_check(
    model: ir.Model,
    package: Path,
    app: AppInterface,
    precision: str,
    example_inputs: dict[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Compare the saved package's MIL program with ONNX Runtime on one input (a record):
    `example_inputs` (ONNX input name → array) when given, else `example_feeds(app)`."""
    if example_inputs is not None:
        onnx_feeds = {k: np.asarray(v) for k, v in example_inputs.items()}
        coreml_feeds = {mil_name(k): v for k, v in onnx_feeds.items()}
    else:
        coreml_feeds, onnx_feeds = example_feeds(app)
    reference = _run_onnx(model, onnx_feeds)
    _, program = load_program(package)
    got = run_program(program, coreml_feeds)
    names = {app.output_name: LOGITS} if app.labels is not None else {}
    actual = {name: got[names.get(name, mil_name(name))] for name in reference}
    bound = DEFAULT_BOUND if precision == "fp32" else None
    min_cosine = MIN_COSINE.get(precision, QUANTIZED_MIN_COSINE)
    comparison = compare_outputs(reference, actual, bound, min_cosine=min_cosine)
    record = {
        "method": "numpy MIL reference evaluator (edgec) vs ONNX Runtime on the ONNX graph",
        "input": _input_kind(app, example_inputs),
        **comparison.to_dict(),
    }
    if app.labels is not None:
        ref_top = int(np.argmax(reference[app.output_name]))
        record["top1_agrees"] = got["classLabel"] == app.labels[ref_top]
    return record


def _input_kind(app: AppInterface, example_inputs) -> str:
    if example_inputs is not None:
        return "the graph's example inputs (integer inputs as int32 to Core ML)"
    return "one synthetic photo (raw pixels to Core ML)" if app.is_image else "N(0,1)"


def example_feeds(app: AppInterface) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(Core ML feeds, ONNX feeds) for the same deterministic example."""
    shape = tuple(max(d, 1) for d in app.input_shape)
    if not app.is_image:
        x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        return {app.coreml_input: x}, {app.input_name: x}
    p = app.preprocessing
    (picture,) = synthetic_images(1, shape[2], shape[3])
    pixels = picture.transpose(2, 0, 1)[None].astype(np.float32)
    mean = np.asarray(p.mean, np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(p.std, np.float32).reshape(1, 3, 1, 1)
    return {app.coreml_input: pixels}, {app.input_name: (pixels * p.scale - mean) / std}


def _run_onnx(model: ir.Model, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    from edgec.runtimes.ort_proto import model_proto
    from edgec.runtimes.ort_session import CPU, import_ort, session_options

    ort = import_ort()
    proto, _ = model_proto(model)
    options = session_options(ort, threads=1, optimization="disabled")
    session = ort.InferenceSession(proto.SerializeToString(), options, providers=CPU)
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds), strict=True))
