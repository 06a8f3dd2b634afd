"""The one place that wires loading → export → verification → passes → runtime → profile.

`compile_model(config)` returns the manifest (a dict) of the output directory it wrote. The
output directory is built in a hidden staging folder beside it and renamed into place only
when everything succeeded, so a failed compile leaves nothing behind.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx_ir as ir

from edgec import __version__
from edgec.compile_graphs import graph_specs
from edgec.config import CompileConfig, default_precision
from edgec.device_profile import DeviceProfile, host_facts, load_device
from edgec.errors import UserError
from edgec.graph_stats import describe_value, graph_summary
from edgec.output_dir import default_out_dir, slug, staging, write_manifest_and_report
from edgec.preprocess import Preprocessing
from edgec.progress import Progress
from edgec.quant_plan import QUANT_BOUNDS, quantize
from edgec.report_data import device_estimates
from edgec.runtime_choice import with_runtime
from edgec.toolchain import toolchain_versions
from edgec.verification import (
    GraphChecker,
    ill_conditioned_notes,
    refuse_nan,
    verification_inputs,
)

MANIFEST_VERSION = 1
# Manifest fields that legitimately differ between two compiles of the same input.
VOLATILE_FIELDS = [
    "created_by.host",
    "timings",
    "latency",
    "device_estimates[].measured_ms",
    "device_estimates[].note",
    "passes[].seconds",
    "files[report.md]",
    "files[report.json]",
    "files[latency_by_op.png]",
    "files[latency_by_device.png]",
]


def compile_model(config: CompileConfig, progress: Progress | None = None) -> dict[str, Any]:
    """Compile `config.model` for `config.target`; returns the manifest that was written."""
    progress = progress or Progress(enabled=False)
    device = with_runtime(load_device(config.target), config.runtime)
    requested = config.precision
    if requested is None:
        config = dataclasses.replace(config, precision=default_precision(device.precisions))
    pass_ids = _pass_ids(device, config)  # an unknown pipeline or --explain fails before export
    runtime = _runtime(device)  # so does a runtime edgec cannot emit or that is not installed
    if config.min_ios and runtime.NAME != "coreml":
        raise UserError("--min-ios applies to Core ML targets", "drop it, or target an iPhone")
    out_dir = Path(config.out) if config.out else default_out_dir(config.model, device.name)
    if config.dump_ir:
        _writable_dump_dir(Path(config.dump_ir))
    timings: dict[str, float] = {}
    # Staging first: an unwritable output fails in a second, not after a minute of export.
    with staging(out_dir) as stage, tempfile.TemporaryDirectory(prefix="edgec-") as scratch:
        with progress.step("loading model", timings, "load"):
            loaded = _load(config)
        preprocessing = Preprocessing.from_dict(loaded.preprocessing)
        specs = graph_specs(loaded.module) if loaded.module is not None else None
        if specs is not None:  # EfficientTAM: several graphs, each compiled on its own
            manifest = {
                **_common_fields(loaded, device, config, requested),
                **_compile_multi_graph(
                    specs,
                    loaded,
                    device,
                    runtime,
                    config,
                    pass_ids,
                    stage,
                    scratch,
                    progress,
                    timings,
                ),
                "timings": {k: round(v, 3) for k, v in timings.items()},
                "volatile_fields": [
                    *VOLATILE_FIELDS,
                    "graphs[].latency",
                    "graphs[].passes[].seconds",
                ],
            }
            write_manifest_and_report(stage, manifest)
            return manifest
        with progress.step("exporting to ONNX", timings, "export"):
            model, export_info = _export(loaded, preprocessing, config)
        # Verification runs the graph in ONNX Runtime, so ORT must run it before anything
        # else; the target's runtime judges the graph the passes leave (below).
        _verifier_runtime().ensure_supported(model, device)
        feeds, inputs_info = verification_inputs(
            model, preprocessing, config.verify_images, config.verify_count, config.calib
        )
        checker = GraphChecker(feeds, Path(scratch))
        with progress.step("verifying ONNX against PyTorch", timings, "verify_export"):
            reference = _reference(loaded, model, checker)
            export_fidelity, exported_outputs = checker.check(
                reference, model, "the export differs from PyTorch", EXPORT_HINT
            )
        loaded.notes += ill_conditioned_notes(export_fidelity)
        graph_before = graph_summary(model)
        with progress.step("running passes", timings, "passes"):
            records = _run_pipeline(model, pass_ids, config, checker, exported_outputs, progress)
        quantization, bounds = None, {}
        if config.precision != "fp32":  # after the device's passes (docs/quantization.md)
            with progress.step(f"quantizing to {config.precision}", timings, "quantize"):
                quant_records, quantization = quantize(model, device, config, progress.detail)
            records, bounds = records + quant_records, QUANT_BOUNDS
        with progress.step("verifying compiled graph against PyTorch", timings, "verify_final"):
            final_fidelity, _ = checker.check(
                reference, model, "the compiled graph differs from PyTorch", PASSES_HINT, **bounds
            )
        runtime.ensure_supported(model, device)
        with progress.step(f"emitting {runtime.NAME} artifact", timings, "emit"):
            artifact = runtime.emit(
                model,
                stage,
                name=slug(loaded.name),
                precision=config.precision,
                device=device,
                ort_format=config.ort_format,
                **({"min_ios": config.min_ios} if config.min_ios else {}),
                **({"split_heads": True} if _split_heads(runtime, records) else {}),
                **_check_inputs(runtime, feeds),
            )
        latency = _not_measured(device, config, model, artifact.precision)
        if latency is None:
            with progress.step("measuring latency on this host", timings, "measure"):
                latency = _measure(runtime, artifact.path, feeds, device, config)
        estimates = []
        if config.measure:  # --no-measure skips every latency figure
            with progress.step("estimating latency on other devices", timings, "estimate"):
                estimates = device_estimates(
                    model, latency.get("p50_ms"), latency, artifact.precision, device
                )
        manifest = {
            **_common_fields(loaded, device, config, requested),
            "model": _model_record(model, preprocessing, loaded),
            "precision": {**_precision(device, config, requested), "realised": artifact.precision},
            "export": export_info,
            "verification_inputs": inputs_info,
            "fidelity": {"export_vs_pytorch": export_fidelity, "final_vs_pytorch": final_fidelity},
            "passes": [vars(r) for r in records],
            "graph": {"exported": graph_before, "compiled": graph_summary(model)},
            "artifact": artifact.record(),
            **({"quantization": quantization} if quantization else {}),
            "latency": latency,
            **({"device_estimates": estimates} if estimates else {}),
            "timings": {k: round(v, 3) for k, v in timings.items()},
            "volatile_fields": VOLATILE_FIELDS,
        }
        write_manifest_and_report(stage, manifest)
    return manifest


def _common_fields(loaded, device: DeviceProfile, config: CompileConfig, requested) -> dict:
    """Manifest fields every compile has, whatever it produced."""
    return {
        "manifest_version": MANIFEST_VERSION,
        "created_by": {"edgec": __version__, "host": host_facts()},
        "input": _input_record(loaded, config),
        "target": device.to_dict(),
        "precision": {**_precision(device, config, requested), "realised": config.precision},
        "toolchain": toolchain_versions(),
    }


def _precision(device: DeviceProfile, config: CompileConfig, requested) -> dict[str, str]:
    chosen_by = "--precision" if requested else f"{device.name}'s default"
    return {"requested": config.precision, "chosen_by": chosen_by}


def _compile_multi_graph(
    specs, loaded, device, runtime, config, pass_ids, stage, scratch, progress, timings
):
    """The manifest fields of a model deployed as several graphs (`edgec.compile_graphs`)."""
    from edgec.compile_graphs import GraphCompile, check_supported, compile_graphs

    check_supported(device, runtime, config)

    def passes(model: ir.Model, checker: GraphChecker, outputs) -> list:
        return _run_pipeline(model, pass_ids, config, checker, outputs, progress)

    def not_measured(model: ir.Model, precision: str):
        return _not_measured(device, config, model, precision)

    job = GraphCompile(
        runtime=runtime,
        device=device,
        config=config,
        run_passes=passes,
        not_measured=not_measured,
        stage=stage,
        scratch=Path(scratch),
        progress=progress,
        timings=timings,
    )
    fields = compile_graphs(loaded.module, specs, job)
    return {
        "model": {
            "name": loaded.name,
            "graphs": [g["name"] for g in fields["graphs"]],
            "preprocessing": loaded.preprocessing,
        },
        "export": {"exporter": "torch.onnx.export(dynamo=True), one graph per part"},
        **fields,
    }


def _load(config: CompileConfig):
    from edgec.exporters.load import load_model
    from edgec.preprocess_override import read_overrides

    overrides = read_overrides(config.preprocessing) if config.preprocessing else None
    return load_model(
        config.model,
        arch=config.arch,
        num_classes=config.num_classes,
        allow_pickle=config.allow_pickle,
        input_size=config.input_size,
        preprocessing=overrides,
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


EXPORT_HINT = (
    "the exporter mis-translated an op: export the model to .onnx yourself (e.g. with "
    "dynamo=False) and compile that file, or report the model"
)
PASSES_HINT = "rerun with --verify --dump-ir DIR to find the pass that changed the outputs"


def _writable_dump_dir(path: Path) -> None:
    """Create `--dump-ir`'s folder now: an unwritable one fails before a minute of export."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(
            f"cannot write --dump-ir {path}: {exc.strerror or exc}",
            "give a writable folder for the per-pass graphs",
        ) from None


