"""Compile a model that deploys as several graphs (EfficientTAM): each graph on its own.

A video segmenter is not one function: its image encoder, prompt + mask decoder, memory
encoder and memory attention run at different times, joined by a memory bank in app code.
`compile_graphs` takes the model's `GraphSpec`s (module, named example inputs, dynamic dims)
and for every graph does what a single-graph compile does —

    export → verify vs PyTorch → the target's passes → [fp16|w8a8|w4a8] → verify again → emit
    → latency

— with the graph's own example inputs, for any backend (`runtime.emit`). W8A8 and W4A8 need
samples of every graph's inputs: the `--calib` frames are tracked as a clip in PyTorch and
each graph's feeds recorded (`models.efficienttam.calibration`); each graph is calibrated on
its own and verified on its first recorded sample instead of the example inputs. The manifest's
`graphs[]` holds one record per graph (the fields a single-graph manifest has: export,
fidelity, passes, graph, artifact, latency), `connections` says which output feeds which
input, and `latency.per_frame_ms` adds up the graphs a tracked frame runs.

What a backend's `emit` gets beyond the common contract, when its signature declares it:
`example_inputs` (the graph's named arrays it was verified on — its example inputs, or its
first calibration sample when quantized: Core ML and TensorRT check their files on them),
and `split_heads` (the pipeline split attention heads: Core ML holds tensors to rank ≤ 4);
dynamic dims' ranges are in the model's metadata (`exporters.efficienttam`). A backend
whose module says `DYNAMIC_SHAPES = False` (Core ML, built here with fixed shapes) gets each
graph exported at its example size, and the manifest says which dims were fixed where.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx_ir as ir

from edgec.config import QUANTIZED, CompileConfig
from edgec.device_profile import DeviceProfile
from edgec.errors import UserError
from edgec.graph_stats import graph_summary
from edgec.progress import Progress
from edgec.verification import GraphChecker, refuse_nan

# The graphs one tracked (not prompted) frame runs, in order.
PER_FRAME = ("image_encoder", "memory_attention", "prompt_mask_decoder", "memory_encoder")


def graph_specs(module) -> list | None:
    """The `GraphSpec`s of a model that deploys as several graphs; None for one graph."""
    from edgec.models.efficienttam.model import EfficientTAM

    if not isinstance(module, EfficientTAM):
        return None
    from edgec.models.efficienttam.graphs import graph_specs as efficienttam_specs

    return efficienttam_specs(module.eval())


# Precisions a multi-graph compile realises: the float ones on every backend, the quantized
# ones where the graphs keep their dynamic dims (the calibration clip's memory banks vary in
# size, so a fixed-shape build could not take its samples).
GRAPH_PRECISIONS = ("fp32", "fp16", *QUANTIZED)


def check_supported(device: DeviceProfile, runtime, config: CompileConfig) -> None:
    """Say up front what a multi-graph model cannot be compiled to."""
    if config.precision not in GRAPH_PRECISIONS:
        raise UserError(
            f"multi-graph models (EfficientTAM) compile at {', '.join(GRAPH_PRECISIONS)} so "
            f"far; {device.name} was asked for {config.precision}",
            "use --precision w8a8 (or fp16, fp32)",
        )
    if config.precision in QUANTIZED and not getattr(runtime, "DYNAMIC_SHAPES", True):
        raise UserError(
            f"quantized multi-graph models need a runtime with dynamic shapes; {runtime.NAME} "
            f"packages are built with fixed shapes here ({device.name})",
            "use --precision fp16 for this target, or quantize for an ONNX Runtime or "
            "TensorRT target",
        )


@dataclasses.dataclass(frozen=True)
class GraphCompile:
    """What every graph of one multi-graph compile shares: the target, the options, where
    files go, and the composition root's hooks.

    `run_passes(model, checker, outputs)` runs the target's pipeline on one graph (the
    composition root passes its own, so --verify and --dump-ir behave as for one graph);
    `not_measured(model, precision)` is the latency record of a target that is not this
    machine (the cost model's estimate, or why there is none), None where it is measured.
    `timings` gains one entry per graph.
    """

    runtime: Any
    device: DeviceProfile
    config: CompileConfig
    run_passes: Callable[[ir.Model, GraphChecker, Any], list]
    not_measured: Callable[[ir.Model, str], dict[str, Any] | None]
    stage: Path
    scratch: Path
    progress: Progress
    timings: dict[str, float]


def compile_graphs(module, specs: list, job: GraphCompile) -> dict[str, Any]:
    """Compile every graph of `module` into `job.stage`; returns the manifest fields for them."""
    from edgec.exporters.efficienttam import CONNECTIONS, host_contract

    runtime, config = job.runtime, job.config
    if config.min_ios and runtime.NAME != "coreml":
        raise UserError("--min-ios applies to Core ML targets", "drop it, or target an iPhone")
    samples = _calibration_samples(module, specs, job) if config.precision in QUANTIZED else {}
    records = []
    for spec in specs:
        with job.progress.step(f"graph {spec.name}", job.timings, f"graph:{spec.name}"):
            record, model, artifact, feeds = _compile_graph(spec, job, samples.get(spec.name))
            latency = job.not_measured(model, artifact.precision)
            if latency is None:
                threads = config.threads or job.device.threads
                latency = _measure(runtime, artifact.path, feeds, threads, config.latency_runs)
        records.append({**record, "latency": latency})
    return {
        "graphs": records,
        "connections": [{"from": a, "to": b, "when": w} for a, b, w in CONNECTIONS],
        "host": host_contract(module),
        "latency": _per_frame(records),
    }


def _calibration_samples(module, specs: list, job: GraphCompile) -> dict[str, list]:
    """Each graph's calibration samples, recorded while tracking the `--calib` frames."""
    from edgec.models.efficienttam.calibration import graph_samples
    from edgec.preprocess import read_images

    config = job.config

    def on_frame(done: int, total: int) -> None:  # about ten lines however long the clip
        if done == total or done % max(1, total // 10) == 0:
            job.progress.detail(f"frame {done}/{total}")

    with job.progress.step("tracking the calibration frames", job.timings, "calibration_clip"):
        frames = read_images(Path(config.calib), config.calib_count, consecutive=True)
        return graph_samples(module, frames, [spec.name for spec in specs], on_frame)


def _compile_graph(spec, job: GraphCompile, samples: list | None):
    """One graph: (its manifest record without latency, the compiled model, artifact, the
    example feeds). `samples`: its calibration samples (quantized precisions)."""
    from edgec.exporters.efficienttam import export_graph, graph_record, torch_reference
    from edgec.quant_plan import QUANT_BOUNDS, quantize
    from edgec.sample_feeds import save_feeds

    runtime, device, config = job.runtime, job.device, job.config
    feeds = {name: tensor.numpy() for name, tensor in spec.inputs.items()}
    fixed = spec.dynamic and not getattr(runtime, "DYNAMIC_SHAPES", True)
    exported_spec = dataclasses.replace(spec, dynamic={}) if fixed else spec
    verified_on = {"kind": "example inputs", "source": "edgec seeded example inputs"}
    if samples:
        calib = job.scratch / f"calib_{spec.name}.npz"
        save_feeds(calib, samples)
        config = dataclasses.replace(config, calib=str(calib), calib_count=len(samples))
        verified_on = {"kind": "calibration clip", "source": f"sample 0 of {len(samples)}"}
    checker = GraphChecker(samples[0] if samples else feeds, job.scratch)
    model = export_graph(exported_spec)
    reference = dict(zip(spec.outputs, torch_reference(spec, checker.feeds), strict=True))
    refuse_nan(reference, f"graph {spec.name}: PyTorch's")
    exported, outputs = checker.check(
        reference, model, f"graph {spec.name}: the export differs from PyTorch", _HINT
    )
    before = graph_summary(model)
    passes = job.run_passes(model, checker, outputs)
    quantization, bounds = None, {}
    if config.precision != "fp32":  # after the target's passes
        quant_records, quantization = quantize(model, device, config, job.progress.detail)
        passes, bounds = passes + quant_records, QUANT_BOUNDS
    final, _ = checker.check(
        reference, model, f"graph {spec.name}: the passes changed the outputs", _HINT, **bounds
    )
    runtime.ensure_supported(model, device)
    options = {
        "example_inputs": checker.feeds,
        "split_heads": any(r.id == "attention::split_heads" for r in passes),
        **({"min_ios": config.min_ios} if config.min_ios else {}),
    }
    artifact = runtime.emit(
        model,
        job.stage,
        name=spec.name,
        precision=config.precision,
        device=device,
        **_declared(runtime.emit, options),
    )
    record = {
        **graph_record(exported_spec, model),
        **({"fixed_shapes": _fixed_record(spec, runtime)} if fixed else {}),
        "verification_inputs": verified_on,
        "fidelity": {"export_vs_pytorch": exported, "final_vs_pytorch": final},
        "passes": [vars(r) for r in passes],
        "graph": {"exported": before, "compiled": graph_summary(model)},
        "artifact": artifact.record(),
        **({"quantization": quantization} if quantization else {}),
    }
    return record, model, artifact, feeds


def _declared(emit, options: dict[str, Any]) -> dict[str, Any]:
    """The `options` that `emit`'s signature names (see the module docstring)."""
    import inspect

    parameters = inspect.signature(emit).parameters
    return {k: v for k, v in options.items() if k in parameters}


def _fixed_record(spec, runtime) -> dict[str, Any]:
    """Which dynamic dims a fixed-shape backend got at the example size, and why."""
    from edgec.exporters.efficienttam import dynamic_record

    return {
        "reason": f"{runtime.NAME} packages are built with fixed input shapes here; the "
        "dynamic dims are fixed at the example size",
        "dims": dynamic_record(spec),
        "shapes": {
            name: list(spec.inputs[name].shape) for name in spec.dynamic if name in spec.inputs
        },
    }


_HINT = "report this with the model name and image size; --dump-ir shows the graph"


def _measure(runtime, path: Path, feeds, threads: int, runs: int) -> dict[str, Any]:
    from edgec.runtimes.measure import measure

    runner = runtime.load(path, threads=threads)
    stats = measure(lambda: runner.run(feeds), runs=runs, threads=threads)
    return {
        "method": "measured",
        "where": "this host",
        "inputs": "the graph's example inputs",
        **stats.to_dict(),
    }


def _per_frame(records: list[dict[str, Any]]) -> dict[str, Any]:
    """A tracked frame's latency: the sum of the graphs it runs (medians, or estimates)."""
    by_name = {r["name"]: r["latency"] for r in records}
    methods = {by_name.get(name, {}).get("method") for name in PER_FRAME}
    if methods == {"measured"}:
        key, where = "p50_ms", {"where": "this host"}
    elif methods == {"estimated"}:
        key, where = "total_ms", {"device": by_name[PER_FRAME[0]].get("device")}
    else:
        return {"method": "none", "reason": "the graphs were not all measured or estimated"}
    per_graph = {name: by_name[name][key] for name in PER_FRAME}
    what = "medians" if key == "p50_ms" else "cost-model estimates"
    total = round(float(np.sum(list(per_graph.values()))), 3)
    if key == "total_ms":  # the estimate's own fields, added over the graphs (report charts)
        classes: dict[str, float] = {}
        for name in PER_FRAME:
            for op_class, ms in by_name[name].get("by_class_ms", {}).items():
                classes[op_class] = round(classes.get(op_class, 0.0) + ms, 4)
        where = {**where, "total_ms": total, "by_class_ms": classes}
    return {
        "method": methods.pop(),
        **where,
        "per_frame_ms": total,
        "per_frame_graphs": per_graph,
        "note": f"sum of per-graph {what} for a tracked frame, memory bank of the example "
        "inputs; host code between graphs not included",
    }
