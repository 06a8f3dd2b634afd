"""TensorRT (Jetson and NVIDIA GPU targets): check, emit a TensorRT-ready graph, gate, build.

    ok, why = available()                   # always usable: the ONNX + script need no SDK
    rejected = check(model, device)         # {op: [node names]}; findings() adds slow / DLA
    art = emit(model, out_dir, name="m0", precision="fp16", device=load_device("jetson"))

`emit` writes into `out_dir`:

- `<name>.onnx`: the TensorRT-ready graph. The precision is in the graph, built strongly
  typed: fp16 casts every float tensor (`tensorrt_fp16`); w8a8 / w4a16 rewrite the graph's
  Q/DQ into TensorRT's form (`tensorrt_qdq`: symmetric int8, float biases, int4 block-wise
  weight-only) and run the rest in fp16; w4a8 is realised as W8A8 or W4A16 and says which
  and why (`tensorrt_precision`). It is run in ONNX Runtime against the graph it was made
  from (the one verified against PyTorch) before anything else happens.
- the parse-and-build gate: with TensorRT or TensorRT-RTX importable (`tensorrt_sdk`), the
  file is parsed and built (`tensorrt_build`); a graph TensorRT rejects stops the compile
  with TensorRT's own error.
- `<name>.plan`: the engine, only where full TensorRT and a GPU are present (the timing
  cache in `~/.cache/edgec/` is reused across builds). Anywhere else no engine is built, and
  `details["engine"]` and `details["notices"]` say so.
- `build_<name>.sh`: the one-command `trtexec` build for the target (`tensorrt_script`).

Inputs with symbolic dimensions get one optimisation profile (`tensorrt_shapes`): the batch
1 / 1 / `max_batch`, any other dimension the min / opt / max recorded in the model's metadata
`edgec.dim_ranges` (EfficientTAM's memory frames, pointers, prompt points) or given in
`dim_ranges`. The same profile goes to the gate, the engine build and the script, and the
emitted graph is compared with the given one in ONNX Runtime at every corner of it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx_ir as ir

from edgec.artifact import Artifact
from edgec.errors import UserError
from edgec.runtimes.compare import DEFAULT_BOUND, compare_outputs
from edgec.runtimes.ort_proto import model_proto, write_onnx
from edgec.runtimes.ort_runner import load as load_ort
from edgec.runtimes.tensorrt_build import build
from edgec.runtimes.tensorrt_fp16 import needed_opset, raise_opset, to_float16
from edgec.runtimes.tensorrt_precision import PRECISIONS, realise
from edgec.runtimes.tensorrt_qdq import census, to_tensorrt_form
from edgec.runtimes.tensorrt_script import script_name, write_build_script
from edgec.runtimes.tensorrt_sdk import INSTALL_HINT, NAME, find_sdk
from edgec.runtimes.tensorrt_shapes import corner_shapes, profile_shapes
from edgec.runtimes.tensorrt_support import check, ensure_supported, findings

__all__ = [
    "NAME",
    "PRECISIONS",
    "available",
    "check",
    "emit",
    "ensure_supported",
    "findings",
    "tensorrt_graph",
]

MIN_COSINE = {"fp16": 0.999, "w8a8": 0.99, "w4a16": 0.99}


def available() -> tuple[bool, str]:
    """Always usable (the ONNX and the build script need no SDK); says what builds here."""
    sdk = find_sdk()
    if sdk is None:
        return True, f"no TensorRT importable: ONNX + build script only, no gate ({INSTALL_HINT})"
    return True, sdk.describe()


def tensorrt_graph(model: ir.Model, precision: str, device: object = None):
    """(TensorRT-ready copy of `model`, Realisation, QDQ rewrite stats)."""
    realisation = realise(precision, model, device)
    graph = ir.from_proto(ir.to_proto(model))
    stats = to_tensorrt_form(graph)
    raise_opset(graph, needed_opset(graph))
    if realisation.realised != "fp32":
        graph = to_float16(graph)
    return graph, realisation, stats


def emit(
    model: ir.Model,
    out_dir: Path,
    *,
    name: str,
    precision: str = "fp32",
    device: object = None,
    ort_format: bool = False,
    max_batch: int = 8,
    dim_ranges: Mapping[str, Sequence[int]] | None = None,
    timing_cache: Path | None = None,
    example_inputs: Mapping[str, np.ndarray] | None = None,
) -> Artifact:
    """Write the TensorRT-ready ONNX, gate it, build the engine where possible, write the script.

    The caller's model is not modified. `max_batch` bounds the optimisation profile of a
    dynamic batch dimension; `dim_ranges` ({dim name: (min, opt, max)}) overrides the ranges
    the model records for its other symbolic dimensions. `example_inputs` (input name → array)
    are what the emitted graph is checked on when given — inputs of the kind the graph meets
    (a quantized graph's ranges fit those, not seeded noise) — else seeded normal feeds.
    """
    if ort_format:
        raise UserError("--ort-format is for ONNX Runtime targets", "drop it for TensorRT targets")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    graph, realisation, rewrite = tensorrt_graph(model, precision, device)
    ensure_supported(graph, device)
    shapes, dims = profile_shapes(graph, max_batch, dim_ranges)
    proto, _ = model_proto(graph)
    onnx_path = out_dir / f"{name}.onnx"
    extra = write_onnx(proto, onnx_path)
    fidelity = _fidelity(model, onnx_path, realisation.realised, shapes, example_inputs)
    device_name = getattr(device, "name", "TensorRT")
    engine_path = out_dir / f"{name}.plan"
    gate, engine = _gate_and_engine(onnx_path, shapes, timing_cache)
    notices = list(realisation.notices)
    if engine is None:
        notices.append(
            f"no engine was built here ({_why_no_engine(gate)}); "
            f"run {script_name(name)} (beside {onnx_path.name}) on the {device_name} to build "
            f"{engine_path.name}"
        )
    else:
        engine_path.write_bytes(engine)
        extra.append(engine_path)
    script = write_build_script(
        out_dir,
        name=name,
        precision=realisation.realised,
        device=device_name,
        shapes=shapes,
        dims=dims,
    )
    found = findings(graph, device)
    details: dict[str, Any] = {
        "format": "onnx (TensorRT-ready, strongly typed)",
        "opset": graph.opset_imports.get(""),
        "nodes": len(proto.graph.node),
        "precision": {
            "requested": realisation.requested,
            "realised": realisation.realised,
            "layers": census(graph),
            "qdq_rewrite": rewrite,
        },
        "fidelity_vs_given_graph": fidelity,
        "gate": gate,
        "engine": {"built": True, "path": engine_path.name}
        if engine is not None
        else {"built": False, "reason": _why_no_engine(gate), "build_script": script.name},
        "optimization_profile": {k: [list(d) for d in v] for k, v in shapes.items()},
        "dynamic_dims": dims,
        "slow": found["slow"],
        "dla_fallback": found["dla_fallback"],
        "notices": notices,
    }
    artifact_path = engine_path if engine is not None else onnx_path
    files = [p for p in (onnx_path, *extra, script) if p != artifact_path]
    return Artifact(artifact_path, NAME, realisation.realised, files, details)


def _gate_and_engine(onnx_path: Path, shapes, timing_cache: Path | None):
    """(gate record, engine bytes for the target or None); a rejected graph is a UserError."""
    sdk = find_sdk()
    if sdk is None:
        return {"passed": None, "reason": f"no TensorRT importable ({INSTALL_HINT})"}, None
    cache = timing_cache or _default_timing_cache(sdk.version)
    result = build(sdk, onnx_path, shapes=shapes, timing_cache=cache)
    if not result.ok:
        raise UserError(
            f"{result.sdk} rejects the TensorRT graph at {result.stage}:\n  "
            + "\n  ".join(result.errors[:8]),
            "this is a gap in edgec's TensorRT rewrite: report it with the model; meanwhile "
            "choose another precision or target",
        )
    return result.to_dict(), result.engine if sdk.builds_target_engines else None


def _why_no_engine(gate: dict[str, Any]) -> str:
    if gate.get("passed") is None:
        return gate["reason"]
    return (
        "the TensorRT-RTX gate passed, but its engines are for RTX GPUs, not this target, "
        "and full TensorRT with a GPU is not present here"
    )


def _default_timing_cache(version: str) -> Path:
    root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return root / "edgec" / f"tensorrt-{version}.timing.cache"


def _fidelity(
    given: ir.Model, onnx_path: Path, realised: str, shapes, example_inputs=None
) -> dict[str, Any]:
    """ORT outputs of the emitted file vs the graph it came from, on `example_inputs` (else
    seeded inputs) at each distinct corner (opt, min, max) of the optimisation profile; the
    opt corner's record."""
    with tempfile.TemporaryDirectory(prefix="edgec-trt-") as scratch:
        source = Path(scratch) / "given.onnx"
        write_onnx(model_proto(given)[0], source)
        reference_runner = load_ort(source, optimization="disabled")
        actual_runner = load_ort(onnx_path, optimization="disabled")
        results = []
        for corner in corner_shapes(shapes):
            feeds = _feeds_at(example_inputs or reference_runner.example_feeds(seed=0), corner)
            reference, actual = reference_runner.run(feeds), actual_runner.run(feeds)
            if realised == "fp32":
                result = compare_outputs(reference, actual, DEFAULT_BOUND)
            else:
                result = compare_outputs(reference, actual, None, min_cosine=MIN_COSINE[realised])
            if not result.passed:
                raise UserError(
                    f"the TensorRT graph ({realised}) differs from the graph it was made from "
                    f"(inputs {corner or 'as declared'}): " + "; ".join(result.failures()),
                    "report the model; meanwhile choose fp32",
                )
            results.append(result)
    record = results[0].to_dict()
    record["inputs"] = (
        "the compile's example inputs"
        if example_inputs
        else "seeded standard-normal feeds (seed 0)"
    ) + ", ONNX Runtime, optimizations off"
    if len(results) > 1:
        record["profile_corners_checked"] = len(results)
    return record


def _feeds_at(feeds: Mapping[str, np.ndarray], shapes: dict[str, tuple[int, ...]]):
    """`feeds` with each input named in `shapes` resized to that shape (its values repeated)."""
    return {k: np.resize(v, shapes[k]) if k in shapes else v for k, v in feeds.items()}
