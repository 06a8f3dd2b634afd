"""The one place that wires loading → export → verification → passes → runtime → profile.

`compile_model(config)` returns the manifest (a dict) of the output directory it wrote. The
output directory is built in a hidden staging folder beside it and renamed into place only
when everything succeeded, so a failed compile leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx_ir as ir

from edgec import __version__
from edgec.artifact import file_entries
from edgec.config import CompileConfig
from edgec.device_profile import DeviceProfile, host_facts, load_device
from edgec.errors import UnsupportedOpsError, UserError, VerificationError
from edgec.preprocess import Preprocessing, read_images, synthetic_images
from edgec.progress import Progress
from edgec.toolchain import toolchain_versions

MANIFEST_VERSION = 1
# Manifest fields that legitimately differ between two compiles of the same input.
VOLATILE_FIELDS = ["created_by.host", "timings", "latency", "passes[].seconds", "files[report.md]"]


def compile_model(config: CompileConfig, progress: Progress | None = None) -> dict[str, Any]:
    """Compile `config.model` for `config.target`; returns the manifest that was written."""
    progress = progress or Progress(enabled=False)
    device = load_device(config.target)
    out_dir = Path(config.out) if config.out else default_out_dir(config.model, device)
    timings: dict[str, float] = {}
    # Staging first: an unwritable output fails in a second, not after a minute of export.
    with _staging(out_dir) as stage, tempfile.TemporaryDirectory(prefix="edgec-") as scratch:
        scratch_dir = Path(scratch)
        with progress.step("loading model", timings, "load"):
            loaded = _load(config)
        preprocessing = Preprocessing.from_dict(loaded.preprocessing)
        with progress.step("exporting to ONNX", timings, "export"):
            model, export_info = _export(loaded, preprocessing, config)
        runtime = _runtime(device)
        _check_supported(runtime, model, device)  # before anything runs the graph
        feeds, inputs_info = _verification_inputs(model, preprocessing, config)
        with progress.step("verifying ONNX against PyTorch", timings, "verify_export"):
            reference = _reference_outputs(loaded, model, feeds, scratch_dir)
            export_fidelity = _compare(model, feeds, reference, scratch_dir, "export")
        graph_before = _graph_stats(model)
        with progress.step("running passes", timings, "passes"):
            records = _run_pipeline(model, device, config, feeds, scratch_dir, progress)
        with progress.step("verifying compiled graph against PyTorch", timings, "verify_final"):
            final_fidelity = _compare(model, feeds, reference, scratch_dir, "compiled graph")
        _check_supported(runtime, model, device)
        with progress.step(f"emitting {runtime.NAME} artifact", timings, "emit"):
            artifact = runtime.emit(
                model, stage, name=_slug(loaded.name), ort_format=config.ort_format
            )
        latency = None
        if config.measure:
            with progress.step("measuring latency on this host", timings, "measure"):
                latency = _measure(runtime, artifact.path, feeds, device, config)
        manifest = {
            "manifest_version": MANIFEST_VERSION,
            "created_by": {"edgec": __version__, "host": host_facts()},
            "input": _input_record(loaded, config),
            "model": _model_record(model, preprocessing, loaded),
            "target": device.to_dict(),
            "precision": {"requested": config.precision, "realised": artifact.precision},
            "toolchain": toolchain_versions(),
            "export": export_info,
            "verification_inputs": inputs_info,
            "fidelity": {"export_vs_pytorch": export_fidelity, "final_vs_pytorch": final_fidelity},
            "passes": [vars(r) for r in records],
            "graph": {"exported": graph_before, "compiled": _graph_stats(model)},
            "artifact": {
                "runtime": artifact.runtime,
                "path": artifact.path.name,
                **artifact.details,
            },
            "latency": latency,
            "timings": {k: round(v, 3) for k, v in timings.items()},
            "volatile_fields": VOLATILE_FIELDS,
        }
        _write_outputs(stage, manifest)
    return manifest


def default_out_dir(model: str, device: DeviceProfile) -> Path:
    """`out/<model>.<target>`, the model being a name or a file's stem."""
    return Path("out") / f"{_slug(Path(model).stem if Path(model).suffix else model)}.{device.name}"


def _load(config: CompileConfig):
    from edgec.exporters.load import load_model

    return load_model(
        config.model,
        arch=config.arch,
        num_classes=config.num_classes,
        allow_pickle=config.allow_pickle,
    )