def _reference(loaded, model: ir.Model, checker: GraphChecker):
    """PyTorch's outputs; for an ONNX input, the given graph's own outputs. NaN in them stops
    the compile: a broken model would otherwise match its broken artifact exactly."""
    if loaded.module is None:
        reference, source = checker.run(model), "the given ONNX graph's"
    else:
        names = [v.name for v in model.graph.outputs]
        reference, source = checker.torch_reference(loaded.module, names), "PyTorch's"
    refuse_nan(reference, source)
    return reference


def _pass_ids(device: DeviceProfile, config: CompileConfig) -> list[str]:
    """The passes this compile runs (the target's pipeline unless --pipeline names another)."""
    from edgec.pipelines import pipeline

    # int-only lowers the float graph after cleanup; the speed passes' ORT layouts do not lower.
    default = "cleanup" if config.precision == "int-only" else device.pipeline
    ids = pipeline(config.pipeline or default)
    for pass_id in config.explain:
        if pass_id not in ids:
            raise UserError(
                f"--explain {pass_id}: that pass is not in this compile's pipeline",
                f"passes that run: {', '.join(ids)}",
            )
    return ids


def _run_pipeline(model, pass_ids: list[str], config: CompileConfig, checker, outputs, progress):
    """Run the pipeline's passes; with --verify, check each changing pass against the last."""
    import edgec.passes  # noqa: F401  (registers every pass)
    from edgec.pass_manager import run_passes

    previous = {"outputs": outputs}

    def verify(current: ir.Model, pass_id: str) -> dict[str, Any]:
        result, previous["outputs"] = checker.check(
            previous["outputs"],
            current,
            f"pass {pass_id} changed the outputs",
            "skip it with --pipeline or report the model; --dump-ir shows the graph",
        )
        return result

    return run_passes(
        model,
        pass_ids,
        options={k: v for k, v in config.passes.items() if not k.startswith("quant::")},
        verifier=verify if config.verify else None,
        dump_dir=Path(config.dump_ir) if config.dump_ir else None,
        on_pass=progress.detail,
    )


