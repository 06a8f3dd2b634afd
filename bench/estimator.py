"""Calibrate edgec's latency cost model per device and validate it against published latencies.

Reads the published measurements (../shared/reference/latency_anchors.json) and the skeleton
graphs of the anchor networks (bench/anchor_graphs.py; default bench/results/anchor_graphs.tar.gz),
then for every device profile with anchors:

1. **leave-one-model-family-out**: for each family, fit the device's constants on the other
   families' anchors and predict the held-out family's; the absolute % errors of those
   predictions are the device's expected error (median, max, Spearman ρ over its anchors);
2. fit the constants on all of the device's anchors (what edgec ships).

Devices whose runtime runs on the same kind of unit (Core ML on the Neural Engine: iphone-12,
-13, -15-pro; TensorRT-class GPUs) form a **runtime group** when two or more of them can be
cross-validated. The group's constants are fitted once on the pooled anchors of its devices
that publish their own peak and bandwidth (a device scaled by borrowed figures, iphone-13, uses
them but does not set them); the launch overhead per kernel is the runtime's and is shared as
is, and each device fits its compute, memory and layout scales with the group's as the prior
(`GROUP_WIDTH`), so a device with few anchors stays near its runtime and one with many follows
its own. When a family is held out, it is held out of the pooled fit too (of every device), so
no constant a held-out prediction uses has seen that family.

Devices with anchors of one family only cannot be cross-validated that way, and devices with
none have nothing to fit: they borrow the geometric mean of the constants of the other devices
with the same kind of unit, and their expected error is **leave-one-device-out**: each such
device's anchors predicted from the other devices' constants. The priors alone are scored the
same way (every anchor, no fitting) for devices the calibration does not cover.

    python bench/estimator.py          # print the table, save bench/results/estimator.json
    python bench/estimator.py --write  # also write devices/latency_calibration.json

Anchors are used when their network can be rebuilt (bench/anchor_models.py), the device maps
to an edgec profile (iPhone 12 Pro → iphone-12: the same A14), and the measurement was taken on
the unit the profile's runtime targets; a record whose notes say layers fell back to the CPU is
left out (AI Hub's SegFormer-B0 under ONNX Runtime's QNN EP: 92 of 699 layers on the CPU, a
placement the profile's TFLite runtime does not have). Every skipped record is listed with its
reason. Each anchor's graph is grouped into kernels by the fusion rules of the runtime the
record names (`fusion.rules_for`: TorchScript GPU throughputs, Core ML, TFLite/QNN, TensorRT),
so the fitted constants describe the device, and carry over to the runtime edgec estimates for.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tarfile
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import onnx_ir as ir

sys.path.insert(0, str(Path(__file__).resolve().parent))
from anchor_models import BUILDERS, graph_file

from edgec.cost_model.calibration import CALIBRATION_FILE, FORMAT
from edgec.cost_model.fit import Constants, fit_constants, predict_seconds
from edgec.cost_model.fusion import rules_for
from edgec.cost_model.hardware import RUNTIME_UNIT, hardware_for
from edgec.cost_model.kernels import group_kernels
from edgec.cost_model.roofline import OVERHEAD_US, kernel_terms
from edgec.device_profile import all_profiles

ROOT = Path(__file__).resolve().parents[1]
ANCHORS = ROOT.parent / "shared" / "reference" / "latency_anchors.json"
GRAPHS = ROOT / "bench" / "results" / "anchor_graphs.tar.gz"
RESULTS = ROOT / "bench" / "results" / "estimator.json"
CALIBRATION = ROOT / "devices" / CALIBRATION_FILE

SAME_CHIP = {"iphone-12-pro": "iphone-12"}  # anchor device slug -> profile (same SoC)
# Width of the prior that ties a device of a runtime group to the group's pooled constants: a
# factor 10 away costs as much as one anchor off by a factor e (fit.py; log 3 was also tried:
# the same picture, iphone-12 15.2 % instead of 12.8 %).
GROUP_WIDTH = math.log(10.0)
# What a whole-axis reduction may cost on a unit that runs a graph as one layer-fused program
# (roofline: `reduction_launches`), in launches; each fit picks the best (1 on a tie). Other
# units launch kernel by kernel from the host, where a reduction is one more launch.
REDUCTION_LAUNCHES = {"npu": (1.0, 2.0, 3.0, 5.0, 8.0, 12.0, 20.0)}
# A record whose notes say part of the graph fell back to the CPU measured a placement that the
# profile's runtime does not have (AI Hub's ORT + QNN EP runs of SegFormer-B0: 92 of 699 layers).
CPU_FALLBACK_NOTE = "fall back to the cpu"
# Scale figures for units whose profile publishes none: the fitted constants multiply them, so
# they only set where the fit starts; each says where it comes from.
NOMINAL = {
    "iphone-13": (11.0, 34.0, "A14 figures of the iphone-12 profile (A15's not in the notes)"),
}


def load_anchors(path: Path) -> tuple[dict[str, list[dict]], list[dict]]:
    """Usable anchors per profile name, and the skipped records with reasons."""
    profiles = all_profiles()
    used: dict[str, list[dict]] = defaultdict(list)
    skipped = []
    for r in json.loads(path.read_text(encoding="utf-8"))["records"]:
        device = SAME_CHIP.get(r["device"], r["device"])
        reason = None
        if device not in profiles:
            reason = f"no edgec profile for {r['device']}"
        elif r["model"] not in BUILDERS or not r.get("resolution"):
            reason = "network not rebuildable offline"
        elif CPU_FALLBACK_NOTE in (r.get("notes") or "").lower():
            reason = f"{r['runtime']}: the record notes a CPU fallback the profile's runtime avoids"
        else:
            unit = RUNTIME_UNIT.get(profiles[device].runtime)
            if r.get("compute_unit") not in (unit, "auto"):
                reason = f"measured on {r.get('compute_unit')}, profile runs on {unit}"
        if reason:
            skipped.append(
                {"id": r["id"], "model": r["model"], "device": r["device"], "why": reason}
            )
        else:
            used[device].append(r)
    return dict(used), skipped


def precision_of(record: dict, profile) -> str:
    p = record.get("precision")
    return {"fp16-amp": "fp16", "bf16-autocast": "bf16"}.get(p, p) or profile.precisions[0]


def measured_seconds(record: dict) -> tuple[int, float]:
    """(batch, seconds for the whole batch) of one anchor."""
    batch = record.get("batch") or 1
    if record["metric"] == "throughput_img_s":
        return batch, batch / record["value"]
    return batch, record["value"] / 1e3


def anchor_terms(device: str, records: list[dict], graphs: Path) -> list[tuple[dict, list]]:
    """Each anchor's kernel terms: its graph grouped by the fusion rules of the runtime the
    anchor says it was measured with (the profile's runtime where it names none), timed on the
    profile's unit at the anchor's precision and batch."""
    profile = all_profiles()[device]
    kernels_of: dict[tuple[str, str], list] = {}
    out = []
    for r in records:
        rules = rules_for(r.get("runtime") or profile.runtime)
        name = graph_file(r["model"], r["resolution"])
        if (name, rules.name) not in kernels_of:
            kernels_of[name, rules.name] = group_kernels(ir.load(graphs / name), None, rules)
        precision = precision_of(r, profile)
        hw = hardware_for(profile, precision)
        nominal = NOMINAL.get(device, (None, None, ""))
        peak = hw.peak_tflops or nominal[0]
        bandwidth = hw.bandwidth_gbs or nominal[1]
        batch, _ = measured_seconds(r)
        terms = [
            kernel_terms(
                k, hw.unit_kind, peak, bandwidth, hw.activation_bytes, hw.weight_bytes, batch
            )
            for k in kernels_of[name, rules.name]
        ]
        out.append((r, terms))
    return out


def ape(predicted: float, measured: float) -> float:
    return abs(predicted - measured) / measured * 100


def spearman(a: list[float], b: list[float]) -> float | None:
    if len(a) < 3:
        return None
    ra, rb = (np.argsort(np.argsort(x)).astype(float) for x in (a, b))
    if ra.std() == 0 or rb.std() == 0:
        return None
    return float(np.corrcoef(ra, rb)[0, 1])


def summary(errors: list[float], predicted: list[float], measured: list[float], method: str):
    return {
        "median_pct": round(statistics.median(errors), 1) if errors else None,
        "max_pct": round(max(errors), 1) if errors else None,
        "n": len(errors),
        "spearman": None if (rho := spearman(predicted, measured)) is None else round(rho, 3),
        "method": method,
    }


def validate(graphs: Path, anchors_path: Path) -> dict:
    used, skipped = load_anchors(anchors_path)
    profiles = all_profiles()
    samples = {d: anchor_terms(d, rs, graphs) for d, rs in sorted(used.items())}
    kind = {d: hardware_for(profiles[d], profiles[d].precisions[0]).unit_kind for d in profiles}
    prior = {d: (1.0, 1.0, OVERHEAD_US[kind[d]], 1.0) for d in profiles}
    groups = runtime_groups(samples, profiles, kind)
    group_of = {d: g for g, members in groups.items() for d in members}

    def fit(device: str, held_out: str | None):
        """The device's constants fitted without family `held_out` (None: on every anchor)."""
        train = [(t, measured_seconds(r)[1]) for r, t in samples[device] if r["family"] != held_out]
        group = group_of.get(device)
        reductions = REDUCTION_LAUNCHES.get(kind[device], (1.0,))
        if group is None:
            return fit_constants(train, prior[device], reduction_launches=reductions)
        pooled = [
            (t, measured_seconds(r)[1])
            for d in groups[group]
            if d not in NOMINAL  # its terms use borrowed figures: not comparable in a pool
            for r, t in samples[d]
            if r["family"] != held_out
        ]
        shared = fit_constants(pooled, prior[device], reduction_launches=reductions)
        return fit_constants(
            train,
            shared[:4],
            width=GROUP_WIDTH,
            fixed_overhead_us=shared[2],
            reduction_launches=shared[4:],
        )

    devices, rows = {}, []
    for device, items in samples.items():
        families = sorted({r["family"] for r, _ in items})
        entry = {
            "unit": kind[device],
            "families": families,
            "constants": fit(device, None),
            "loo": None,
        }
        if len(families) >= 2:
            preds = []
            for family in families:
                constants = fit(device, family)
                for r, t in items:
                    if r["family"] == family:
                        preds.append((r, predict_seconds(t, *constants)))
            entry["loo"] = preds
        devices[device] = entry

    # Borrowed constants and leave-one-device-out error, per unit kind.
    def borrowed(for_device: str) -> Constants | None:
        donors = [
            d for d, e in devices.items()
            if d != for_device and e["unit"] == kind[for_device] and d not in NOMINAL
            and len(e["families"]) >= 2
        ]  # fmt: skip
        if not donors:
            return None
        logs = np.log(np.array([devices[d]["constants"] for d in donors]))
        return tuple(float(v) for v in np.exp(logs.mean(axis=0)))

    lodo: dict[str, list] = defaultdict(list)
    for device, items in samples.items():
        if device in NOMINAL:
            continue  # its constants are relative to a nominal figure: not transferable
        constants = borrowed(device)
        if constants is not None:
            for r, t in items:
                lodo[kind[device]].append((device, r, predict_seconds(t, *constants)))
    priors_only = [
        (device, r, predict_seconds(t, *prior[device]))
        for device, items in samples.items()
        if device not in NOMINAL
        for r, t in items
    ]

    def scored(pairs):
        errs = [ape(p, measured_seconds(r)[1]) for r, p in pairs]
        return errs, [p for _, p in pairs], [measured_seconds(r)[1] for r, _ in pairs]

    calibration = {}
    for device in profiles:
        if profiles[device].latency == "measured":
            continue
        entry = devices.get(device)
        nominal = NOMINAL.get(device)
        if entry and entry["loo"] is not None:
            errs, p, m = scored(entry["loo"])
            error = summary(errs, p, m, f"leave-one-model-family-out over {len(errs)} anchors")
            constants = entry["constants"]
            how = (
                f"fitted to {len(samples[device])} published measurements "
                f"({len(entry['families'])} model families)"
            )
        elif borrowed(device) is not None and _has_figures(profiles[device]):
            constants = borrowed(device)
            pairs = [(r, p) for _, r, p in lodo[kind[device]]]
            errs, p, m = scored(pairs)
            donors = sorted(
                d for d, e in devices.items()
                if d != device and e["unit"] == kind[device] and d not in NOMINAL
                and len(e["families"]) >= 2
            )  # fmt: skip
            error = summary(
                errs, p, m, f"leave-one-device-out over {len(errs)} {kind[device]} anchors"
            )
            how = f"borrowed: geometric mean of {', '.join(donors)} (same kind of unit)"
            if entry:  # its own anchors, unused by the borrowed constants, are the fairer test
                own = scored([(r, predict_seconds(t, *constants)) for r, t in samples[device]])
                error = summary(*own, f"borrowed constants scored on its own {len(own[0])} anchors")
        else:
            continue
        record = {
            "compute_scale": round(constants[0], 4),
            "memory_scale": round(constants[1], 4),
            "overhead_us": round(constants[2], 3),
            "layout_scale": round(constants[3], 4),
            "reduction_launches": constants[4],
            "how": how,
            "expected_error": error,
            "anchors": [r["id"] for r, _ in samples.get(device, [])],
        }
        if nominal:
            record["nominal_tflops"], record["nominal_bandwidth_gbs"] = nominal[0], nominal[1]
            record["how"] += f"; scale figures: {nominal[2]}"
        if device in group_of and entry and entry["loo"] is not None:
            setters = ", ".join(d for d in groups[group_of[device]] if d not in NOMINAL)
            record["how"] += (
                f"; launch overhead and prior of the {group_of[device]} runtime group, fitted "
                f"on the anchors of {setters}"
            )
        calibration[device] = record
        for r, t in samples.get(device, []):
            rows.append(
                {
                    "device": device,
                    "id": r["id"],
                    "model": r["model"],
                    "measured_ms_per_image": _per_image(measured_seconds(r)),
                    "shipped_ms_per_image": _per_image(
                        (measured_seconds(r)[0], predict_seconds(t, *constants))
                    ),
                }
            )
    errs, p, m = scored([(r, pred) for _, r, pred in priors_only])
    priors_error = summary(errs, p, m, f"priors only, no fitting, over {len(errs)} anchors")
    return {
        "calibration": calibration,
        "priors_only_error": priors_error,
        "rows": rows,
        "loo_rows": [
            {
                "device": d,
                "id": r["id"],
                "model": r["model"],
                "family": r["family"],
                "measured_s": measured_seconds(r)[1],
                "predicted_s": pred,
                "ape_pct": round(ape(pred, measured_seconds(r)[1]), 1),
            }
            for d, e in devices.items()
            if e["loo"]
            for r, pred in e["loo"]
        ],
        "skipped": skipped,
    }


def runtime_groups(samples: dict, profiles: dict, kind: dict) -> dict[str, list[str]]:
    """Runtime/unit groups ("coreml/npu": [...]) of two or more cross-validatable devices."""
    groups: dict[str, list[str]] = defaultdict(list)
    for device, items in sorted(samples.items()):
        if len({r["family"] for r, _ in items}) >= 2:
            groups[f"{profiles[device].runtime}/{kind[device]}"].append(device)
    return {g: members for g, members in groups.items() if len(members) >= 2}


def _has_figures(profile) -> bool:
    """Whether the profile publishes the peak and bandwidth that borrowed constants scale."""
    hw = hardware_for(profile, profile.precisions[0])
    return hw.peak_tflops is not None and hw.bandwidth_gbs is not None


def _per_image(batch_seconds: tuple[int, float]) -> float:
    batch, seconds = batch_seconds
    return round(seconds / batch * 1e3, 5)


def print_table(result: dict) -> None:
    print(f"{'device':<16} {'anchors':>7} {'median %':>9} {'max %':>7} {'rho':>6}  how")
    for device, c in result["calibration"].items():
        e = c["expected_error"]
        rho = "-" if e.get("spearman") is None else f"{e['spearman']:.2f}"
        med = "-" if e["median_pct"] is None else f"{e['median_pct']:.1f}"
        mx = "-" if e["max_pct"] is None else f"{e['max_pct']:.1f}"
        print(f"{device:<16} {len(c['anchors']):>7} {med:>9} {mx:>7} {rho:>6}  {e['method']}")
    e = result["priors_only_error"]
    print(f"{'(priors only)':<16} {e['n']:>7} {e['median_pct']:>9} {e['max_pct']:>7}")
    print(f"skipped records: {len(result['skipped'])} (reasons in {RESULTS.name})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--anchors", type=Path, default=ANCHORS)
    parser.add_argument("--graphs", type=Path, default=GRAPHS, help="folder or .tar.gz")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--write", action="store_true", help=f"write devices/{CALIBRATION_FILE}")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        graphs = args.graphs
        if graphs.is_file():
            with tarfile.open(graphs) as tar:
                tar.extractall(scratch, filter="data")
            graphs = Path(scratch)
        result = validate(graphs, args.anchors)
    print_table(result)
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    if args.write:
        data = {
            "format": FORMAT,
            "note": "Written by bench/estimator.py --write; fitted to the public half of "
            "shared/reference/latency_anchors.json. expected_error is cross-validated (see "
            "docs/latency.md); nothing here was measured by edgec.",
            "priors_only_error": result["priors_only_error"],
            "devices": result["calibration"],
        }
        CALIBRATION.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {CALIBRATION.relative_to(ROOT)}")
    return 0 if all(math.isfinite(r["ape_pct"]) for r in result["loo_rows"]) else 1


if __name__ == "__main__":
    sys.exit(main())