def _export(loaded, preprocessing: Preprocessing, config: CompileConfig):
    metadata = {
        "edgec.preprocessing": preprocessing.to_json(),
        "edgec.model": loaded.name,
        "edgec.num_classes": str(loaded.num_classes) if loaded.num_classes else "",
        "edgec.input_layout": preprocessing.layout,
    }
    if loaded.module is None:
        model = ir.load(loaded.onnx_path)
        for key, value in metadata.items():
            model.metadata_props.setdefault(key, value)
        return model, {"exporter": "none (ONNX input)", "opset": model.opset_imports.get("")}
    from edgec.exporters.export import OPSET, export_onnx

    shape = tuple(loaded.input_shape or preprocessing.input_size)
    start = time.perf_counter()
    model = export_onnx(loaded.module, shape, dynamic_batch=config.dynamic_batch, metadata=metadata)
    return model, {
        "exporter": "torch.onnx.export(dynamo=True)",
        "opset": OPSET,
        "dynamic_batch": config.dynamic_batch,
        "seconds": round(time.perf_counter() - start, 2),
    }


def _verification_inputs(model: ir.Model, preprocessing: Preprocessing, config: CompileConfig):
    graph_input = model.graph.inputs[0]
    dims = [d if isinstance(d, int) else None for d in graph_input.shape]
    if len(dims) != 4 or None in dims[1:]:
        raise UserError(
            f"model input {graph_input.name} has shape {list(graph_input.shape)}; "
            "edgec compiles single-input N×C×H×W image models with a static C, H, W",
            "export the model with a fixed image size",
        )
    channels, height, width = dims[1:]
    if (channels, height, width) != tuple(preprocessing.input_size):
        preprocessing = Preprocessing.from_dict(
            {**preprocessing.to_dict(), "input_size": [channels, height, width]}
        )
    count = config.verify_count
    if config.verify_images:
        images = read_images(Path(config.verify_images), limit=count)
        info = {"source": str(config.verify_images), "count": len(images), "kind": "user images"}
    else:
        images = synthetic_images(count, height, width)
        info = {"source": "edgec synthetic images (seed 0)", "count": count, "kind": "synthetic"}
    return {graph_input.name: preprocessing.apply(images)}, info


def _reference_outputs(loaded, model: ir.Model, feeds, scratch: Path) -> dict[str, np.ndarray]:
    names = [v.name for v in model.graph.outputs]
    (batch,) = feeds.values()
    if loaded.module is None:  # ONNX input: the exported graph itself is the reference
        return _run_onnx(model, feeds, scratch, "reference")
    from edgec.exporters.export import torch_outputs

    outputs = [torch_outputs(loaded.module, batch[i : i + 1]) for i in range(len(batch))]
    return {name: np.concatenate([o[k] for o in outputs]) for k, name in enumerate(names)}


def _run_onnx(model: ir.Model, feeds, scratch: Path, tag: str) -> dict[str, np.ndarray]:
    """Run `model` in ONNX Runtime with all optimizations off, one sample at a time."""
    from edgec.runtimes import ort

    path = scratch / f"{tag}.onnx"
    ir.save(model, path)
    runner = ort.load(path, threads=1, optimization="disabled")
    ((name, batch),) = feeds.items()
    results = [runner.run({name: batch[i : i + 1]}) for i in range(len(batch))]
    return {k: np.concatenate([r[k] for r in results]) for k in results[0]}


_VERIFY_HINTS = {
    "export": "the exporter mis-translated an op: export the model to .onnx yourself (e.g. "
    "with dynamo=False) and compile that file, or report the model",
    "compiled graph": "rerun with --verify --dump-ir DIR to find the pass that changed the outputs",
}


def _compare(model: ir.Model, feeds, reference, scratch: Path, what: str) -> dict[str, Any]:
    from edgec.runtimes.compare import compare_outputs

    result = compare_outputs(reference, _run_onnx(model, feeds, scratch, "check"))
    if not result.passed:
        raise VerificationError(
            f"the {what} does not compute what PyTorch computes:\n  "
            + "\n  ".join(result.failures()),
            _VERIFY_HINTS[what],
        )
    return result.to_dict()


