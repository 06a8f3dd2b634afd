"""Which kernels leave the accelerator, from the device profile's list of known fallbacks.

A profile's `[[fallbacks]]` entry names the ONNX ops involved (`ops`), what happens (`effect`)
and, when it only happens at some precisions, which (`precisions`). For the kernels of a graph:

* **certain**: effect "runs on CPU", its ops occur in the kernel, and the estimate's precision is
  one it names (or it names none) → the kernel is placed on the CPU in the estimate, and the
  two transfers and the partition switch are charged;
* **possible**: another "runs on …" effect (e.g. "runs on CPU/GPU": reported for some models,
  not all) → listed with what it would cost, not added to the total;
* **conversion**: an effect that says conversion or execution fails → listed as a warning.

Entries without `ops` describe whole-model conditions the graph alone cannot decide; they are
listed only in the profile.
"""

from __future__ import annotations

import dataclasses

from edgec.cost_model.kernels import Kernel
from edgec.device_profile import DeviceProfile, Fallback

__all__ = ["FallbackMatch", "match_fallbacks"]


@dataclasses.dataclass(frozen=True)
class FallbackMatch:
    """One profile fallback entry that applies to some kernels of this graph."""

    entry: Fallback
    kind: str  # "certain" | "possible" | "conversion"
    kernels: tuple[int, ...]


def match_fallbacks(
    device: DeviceProfile, kernels: list[Kernel], precision: str
) -> list[FallbackMatch]:
    matches = []
    for entry in device.fallbacks:
        if not entry.ops or (entry.precisions and precision not in entry.precisions):
            continue
        hit = tuple(i for i, k in enumerate(kernels) if set(k.op_types) & set(entry.ops))
        if not hit:
            continue
        effect = entry.effect.lower()
        if effect == "runs on cpu":
            kind = "certain"
        elif effect.startswith("runs on"):
            kind = "possible"
        elif "fail" in effect:
            kind = "conversion"
        else:
            continue  # e.g. "runs at higher precision": not a placement question
        matches.append(FallbackMatch(entry, kind, hit))
    return matches