def _split_heads(runtime, records) -> bool:
    """Core ML holds every tensor to rank ≤ 4 when the pipeline split attention heads."""
    return runtime.NAME == "coreml" and any(r.id == "attention::split_heads" for r in records)


def _check_inputs(runtime, feeds: dict[str, np.ndarray]) -> dict[str, Any]:
    """TensorRT checks the graph it writes on the first input the compile verified on (a
    quantized graph's ranges fit real inputs, not noise); Core ML checks an image package
    through its pixel input (runtimes/coreml_verify.py), so it keeps its own example."""
    if runtime.NAME != "tensorrt":
        return {}
    return {"example_inputs": {name: batch[:1] for name, batch in feeds.items()}}


def _runtime(device: DeviceProfile):
    from edgec.runtimes import backend_for

    return backend_for(device.runtime, device.name, device.alt_runtimes)


def _verifier_runtime():
    from edgec.runtimes import backend_for

    return backend_for("onnxruntime")


def _not_measured(
    device: DeviceProfile, config: CompileConfig, model: ir.Model, precision: str
) -> dict[str, Any] | None:
    """Latency of a target that is not this machine (the cost model's estimate, or why there is
    none), or None when it is measured here (host-like targets)."""
    if not config.measure:
        return {"method": "none", "reason": "skipped with --no-measure"}
    if device.latency == "measured":
        return None
    from edgec.cost_model.hardware import ELEMENT_BYTES
    from edgec.estimate import EstimateUnavailable, estimate

    try:
        known = precision if precision in ELEMENT_BYTES else None
        result = estimate(model, device, precision=known)
    except EstimateUnavailable as exc:
        return {"method": "none", "reason": f"{device.name} is not this machine; {exc.message}"}
    return result.to_dict()


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
    return {
        "name": loaded.name,
        "inputs": [describe_value(v) for v in model.graph.inputs],
        "outputs": [describe_value(v) for v in model.graph.outputs],
        "preprocessing": preprocessing.to_dict(),
        "num_classes": loaded.num_classes,
    }
