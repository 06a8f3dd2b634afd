"""`--runtime`: compile for one of the other runtimes a target's device runs (`alt_runtimes`).

A device profile names the runtime its device is usually deployed with (`runtime`) and the
others it runs (`alt_runtimes`): the Galaxy S24 wants TFLite (LiteRT) on its NPU, which edgec
cannot emit, and runs ONNX Runtime on its CPU, which it can. Choosing an alternative gives a
copy of the profile that wants that runtime; its precisions become those of the compute unit
the runtime runs on (ONNX Runtime → the CPU, `cost_model.hardware.RUNTIME_UNIT`), so the
default precision and the latency estimate follow the unit that will run the artifact:

    galaxy-s24:                 runtime tflite       precisions w8a8, w8a16, fp16   (NPU)
    galaxy-s24 --runtime onnxruntime:
                                runtime onnxruntime  precisions fp32, fp16, w8a8    (its CPU)
                                alt_runtimes tflite, qnn
"""

from __future__ import annotations

import dataclasses

from edgec.cost_model.hardware import unit_for
from edgec.device_profile import DeviceProfile
from edgec.errors import UserError

# A compute unit's arithmetic (device profiles) → the edgec precision that runs on it
_UNIT_PRECISION = {"fp32": "fp32", "fp16": "fp16", "int8": "w8a8"}


def with_runtime(profile: DeviceProfile, runtime: str | None) -> DeviceProfile:
    """`profile` wanting `runtime` (its own, or one of its `alt_runtimes`); a `UserError`
    naming the choices for any other."""
    if runtime is None or runtime == profile.runtime:
        return profile
    if runtime not in profile.alt_runtimes:
        choices = ", ".join([profile.runtime, *profile.alt_runtimes])
        raise UserError(
            f"target {profile.name} does not run {runtime!r}",
            f"its runtimes: {choices} (`edgec targets` lists each target's)",
        )
    chosen = dataclasses.replace(profile, runtime=runtime)
    unit = unit_for(chosen)
    precisions = tuple(
        _UNIT_PRECISION[p] for p in (unit.precisions if unit else ()) if p in _UNIT_PRECISION
    )
    return dataclasses.replace(
        chosen,
        precisions=precisions or ("fp32",),
        alt_runtimes=tuple(r for r in (profile.runtime, *profile.alt_runtimes) if r != runtime),
    )