def _run_pipeline(model, device: DeviceProfile, config: CompileConfig, feeds, scratch, progress):
    import edgec.passes  # noqa: F401  (registers every pass)
    from edgec.pass_manager import run_passes
    from edgec.pipelines import pipeline

    pass_ids = pipeline(config.pipeline or device.pipeline)
    verifier: Callable | None = None
    if config.verify:
        previous = {"outputs": _run_onnx(model, feeds, scratch, "stage")}

        def verifier(current: ir.Model, pass_id: str) -> dict[str, Any]:
            from edgec.runtimes.compare import compare_outputs

            outputs = _run_onnx(current, feeds, scratch, "stage")
            result = compare_outputs(previous["outputs"], outputs)
            if not result.passed:
                raise VerificationError(
                    f"pass {pass_id} changed the outputs beyond the float bound:\n  "
                    + "\n  ".join(result.failures()),
                    "skip it with --pipeline or report the model; --dump-ir shows the graph",
                )
            previous["outputs"] = outputs
            return result.to_dict()

    return run_passes(
        model,
        pass_ids,
        options=config.passes,
        verifier=verifier,
        dump_dir=Path(config.dump_ir) if config.dump_ir else None,
        on_pass=lambda pass_id: progress.detail(pass_id),
    )


def _runtime(device: DeviceProfile):
    if device.runtime != "onnxruntime":
        raise UserError(
            f"target {device.name} wants runtime {device.runtime}, which edgec cannot emit yet",
            "use --target host",
        )
    from edgec.runtimes import ort

    ok, reason = ort.available()
    if not ok:
        raise UserError(f"ONNX Runtime is not usable: {reason}", "pip install onnxruntime")
    return ort


def _check_supported(runtime, model: ir.Model, device: DeviceProfile) -> None:
    unsupported = runtime.check(model, device)
    if unsupported:
        raise UnsupportedOpsError(
            f"{runtime.NAME} on {device.name}",
            unsupported,
            "rewrite or remove these ops in the model, or choose another --target",
        )


def _measure(runtime, path: Path, feeds, device: DeviceProfile, config: CompileConfig):
    from edgec.runtimes.measure import measure

    threads = config.threads or device.threads
    runner = runtime.load(path, threads=threads)
    ((name, batch),) = feeds.items()
    sample = {name: batch[:1]}
    stats = measure(lambda: runner.run(sample), runs=config.latency_runs, threads=threads)
    per_op = runtime.profile_ops(path, sample, threads=threads, runs=20)
    for row in per_op:  # the five slowest nodes of each op type are enough for a manifest
        row["nodes"] = row["nodes"][:5]
    return {
        "method": "measured",
        "where": "this host",
        "batch": 1,
        "session_options": runtime.session_options_used(runner),
        **stats.to_dict(),
        "per_op": per_op,
    }


def _graph_stats(model: ir.Model) -> dict[str, Any]:
    """Graph summary for the manifest (`edgec inspect` shows the per-node detail)."""
    from edgec.graph_stats import graph_stats

    stats = graph_stats(model).to_dict()
    stats["macs"].pop("per_node", None)
    return stats


def _input_record(loaded, config: CompileConfig) -> dict[str, Any]:
    return {
        "source": config.model,
        "kind": loaded.kind,
        "sha256": loaded.source_sha256,
        "arch": config.arch,
        "num_classes": loaded.num_classes,
        "notes": list(loaded.notes),
    }


def _model_record(model: ir.Model, preprocessing: Preprocessing, loaded) -> dict[str, Any]:
    def describe(value: ir.Value) -> dict[str, Any]:
        shape = [d if isinstance(d, int) else str(d) for d in value.shape]
        return {"name": value.name, "dtype": str(value.dtype), "shape": shape}

    return {
        "name": loaded.name,
        "inputs": [describe(v) for v in model.graph.inputs],
        "outputs": [describe(v) for v in model.graph.outputs],
        "preprocessing": preprocessing.to_dict(),
        "num_classes": loaded.num_classes,
    }


def _write_outputs(stage: Path, manifest: dict[str, Any]) -> None:
    from edgec.report import render_report

    (stage / "report.md").write_text(render_report(manifest), encoding="utf-8")
    manifest["files"] = file_entries(stage)
    text = json.dumps(manifest, indent=2, sort_keys=False, default=str)
    (stage / "manifest.json").write_text(text + "\n", encoding="utf-8")


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "model"


@contextlib.contextmanager
def _staging(out_dir: Path) -> Iterator[Path]:
    """A hidden folder beside `out_dir`, renamed to it on success and removed on failure."""
    parent = out_dir.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=parent))
    except OSError as exc:
        raise UserError(
            f"cannot write the output directory {out_dir}: {exc.strerror or exc}",
            "choose a writable place with --out DIR",
        ) from None
    try:
        yield stage
        if out_dir.exists():
            old = parent / f".{out_dir.name}.old-{os.getpid()}"
            out_dir.rename(old)
            stage.rename(out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            stage.rename(out_dir)
        out_dir.chmod(0o755)  # mkdtemp made the staging folder private
    finally:
        if stage.exists():
            shutil.rmtree(stage, ignore_errors=True)
