"""`edgec inspect MODEL`: op histogram, parameters, MACs, and which targets can run it."""

from __future__ import annotations

from typing import Any

import onnx_ir as ir

from edgec.device_profile import all_profiles


def inspect_model(
    source: str, arch: str | None, num_classes: int | None, allow_pickle: bool
) -> dict[str, Any]:
    """Load (and export if needed) `source`; returns stats, target support and a text table."""
    from edgec.graph_stats import format_stats, graph_stats

    loaded, model = _load_graph(source, arch, num_classes, allow_pickle)
    stats = graph_stats(model)
    support = target_support(model)
    lines = [f"{loaded.name} ({loaded.kind})", *loaded.notes, format_stats(stats), "", "targets:"]
    for name, unsupported in support.items():
        verdict = ", ".join(sorted(unsupported))
        if not unsupported:
            verdict = "ok"
        elif not verdict.startswith("("):  # a note instead of a verdict is printed as it is
            verdict = "unsupported ops: " + verdict
        lines.append(f"  {name:<16} {verdict}")
    return {
        "text": "\n".join(lines),
        "model": loaded.name,
        "kind": loaded.kind,
        "notes": list(loaded.notes),
        "stats": stats.to_dict(),
        "targets": {name: sorted(ops) for name, ops in support.items()},
    }


def inspect_int_only(
    source: str, arch: str | None, num_classes: int | None, allow_pickle: bool
) -> dict[str, Any]:
    """`inspect --int-only`: is the graph integer-only between input quantize and output
    dequantize? (edgec.passes.integer.checker)"""
    from edgec.passes.integer.checker import check_int_only

    loaded, model = _load_graph(source, arch, num_classes, allow_pickle)
    report = check_int_only(model)
    return {
        "text": f"{loaded.name} ({loaded.kind})\n{report.text()}",
        "model": loaded.name,
        "kind": loaded.kind,
        "int_only": report.to_dict(),
    }


def _load_graph(source: str, arch: str | None, num_classes: int | None, allow_pickle: bool):
    """The loaded source and its ONNX graph (exported when the source is not ONNX)."""
    from edgec.exporters.load import load_model

    loaded = load_model(source, arch=arch, num_classes=num_classes, allow_pickle=allow_pickle)
    if loaded.module is None:
        return loaded, ir.load(loaded.onnx_path)
    from edgec.exporters.export import export_onnx
    from edgec.preprocess import Preprocessing

    shape = loaded.input_shape or Preprocessing.from_dict(loaded.preprocessing).input_size
    return loaded, export_onnx(loaded.module, tuple(shape))


def target_support(model: ir.Model) -> dict[str, dict[str, list[str]]]:
    """Per device profile, what its runtime's own `check` rejects in the graph that profile's
    pipeline makes of `model` ({} = supported): BatchNorm, for one, is folded away before any
    runtime sees it.

    A runtime that edgec cannot emit, or whose toolchain is not installed here, gets one
    entry that says so (`backend_for`'s message) instead of a verdict, followed by the verdict
    of the first of the device's other runtimes that edgec emits (`compile --runtime`)."""
    from edgec.errors import UserError
    from edgec.runtimes import backend_for

    compiled: dict[str, ir.Model] = {}

    def verdict(profile, backend) -> dict[str, list[str]]:
        if profile.pipeline not in compiled:
            compiled[profile.pipeline] = _after_pipeline(model, profile.pipeline)
        return backend.check(compiled[profile.pipeline], profile)

    support = {}
    for name, profile in all_profiles().items():
        try:
            backend = backend_for(profile.runtime, name)
        except UserError as unusable:
            support[name] = {f"({unusable.message}{_alternative(profile, verdict)})": []}
            continue
        support[name] = verdict(profile, backend)
    return support


def _alternative(profile, verdict) -> str:
    """'; with --runtime R: ok' (or R's unsupported ops) for the first of the device's other
    runtimes that edgec emits and that is usable here; '' when there is none."""
    from edgec.errors import UserError
    from edgec.runtime_choice import with_runtime
    from edgec.runtimes import BACKENDS, backend_for

    for runtime in profile.alt_runtimes:
        if runtime not in BACKENDS:
            continue
        try:
            backend = backend_for(runtime)
        except UserError:
            continue
        problems = verdict(with_runtime(profile, runtime), backend)
        found = "ok" if not problems else "unsupported ops: " + ", ".join(sorted(problems))
        return f"; with --runtime {runtime}: {found}"
    return ""


def _after_pipeline(model: ir.Model, name: str) -> ir.Model:
    """A copy of `model` after the named pipeline's passes."""
    import edgec.passes  # noqa: F401  (registers the passes)
    from edgec.pass_manager import run_passes
    from edgec.pipelines import pipeline

    copy = ir.from_proto(ir.to_proto(model))
    run_passes(copy, pipeline(name))
    return copy
