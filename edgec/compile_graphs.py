"""Compile a model that deploys as several graphs (EfficientTAM): each graph on its own.

A video segmenter is not one function: its image encoder, prompt + mask decoder, memory
encoder and memory attention run at different times, joined by a memory bank in app code.
`compile_graphs` takes the model's `GraphSpec`s (module, named example inputs, dynamic dims)
and for every graph does what a single-graph compile does —

    export → verify vs PyTorch → the target's passes → verify again → emit → measure

— with the graph's own example inputs. The manifest's `graphs[]` holds one record per graph
(the fields a single-graph manifest has: export, fidelity, passes, graph, artifact, latency),
`connections` says which output feeds which input, and `latency.per_frame_ms` adds up the
graphs a tracked frame runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgec.config import CompileConfig
from edgec.device_profile import DeviceProfile
from edgec.errors import UserError
from edgec.graph_stats import describe_value, graph_summary
from edgec.progress import Progress
from edgec.verification import GraphChecker

# The graphs one tracked (not prompted) frame runs, in order.
PER_FRAME = ("image_encoder", "memory_attention", "prompt_mask_decoder", "memory_encoder")


def graph_specs(module) -> list | None:
    """The `GraphSpec`s of a model that deploys as several graphs; None for one graph."""
    from edgec.models.efficienttam.model import EfficientTAM

    if not isinstance(module, EfficientTAM):
        return None
    from edgec.models.efficienttam.graphs import graph_specs as efficienttam_specs

    return efficienttam_specs(module.eval())


def check_supported(device: DeviceProfile, config: CompileConfig) -> None:
    """Multi-graph models compile to float ONNX Runtime artifacts so far; say so up front."""
    if device.runtime != "onnxruntime" or config.precision != "fp32":
        raise UserError(
            f"multi-graph models (EfficientTAM) compile for ONNX Runtime at fp32 so far; "
            f"{device.name} wants {device.runtime} at {config.precision}",
            "use --target host (or another ONNX Runtime target) and --precision fp32",
        )


def compile_graphs(
    module,
    specs: list,
    runtime,
    device: DeviceProfile,
    config: CompileConfig,
    run_passes,
    stage: Path,
    scratch: Path,
    progress: Progress,
    timings: dict[str, float],
) -> dict[str, Any]:
    """Compile every graph of `module` into `stage`; returns the manifest fields for them.

    `run_passes(model, checker, outputs)` runs the target's pipeline on one graph (the
    composition root passes its own, so --verify and --dump-ir behave as for one graph).
    """
    from edgec.exporters.efficienttam import (
        CONNECTIONS,
        dynamic_record,
        export_graph,
        host_contract,
        torch_reference,
    )

    records = []
    for spec in specs:
        feeds = {name: tensor.numpy() for name, tensor in spec.inputs.items()}
        checker = GraphChecker(feeds, scratch)
        with progress.step(f"graph {spec.name}", timings, f"graph:{spec.name}"):
            model = export_graph(spec)
            reference = dict(zip(spec.outputs, torch_reference(spec, feeds), strict=True))
            exported, outputs = checker.check(
                reference, model, f"graph {spec.name}: the export differs from PyTorch", _HINT
            )
            before = graph_summary(model)
            passes = run_passes(model, checker, outputs)
            final, _ = checker.check(
                reference, model, f"graph {spec.name}: the passes changed the outputs", _HINT
            )
            artifact = runtime.emit(
                model, stage, name=spec.name, precision=config.precision, device=device
            )
            latency = _measure(runtime, artifact.path, feeds, device, config)
        records.append(
            {
                "name": spec.name,
                "used_when": spec.used_when,
                "inputs": [describe_value(v) for v in model.graph.inputs],
                "outputs": [describe_value(v) for v in model.graph.outputs],
                "dynamic": dynamic_record(spec),
                "fidelity": {"export_vs_pytorch": exported, "final_vs_pytorch": final},
                "passes": [vars(r) for r in passes],
                "graph": {"exported": before, "compiled": graph_summary(model)},
                "artifact": artifact.record(),
                "latency": latency,
            }
        )
    return {
        "graphs": records,
        "connections": [{"from": a, "to": b, "when": w} for a, b, w in CONNECTIONS],
        "host": host_contract(module),
        "latency": _per_frame(records),
    }


_HINT = "report this with the model name and image size; --dump-ir shows the graph"


def _measure(runtime, path: Path, feeds, device: DeviceProfile, config: CompileConfig):
    if not config.measure or device.latency != "measured":
        return {"method": "none", "reason": "not measured (--no-measure or not this machine)"}
    from edgec.runtimes.measure import measure

    threads = config.threads or device.threads
    runner = runtime.load(path, threads=threads)
    stats = measure(lambda: runner.run(feeds), runs=config.latency_runs, threads=threads)
    return {
        "method": "measured",
        "where": "this host",
        "inputs": "the graph's example inputs",
        **stats.to_dict(),
    }


def _per_frame(records: list[dict[str, Any]]) -> dict[str, Any]:
    """A tracked frame's latency: the sum of the medians of the graphs it runs."""
    by_name = {r["name"]: r["latency"] for r in records}
    if any(by_name.get(name, {}).get("method") != "measured" for name in PER_FRAME):
        return {"method": "none", "reason": "the graphs were not all measured"}
    medians = {name: by_name[name]["p50_ms"] for name in PER_FRAME}
    return {
        "method": "measured",
        "where": "this host",
        "per_frame_ms": round(float(np.sum(list(medians.values()))), 3),
        "per_frame_graphs": medians,
        "note": "sum of per-graph medians for a tracked frame, memory bank of the example "
        "inputs; host code between graphs not included",
    }
