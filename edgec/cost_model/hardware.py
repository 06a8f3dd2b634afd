"""What the cost model reads from a device profile: the compute unit, its peak and bandwidth.

The unit a model runs on is the one its runtime targets: Core ML and TFLite/QNN → the NPU,
TensorRT → the GPU, ONNX Runtime → the CPU (the first unit of that kind in the profile, or the
first unit when the profile has none of that kind).

The peak is the profile's dense figure for the precision (`w8a8` → int8; half of a sparse-only
figure). A 16-bit precision (fp16, bf16) with no figure of its own runs at **half the unit's
int8 rate**: the matrix engines of these chips do twice the int8 MACs of fp16 MACs per cycle
(every GPU of latency.md §2.4 that publishes both: T4 65/130, A100 312/624, H100 989/1,979),
and an "unstated"-precision figure (Apple's Neural Engine TOPS) counts int8 ops on a unit
that lists int8 among its precisions (A17 Pro: "likely counts INT8 ops", latency.md §2.1) and
fp16 ops on one that does not (A14: FP16 compute only). Otherwise an unstated, then an fp32
figure is used as the scale. When the profile publishes none for the unit the peak is None
and the device's calibration carries the unit's effective throughput instead
(`Calibration.nominal_tflops`). Bandwidth is the profile's memory bandwidth (None when not
published).
"""

from __future__ import annotations

import dataclasses

from edgec.device_profile import ComputeUnit, DeviceProfile, Peak

__all__ = ["ELEMENT_BYTES", "PEAK_PRECISION", "Hardware", "hardware_for", "unit_for"]

RUNTIME_UNIT = {
    "coreml": "npu",
    "tflite": "npu",
    "qnn": "npu",
    "tensorrt": "gpu",
    "onnxruntime": "cpu",
}
# edgec precision -> (activation bytes, weight bytes)
ELEMENT_BYTES = {
    "fp32": (4, 4),
    "tf32": (4, 4),
    "fp16": (2, 2),
    "bf16": (2, 2),
    "fp8": (1, 1),
    "w8a8": (1, 1),
    "w8a16": (2, 1),
    "w4a8": (1, 0.5),
    "int-only": (1, 1),
}
# edgec precision -> the peak figure's precision
PEAK_PRECISION = {"w8a8": "int8", "w8a16": "fp16", "w4a8": "int8", "int-only": "int8"}
_TO_TFLOPS = {"TFLOPS": 1.0, "TOPS": 1.0, "GFLOPS": 1e-3, "GOPS": 1e-3}
_HALF_INT8_RATE = {"fp16", "bf16"}  # precisions that run at half the int8 rate (docstring)


@dataclasses.dataclass(frozen=True)
class Hardware:
    """The figures one estimate uses, and where each came from."""

    unit_kind: str
    unit_name: str
    precision: str
    peak_tflops: float | None
    peak_note: str
    bandwidth_gbs: float | None
    activation_bytes: float
    weight_bytes: float


def unit_for(device: DeviceProfile, kind: str | None = None) -> ComputeUnit | None:
    """The unit of `kind` (default: the one the device's runtime targets)."""
    kind = kind or RUNTIME_UNIT.get(device.runtime, "cpu")
    for unit in device.compute_units:
        if unit.kind == kind:
            return unit
    return device.compute_units[0] if device.compute_units and kind is None else None


def hardware_for(device: DeviceProfile, precision: str, kind: str | None = None) -> Hardware:
    """The unit, peak and bandwidth an estimate of `device` at `precision` uses."""
    unit = unit_for(device, kind) or (device.compute_units[0] if device.compute_units else None)
    peak, note = _peak(unit, precision) if unit else (None, "the profile lists no compute unit")
    bandwidth = device.memory.bandwidth.value if device.memory and device.memory.bandwidth else None
    act, weight = ELEMENT_BYTES.get(precision, (4, 4))
    return Hardware(
        unit_kind=unit.kind if unit else (kind or "cpu"),
        unit_name=unit.name if unit else "",
        precision=precision,
        peak_tflops=peak,
        peak_note=note,
        bandwidth_gbs=bandwidth,
        activation_bytes=act,
        weight_bytes=weight,
    )


def _peak(unit: ComputeUnit, precision: str) -> tuple[float | None, str]:
    wanted = PEAK_PRECISION.get(precision, precision)
    int8_unit = "int8" in unit.precisions

    def pick(match) -> Peak | None:
        dense = [p for p in unit.peaks if match(p) and not p.sparse]
        sparse = [p for p in unit.peaks if match(p) and p.sparse]
        return (dense or sparse or [None])[0]

    def counts_int8(p: Peak) -> bool:
        return p.precision == "int8" or (p.precision == "unstated" and int8_unit)

    candidates = [(wanted, 1.0, lambda p: p.precision == wanted)]
    if wanted == "int8" or wanted in _HALF_INT8_RATE:
        candidates.append(("int8", 1.0 if wanted == "int8" else 0.5, counts_int8))
    candidates += [
        ("unstated", 1.0, lambda p: p.precision == "unstated"),
        ("fp32", 1.0, lambda p: p.precision == "fp32"),
        ("any", 1.0, lambda p: True),
    ]
    for label, factor, match in candidates:
        found = pick(match)
        if found is not None:
            value = found.value * _TO_TFLOPS[found.unit] / (2 if found.sparse else 1) * factor
            how = f"{found.value:g} {found.unit} {found.precision}"
            how += " (sparse figure halved)" if found.sparse else ""
            if label == "int8" and found.precision != "int8":
                how += " (counted as int8)"
            if factor != 1.0:
                how += f", halved for {wanted} (16-bit MACs at half the int8 rate)"
            elif label not in (wanted, "int8"):
                how += f" (no {wanted} figure published; used as the scale)"
            return value, f"{how}, trust {found.trust}: {found.source}"
    return None, f"the profile publishes no peak for its {unit.kind}"
