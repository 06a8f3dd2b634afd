"""Per-device calibration constants of the cost model, shipped as data.

`devices/latency_calibration.json` (package `edgec.devices`) is written by
`bench/estimator.py --write` from the published measurements in
shared/reference/latency_anchors.json; edgec reads it at run time and never needs the anchors.
Per device it holds the fitted `compute_scale`, `memory_scale`, `overhead_us`,
`layout_scale` and `reduction_launches` of `edgec.cost_model.roofline` (`how` says when the
overhead is a runtime group's), nominal peak/bandwidth figures where the profile publishes
none (then the fitted scales carry the unit's real throughput), which anchors it was fitted
on, and the **expected error** measured by cross-validation (leave one model family out; for
a device with no anchors of its own, the constants are borrowed from devices with the same
kind of unit and the error is that of leaving whole devices out). A device the file does not
name runs on the priors, with the priors' measured error.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import json
from functools import cache
from typing import Any

from edgec.cost_model.roofline import OVERHEAD_US

__all__ = [
    "CALIBRATION_FILE",
    "HOST_ERROR_FILE",
    "Calibration",
    "calibration_for",
    "host_expected_error",
    "load_calibrations",
]

CALIBRATION_FILE = "latency_calibration.json"
HOST_ERROR_FILE = "host_estimate_error.json"  # written by bench/estimator_host.py --write
FORMAT = "edgec-latency-calibration-v1"


@dataclasses.dataclass(frozen=True)
class Calibration:
    """The constants one device's estimates use, how they were obtained and how wrong they run."""

    device: str
    compute_scale: float
    memory_scale: float
    overhead_us: float
    how: str
    expected_error: dict[str, Any]
    nominal_tflops: float | None = None
    nominal_bandwidth_gbs: float | None = None
    anchors: tuple[str, ...] = ()
    layout_scale: float | None = None  # None: copies move bytes at memory_scale
    reduction_launches: float = 1.0  # launches a whole-axis reduction costs (roofline)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["anchors"] = list(self.anchors)
        return data


@cache
def load_calibrations() -> dict[str, Any]:
    """The shipped calibration file as a dict (empty devices table if it is absent)."""
    resource = importlib.resources.files("edgec.devices") / CALIBRATION_FILE
    if not resource.is_file():
        return {"format": FORMAT, "devices": {}, "priors_only_error": {}}
    data = json.loads(resource.read_text(encoding="utf-8"))
    if data.get("format") != FORMAT:
        raise ValueError(f"{CALIBRATION_FILE}: format {data.get('format')!r}, expected {FORMAT}")
    return data


def calibration_for(device: str, unit_kind: str) -> Calibration:
    """The device's calibration, or the priors (with the priors' measured error) if it has none."""
    data = load_calibrations()
    entry = data["devices"].get(device)
    if entry is not None:
        return Calibration(
            device=device,
            compute_scale=entry["compute_scale"],
            memory_scale=entry["memory_scale"],
            overhead_us=entry["overhead_us"],
            how=entry["how"],
            expected_error=dict(entry["expected_error"]),
            nominal_tflops=entry.get("nominal_tflops"),
            nominal_bandwidth_gbs=entry.get("nominal_bandwidth_gbs"),
            anchors=tuple(entry.get("anchors", ())),
            layout_scale=entry.get("layout_scale"),
            reduction_launches=entry.get("reduction_launches", 1.0),
        )
    return Calibration(
        device=device,
        compute_scale=1.0,
        memory_scale=1.0,
        overhead_us=OVERHEAD_US.get(unit_kind, OVERHEAD_US["cpu"]),
        how="priors only (no calibration for this device)",
        expected_error=dict(data.get("priors_only_error") or {"median_pct": None}),
    )


@cache
def host_expected_error() -> dict[str, Any]:
    """The host estimate's error measured by bench/estimator_host.py (estimate vs ONNX Runtime
    across the zoo), or an "unknown" record where the file is absent."""
    resource = importlib.resources.files("edgec.devices") / HOST_ERROR_FILE
    if not resource.is_file():
        return {"median_pct": None, "method": "not validated on this edgec"}
    return dict(json.loads(resource.read_text(encoding="utf-8"))["expected_error"])
