"""What a compile's pictures show, as data: `report.json` and the PNG charts beside report.md.

Two views of latency, each a list of labelled figures:

* **by op** — where the target's time goes: measured runs split by ORT's per-op-type profile
  (each type's share of the profiled time × the measured median), or the cost model's time per
  op class for an estimated target;
* **by device** — the compiled graph on every device profile, estimated at the device's own
  default precision with the expected error of that device's calibration as an error bar, and
  the measured median where one exists (this host).

`device_estimates(model)` computes the second for the manifest (`device_estimates`);
`report_json(manifest)` gathers both; `write_report_files(stage, manifest)` writes
`report.json`, `latency_by_op.png` and `latency_by_device.png` (a chart with nothing to show
is left out and report.json says why).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgec.json_text import json_text
from edgec.report_charts import Bar, bar_chart, save_png

BY_OP_PNG = "latency_by_op.png"
BY_DEVICE_PNG = "latency_by_device.png"
REPORT_JSON = "report.json"


def device_estimates(
    model,
    measured_ms: float | None = None,
    target_latency: dict[str, Any] | None = None,
    measured_precision: str | None = None,
    target=None,
) -> list[dict[str, Any]]:
    """The compiled graph estimated on every device profile (`edgec.estimate`), by name, each
    at its default precision. `target` is the profile the compile was for: its row uses it as
    compiled (with `--runtime`, e.g. the Galaxy S24 on its CPU, not its NPU default).

    A profile the cost model cannot price gets `estimate_ms: None` and the reason; the host's
    entry carries `measured_ms` when this compile measured it, and is priced at the precision
    that was measured (`measured_precision`, e.g. the w4a8 artifact), so that the two figures
    of the row describe the same graph. `target_latency` is the compile's own latency record:
    an estimate of the target at a row's device and precision is that row's figure, not
    computed again.
    """
    from edgec.config import default_precision
    from edgec.device_profile import all_profiles

    known = target_latency if (target_latency or {}).get("method") == "estimated" else {}
    rows = []
    profiles = all_profiles()
    if target is not None:
        profiles = {**profiles, target.name: target}
    for name, profile in sorted(profiles.items()):
        measured_here = profile.latency == "measured" and measured_ms is not None
        precision = default_precision(profile.precisions)
        if measured_here and measured_precision:
            precision = measured_precision
        row: dict[str, Any] = {"device": name, "runtime": profile.runtime, "precision": precision}
        if (known.get("device"), known.get("precision")) == (name, precision):
            row.update(_priced(known))
        else:
            row.update(_estimated(model, profile, precision))
        if measured_here:
            row["measured_ms"] = measured_ms
            row.update(_off_estimate(row))
        rows.append(row)
    return rows


def _estimated(model, profile, precision: str) -> dict[str, Any]:
    """A device row's figures from a fresh estimate, or why there is none."""
    from edgec.estimate import EstimateUnavailable, estimate

    try:
        result = estimate(model, profile, precision=precision).to_dict()
    except EstimateUnavailable as exc:
        return {"estimate_ms": None, "reason": exc.message}
    return _priced(result)


def _priced(result: dict[str, Any]) -> dict[str, Any]:
    """A device row's figures from an estimate's record (`Estimate.to_dict()`)."""
    return {
        "estimate_ms": result["total_ms"],
        "range_ms": result["range_ms"],
        "expected_error_pct": result["expected_error"].get("median_pct"),
        "calibration": result["calibration"]["how"],
    }


def _off_estimate(row: dict[str, Any]) -> dict[str, str]:
    """A `note` when the measurement of a row falls outside its estimate's expected error.

    The host's estimate rests on micro-benchmarks cached at first use; on a shared or
    throttled CPU the host can run at another speed now than then (measured: the same M0
    estimated 3.08 ms from a cache made in a fast hour and 5.06 ms when recalibrated, with
    5.4 and 4.8 ms measured)."""
    estimate, error = row.get("estimate_ms"), row.get("expected_error_pct")
    if not estimate or error is None:
        return {}
    off = 100 * (row["measured_ms"] / estimate - 1)
    if abs(off) <= error:
        return {}
    return {
        "note": f"measured {off:+.0f} % off the estimate, outside its expected error: the "
        f"estimate rests on {row['calibration']}, and a shared or throttled CPU can run at "
        "another speed now than then; delete the host-calibration-*.json there to "
        "recalibrate at the next estimate"
    }


