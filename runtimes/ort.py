"""ONNX Runtime (CPU execution provider): check, emit, load/run, per-operator profile.

    ok, why = available()
    ops = check(model)                          # {op: [node names]}; {} when all can run
    art = emit(model, out_dir, name="deit", ort_format=True, save_optimized=True)
    runner = load(art, threads=1)               # OrtRunner
    outputs = runner.run({"input": x})
    rows = profile_ops(art.path, {"input": x})  # where the time goes, per op type and node

This module is the runtime contract; the work lives in `ort_support` (check,
ensure_supported, float16_fallbacks), `ort_proto` (the clean `.onnx`), `ort_format`
(`.optimized.onnx`, `.ort`), `ort_runner` (load, OrtRunner, session_options_used),
`ort_profile` (profile_ops) and `ort_session` (the lazy import and session options).

Files `emit` writes:

- `<name>.onnx`: the graph as given, minus per-node / per-value `metadata_props` and
  `doc_string`s (exporters leave stack traces and paths there); model-level metadata_props,
  where edgec keeps preprocessing, stay. Unnamed nodes get `<op_type>_<index>` names so
  errors and profiles can point at them. Nothing is reordered. Same model → same bytes.
- `<name>.optimized.onnx` (`save_optimized=True`): ORT's graph after `ORT_ENABLE_EXTENDED`,
  the highest level whose output is portable (the NCHWc layout pass of `ORT_ENABLE_ALL` ties
  a file to the CPU it was made on). Loads faster, since ORT has less left to do. Saved
  twice; `details["optimized_onnx"]["byte_stable"]` says whether the two agreed.
- `<name>.ort` + `<name>.required_operators.config` (`ort_format=True`): ORT's mobile
  flatbuffer format via `onnxruntime.tools.convert_onnx_models_to_ort`, "Fixed" style
  (optimised at ORT_ENABLE_ALL minus the NCHWc pass); the config lists the operators a
  reduced-operator ORT build needs (its absolute-path comment is made relative). ORT 1.32
  does not write the same `.ort` bytes twice for the same input (same graph, different
  flatbuffer layout), so `details["ort_format"]["byte_stable"]` is False.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnx_ir as ir

from edgec.artifact import Artifact
from edgec.errors import UserError
from edgec.runtimes.ort_format import convert_to_ort, write_optimized
from edgec.runtimes.ort_probe import probe_load
from edgec.runtimes.ort_profile import profile_ops
from edgec.runtimes.ort_proto import model_proto, write_onnx
from edgec.runtimes.ort_runner import OrtRunner, load, session_options_used
from edgec.runtimes.ort_session import NAME, OPTIMIZATION_LEVELS, import_ort
from edgec.runtimes.ort_support import check, ensure_supported, float16_fallbacks

__all__ = [
    "NAME",
    "OPTIMIZATION_LEVELS",
    "PRECISIONS",
    "OrtRunner",
    "available",
    "check",
    "emit",
    "ensure_supported",
    "float16_fallbacks",
    "load",
    "profile_ops",
    "session_options_used",
]

PRECISIONS = ("fp32", "fp16", "w8a8", "w4a8", "int-only")


def available() -> tuple[bool, str]:
    """Whether ONNX Runtime with its CPU execution provider can be used here, and why not."""
    try:
        ort = import_ort()
    except ImportError as e:
        return (
            False,
            f"onnxruntime is not installed ({e}); install it with `pip install onnxruntime`",
        )
    if "CPUExecutionProvider" not in ort.get_available_providers():
        return False, f"onnxruntime {ort.__version__} has no CPUExecutionProvider"
    return True, f"onnxruntime {ort.__version__} (CPUExecutionProvider)"


def emit(
    model: ir.Model,
    out_dir: Path,
    *,
    name: str,
    ort_format: bool = False,
    save_optimized: bool = False,
    precision: str = "fp32",
    device: object = None,
) -> Artifact:
    """Write `<name>.onnx` (and optionally `.optimized.onnx`, `.ort`) into `out_dir`.

    See the module docstring for what each file is. `precision` is recorded as given (it
    must be one of `PRECISIONS`); `device` is accepted for the common runtime contract.
    The caller's model is not modified.
    """
    if precision not in PRECISIONS:
        raise UserError(
            f"unknown precision {precision!r}", f"choose one of: {', '.join(PRECISIONS)}"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    proto, stripped = model_proto(model)
    onnx_path = out_dir / f"{name}.onnx"
    extra = write_onnx(proto, onnx_path)
    probe_load(onnx_path)  # a native crash in ORT's optimizers becomes a UserError here
    details: dict[str, Any] = {
        "format": "onnx",
        "onnxruntime": import_ort().__version__,
        "ir_version": proto.ir_version,
        "opset_imports": {o.domain or "ai.onnx": o.version for o in proto.opset_import},
        "nodes": len(proto.graph.node),
        "stripped": stripped,
    }
    if save_optimized:
        files, details["optimized_onnx"] = write_optimized(
            onnx_path, out_dir / f"{name}.optimized.onnx", external=bool(extra)
        )
        extra += files
    if ort_format:
        files, details["ort_format"] = convert_to_ort(onnx_path)
        extra += files
    return Artifact(onnx_path, NAME, precision, extra, details)
