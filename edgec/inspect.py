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
        verdict = "ok" if not unsupported else "unsupported ops: " + ", ".join(sorted(unsupported))
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
    """Per device profile, the ops its runtime cannot run ({} = supported)."""
    from edgec.runtimes import ort

    support = {}
    for name, profile in all_profiles().items():
        if profile.runtime == "onnxruntime":
            support[name] = ort.check(model, profile)
        else:
            support[name] = {f"(runtime {profile.runtime} not available in edgec yet)": []}
    return support