def by_op(latency: dict[str, Any]) -> tuple[str, list[tuple[str, float]]]:
    """(what the figures are, [(label, ms)] largest first) for the target's latency."""
    if latency.get("method") == "measured" and latency.get("per_op"):
        p50 = latency["p50_ms"]
        rows = [(r["op_type"], r["share"] * p50) for r in latency["per_op"]]
        return "measured: median latency split by ORT's per-op-type profile", rows
    if latency.get("method") == "estimated":
        return "estimated by edgec's cost model, per op class", list(latency["by_class_ms"].items())
    return f"no breakdown: {latency.get('reason', 'latency was not measured or estimated')}", []


def report_json(manifest: dict[str, Any]) -> dict[str, Any]:
    """The figures the charts draw, with the compile they belong to."""
    latency = manifest["latency"]
    source, rows = by_op(latency)
    return {
        "model": manifest["model"]["name"],
        "target": manifest["target"]["name"],
        "precision": manifest["precision"]["realised"],
        "latency": {
            k: latency[k]
            for k in ("method", "p50_ms", "p90_ms", "total_ms", "range_ms", "reason")
            if k in latency
        },
        "by_op": {"source": source, "ms": {label: round(ms, 4) for label, ms in rows}},
        "by_device": manifest.get("device_estimates", []),
    }


def chart_names(manifest: dict[str, Any]) -> list[str]:
    """The charts a compile's output holds (those with something to show)."""
    return list(_chart_rows(report_json(manifest)))


def write_report_files(stage: Path, manifest: dict[str, Any]) -> None:
    """report.json and the charts that have something to show."""
    data = report_json(manifest)
    title = f"{data['model']} on {data['target']} ({data['precision']})"
    rows = _chart_rows(data)
    charts = {}
    if BY_OP_PNG in rows:
        bars = [Bar(label, ms) for label, ms in rows[BY_OP_PNG].items()]
        charts[BY_OP_PNG] = bar_chart(
            f"Latency by op: {title}", bars, footer=data["by_op"]["source"]
        )
    if BY_DEVICE_PNG in rows:
        charts[BY_DEVICE_PNG] = bar_chart(
            f"Latency per device: {data['model']} (each device at its default precision)",
            [_device_bar(row) for row in rows[BY_DEVICE_PNG]],
            footer="estimates from edgec's cost model; error bars: the device's median "
            "error on published measurements; dots: measured here",
        )
    data["charts"] = sorted(charts)
    for name, image in charts.items():
        save_png(image, stage / name)
    text = json_text(data, indent=2, sort_keys=True)
    (stage / REPORT_JSON).write_text(text + "\n", encoding="utf-8")


def _chart_rows(data: dict[str, Any]) -> dict[str, Any]:
    """Chart file → the rows it draws, for the charts that have any (one rule for both
    `chart_names` and `write_report_files`)."""
    priced = [row for row in data["by_device"] if row.get("estimate_ms") is not None]
    rows = {BY_OP_PNG: data["by_op"]["ms"], BY_DEVICE_PNG: priced}
    return {name: r for name, r in rows.items() if r}


def _device_bar(row: dict[str, Any]) -> Bar:
    low, high = row.get("range_ms") or (None, None)
    error = row.get("expected_error_pct")
    note = f"±{error:.0f} %" if error is not None else "error ?"
    if row.get("measured_ms") is not None:
        note += f"; measured {row['measured_ms']:.3f}"
    return Bar(
        f"{row['device']} ({row['precision']})",
        row["estimate_ms"],
        low=low,
        high=high,
        measured=row.get("measured_ms"),
        note=note,
    )
