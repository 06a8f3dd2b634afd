"""Where the Neural Engine will likely not run parts of a package: known constraints only.

Core ML decides placement on the device (Xcode's performance report and `MLComputePlan`
show it); nothing here can observe it on Linux. These notes are the documented constraints
the package is checked against, each with its source, so a user knows what to look at:

- fp32 compute: the Neural Engine computes in fp16 only, so an fp32 program runs on the CPU
  and GPU (coremltools' compute-precision guide).
- rank-5 tensors: Apple's Neural Engine transformer guidance keeps tensors 4-D
  (B, C, 1, S); rank-5 intermediates (e.g. DeiT's fused qkv split) are layout the Neural
  Engine handles badly (peers.md §3.8).
- per-block int4 weights: per-block scales help the GPU, the Neural Engine prefers
  per-channel scales or palettization (coremltools' quantization performance guide,
  peers.md §6.4).
- int8 activations: int8×int8 compute exists on the Neural Engine of A17 Pro / M4 and newer
  only; older chips dequantize to fp16 (peers.md §6.4).
"""

from __future__ import annotations

from typing import Any

_SOURCES = {
    "fp32": "coremltools docs: typed execution / compute precision (ANE is fp16-only)",
    "rank5": "Apple ML research, 'Deploying Transformers on the Apple Neural Engine' "
    "(4-D channels-first layout); shared/reference/peers.md §3.8",
    "block": "coremltools docs: opt-quantization-perf (per-block int4 targets the GPU); "
    "shared/reference/peers.md §6.4",
    "int8": "coremltools docs: opt-quantization-api (int8-int8 compute on A17 Pro / M4); "
    "shared/reference/peers.md §6.4",
}


def placement_notes(
    package: dict[str, Any], weights: list[dict[str, Any]], device: object = None
) -> list[dict[str, Any]]:
    """Known reasons parts of this package may leave the Neural Engine (empty: none known)."""
    notes = []
    if package.get("compute_precision") == "fp32":
        notes.append(_note("all ops", "fp32 program: the Neural Engine runs fp16 only", "fp32"))
    for op, count in package.get("rank5_ops", {}).items():
        notes.append(_note(f"{count} × {op}", "makes a rank-5 tensor", "rank5"))
    blocked = [w["weight"] for w in weights if w["granularity"].startswith("per-block")]
    if blocked:
        notes.append(_note(f"{len(blocked)} weights", "per-block int4 weights", "block"))
    if "quantize" in package.get("ops", {}):
        precisions = getattr(device, "precisions", None)
        if precisions is not None and "w8a8" not in precisions:
            name = getattr(device, "name", "this device")
            notes.append(
                _note("int8 activations", f"{name} has no int8×int8 Neural Engine path", "int8")
            )
    return notes


def _note(where: str, why: str, source: str) -> dict[str, Any]:
    return {"where": where, "why": why, "source": _SOURCES[source]}
