"""`edgec profile DIR`: re-measure the artifact of a finished compile on this host."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from edgec.errors import UserError
from edgec.preprocess import Preprocessing


@dataclasses.dataclass
class OutputDir:
    """What `edgec profile` and `edgec eval` read from a compile's output directory."""

    manifest: dict[str, Any]
    artifact: Path
    model_input: dict[str, Any]
    preprocessing: Preprocessing


def read_output_dir(directory: Path) -> OutputDir:
    """The manifest and ONNX Runtime artifact of `directory`; a `UserError` if not usable."""
    manifest_path = directory / "manifest.json"
    if not manifest_path.is_file():
        raise UserError(
            f"{directory} has no manifest.json", "point at an output directory of `edgec compile`"
        )
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        artifact = directory / manifest["artifact"]["path"]
        model_input = manifest["model"]["inputs"][0]
        preprocessing = Preprocessing.from_dict(manifest["model"]["preprocessing"])
        runtime_name = manifest["artifact"]["runtime"]
    except (json.JSONDecodeError, KeyError, IndexError, TypeError) as exc:
        raise UserError(f"{manifest_path} is not an edgec manifest: {exc!r}") from None
    if runtime_name != "onnxruntime":
        raise UserError(f"running {runtime_name} artifacts on this host is not possible")
    if not artifact.is_file():
        raise UserError(f"artifact {artifact} listed in the manifest is missing")
    return OutputDir(manifest, artifact, model_input, preprocessing)


def profile_directory(directory: Path, threads: int | None, runs: int) -> dict[str, Any]:
    """Latency (shared protocol) and per-op breakdown of `directory`'s artifact."""
    out = read_output_dir(directory)
    manifest, artifact, model_input = out.manifest, out.artifact, out.model_input
    preprocessing = out.preprocessing
    if runs < 1 or (threads is not None and threads < 1):
        raise UserError("--runs and --threads must be at least 1")
    from edgec.runtimes import ort
    from edgec.runtimes.measure import measure

    threads = threads or manifest.get("latency", {}).get("threads") or 1
    feeds = {model_input["name"]: preprocessing.synthetic_inputs(1)}
    runner = ort.load(artifact, threads=threads)
    stats = measure(lambda: runner.run(feeds), runs=runs, threads=threads)
    per_op = ort.profile_ops(artifact, feeds, threads=threads, runs=20)
    data = {"artifact": str(artifact), **stats.to_dict(), "per_op": per_op}
    text = [
        f"{artifact}: p50 {stats.p50_ms:.3f} ms, p90 {stats.p90_ms:.3f} ms, "
        f"p99 {stats.p99_ms:.3f} ms ({stats.runs} runs, {threads} thread(s))",
        *_per_op_lines(per_op),
    ]
    return {"text": "\n".join(text), **data}


def tensorrt_profile(directory: Path, profile: Path) -> dict[str, Any]:
    """`edgec profile DIR --tensorrt-profile P`: per-layer times measured on the device by
    trtexec (`runtimes/tensorrt_profile.py`), mapped onto DIR's TensorRT-ready graph."""
    from edgec.runtimes.tensorrt_profile import read_profile

    manifest_path = directory / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        artifact = directory / manifest["artifact"]["path"]
        runtime_name = manifest["artifact"]["runtime"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise UserError(
            f"{directory} is not an `edgec compile` output: {exc!r}",
            "point at the output directory of a TensorRT compile",
        ) from None
    if runtime_name != "tensorrt":
        raise UserError(
            f"{directory} holds a {runtime_name} artifact, not a TensorRT one",
            "--tensorrt-profile goes with a --target jetson-*/nvidia-* compile",
        )
    result = read_profile(profile, artifact.with_suffix(".onnx"))
    text = [
        f"{profile}: {result['total_ms']:.3f} ms per inference on the device (sum of "
        f"{result['layers']} layer averages over {result['iterations']} iterations, trtexec)",
        *_per_op_lines(result["per_op"]),
    ]
    return {"text": "\n".join(text), "artifact": str(artifact), **result}


def _per_op_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The ten slowest op types: time per inference and share."""
    return [
        f"  {op['op_type']:<24} {op['us_per_run'] / 1000:.3f} ms  {op['share']:.1%}"
        for op in rows[:10]
    ]
