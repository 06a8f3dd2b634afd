"""The files ORT derives from an emitted `.onnx`: `.optimized.onnx` and `.ort`.

- `write_optimized`: ORT's graph after `ORT_ENABLE_EXTENDED`, the highest level whose
  output is portable (the NCHWc layout pass of `ORT_ENABLE_ALL` ties a file to the CPU it
  was made on). Saved twice, to report whether the bytes are stable.
- `convert_to_ort`: ORT's mobile flatbuffer format via
  `onnxruntime.tools.convert_onnx_models_to_ort` ("Fixed" style), plus the
  `.required_operators.config` a reduced-operator ORT build needs, with its absolute-path
  comment made relative. The tool is imported without pulling in torch.

Each returns `(files written, details for the artifact)`.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from edgec.artifact import sha256_file
from edgec.runtimes.ort_session import CPU, import_ort, session_options


def write_optimized(
    onnx_path: Path, opt_path: Path, *, external: bool
) -> tuple[list[Path], dict[str, Any]]:
    """Save ORT's `ORT_ENABLE_EXTENDED` graph of `onnx_path` as `opt_path`, then once more.

    `external`: write the weights to `<opt_path>.data` (needed past protobuf's 2 GiB cap).
    `byte_stable` in the details says whether the two saves gave the same bytes.
    """
    files = _save_once(onnx_path, opt_path, external=external)
    with tempfile.TemporaryDirectory(prefix="edgec-ort-") as tmp:  # a second save: same bytes?
        again = Path(tmp) / opt_path.name
        _save_once(onnx_path, again, external=external)
        stable = sha256_file(again) == sha256_file(opt_path)
    info = {
        "file": opt_path.name,
        "graph_optimization_level": "extended",
        "byte_stable": stable,
        "note": "ORT_ENABLE_EXTENDED output is portable across CPUs; ORT_ENABLE_ALL's is not",
    }
    return files, info


def _save_once(src: Path, dst: Path, *, external: bool) -> list[Path]:
    """One save of `src`'s ORT_ENABLE_EXTENDED graph to `dst`; returns the files written."""
    ort = import_ort()
    so = session_options(ort, threads=1, optimization="extended")
    so.optimized_model_filepath = str(dst)
    data = dst.with_name(dst.name + ".data")
    if external:
        data.unlink(missing_ok=True)
        so.add_session_config_entry(
            "session.optimized_model_external_initializers_file_name", data.name
        )
    ort.InferenceSession(str(src), so, providers=CPU)
    return [dst, data] if external else [dst]


def convert_to_ort(onnx_path: Path) -> tuple[list[Path], dict[str, Any]]:
    """Write `<name>.ort` and its operator config next to `onnx_path` with ORT's own tool.

    "Fixed" optimisation style, at the level the tool reads from
    `ORT_CONVERT_ONNX_MODELS_TO_ORT_OPTIMIZATION_LEVEL` ("all" by default; any other level
    adds `.<level>` to both file names).
    """
    level = os.environ.get("ORT_CONVERT_ONNX_MODELS_TO_ORT_OPTIMIZATION_LEVEL", "all")
    suffix = "" if level == "all" else f".{level}"
    ort_path = onnx_path.with_suffix(f"{suffix}.ort")
    config = onnx_path.with_suffix(f".required_operators{suffix}.config")
    _run_converter(onnx_path, onnx_path.parent)
    config.write_text(_relative_config(config.read_text()))
    info = {
        "file": ort_path.name,
        "optimization_style": "Fixed",
        "optimization_level": level,
        "required_operators": config.name,
        "byte_stable": False,
        "note": (
            f"onnxruntime {import_ort().__version__} lays out the .ort flatbuffer in "
            "memory-address order, so converting the same .onnx twice gives different bytes "
            "(same graph, same outputs); the .onnx is the reproducible artifact"
        ),
    }
    return [ort_path, config], info


def _run_converter(onnx_path: Path, out_dir: Path) -> None:
    convert, fixed = _import_converter()
    tool_log = logging.getLogger("ort_format_model.utils")
    level = tool_log.level
    tool_log.setLevel(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the tool prints progress
            convert(onnx_path, output_dir=out_dir, optimization_styles=[fixed])
    finally:
        tool_log.setLevel(level)


def _import_converter():
    """ORT's converter, imported without its side effects.

    `onnxruntime/tools/__init__.py` imports torch whenever torch is installed (about 6 s, and
    torch has no business in runtimes/), and its logger calls `logging.basicConfig`. Hide
    torch during the import (a `None` entry in sys.modules makes `find_spec` report it
    missing) and take back any root handler the import added.
    """
    root = logging.getLogger()
    handlers = list(root.handlers)
    hide_torch = "torch" not in sys.modules
    if hide_torch:
        sys.modules["torch"] = None  # type: ignore[assignment]
    try:
        from onnxruntime.tools.convert_onnx_models_to_ort import (
            OptimizationStyle,
            convert_onnx_models_to_ort,
        )
    finally:
        if hide_torch and sys.modules.get("torch", 0) is None:
            del sys.modules["torch"]
        for handler in root.handlers[:]:
            if handler not in handlers:
                root.removeHandler(handler)
    return convert_onnx_models_to_ort, OptimizationStyle.Fixed


def _relative_config(text: str) -> str:
    """The tool writes the absolute path of the .ort into a comment; keep only its name."""
    return re.sub(r"^# - (.+)$", lambda m: f"# - {Path(m[1]).name}", text, flags=re.MULTILINE)
