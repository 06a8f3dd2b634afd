"""What the cost model reads from a device profile: the compute unit, its peak and bandwidth.

The unit a model runs on is the one its runtime targets: Core ML and TFLite/QNN → the NPU,
TensorRT → the GPU, ONNX Runtime → the CPU (the first unit of that kind in the profile, or the
first unit when the profile has none of that kind).

The peak is the profile's dense figure for the precision (`w8a8` → int8, an "unstated"-precision
figure such as Apple's Neural Engine TOPS when that is all there is, half of a sparse-only
figure); when the profile publishes none for the unit the peak is None and the device's
calibration carries the unit's effective throughput instead (`Calibration.nominal_tflops`).
Bandwidth is the profile's memory bandwidth (None when not published).
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

    def pick(match) -> Peak | None:
        dense = [p for p in unit.peaks if match(p) and not p.sparse]
        sparse = [p for p in unit.peaks if match(p) and p.sparse]
        return (dense or sparse or [None])[0]

    for label, match in (
        (wanted, lambda p: p.precision == wanted),
        ("unstated", lambda p: p.precision == "unstated"),
        ("fp32", lambda p: p.precision == "fp32"),
        ("any", lambda p: True),
    ):
        found = pick(match)
        if found is not None:
            value = found.value * _TO_TFLOPS[found.unit] / (2 if found.sparse else 1)
            how = f"{found.value:g} {found.unit} {found.precision}"
            how += " (sparse figure halved)" if found.sparse else ""
            if label != wanted:
                how += f" (no {wanted} figure published; used as the scale)"
            return value, f"{how}, trust {found.trust}: {found.source}"
    return None, f"the profile publishes no peak for its {unit.kind}"
