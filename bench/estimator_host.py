"""Host latency estimate vs measurement: edgec.estimate(artifact, "host") against ONNX Runtime.

For every model and precision (fp32, w8a8):

1. compile it for the host (`--no-measure`; w8a8 from the fp32 artifact with 8 synthetic
   calibration images: latency does not depend on the calibration values). The source graph
   is the model's weight-free skeleton in bench/results/anchor_graphs.tar.gz (edgec's exporter,
   deployment form; bench/anchor_graphs.py) with seeded random weights filled in, so no
   PyTorch export is needed: the zoo's EfficientViT-M0/M2/M3/M5, LowFormer-B0/B1/B1.5/E1/E3 and
   SHViT-S4 (256 px) by default, and any other skeleton of the archive by name (MobileNet,
   RepViT, FastViT, … as other families). `--export NAME` exports a zoo or timm model with
   PyTorch instead (minutes each on a shared 2-core machine). Artifacts are kept in `--work`
   and reused by later runs;
2. measure every artifact in ONNX Runtime at `--threads` (default 1), interleaved round by
   round (`runtimes.measure.measure_interleaved`): wall-time median and 10th percentile, and
   the median CPU time of a call (`cost_model.cpu_time`; at one thread it leaves out the time
   a call waits for a core while other processes load a shared machine);
3. estimate it with the host cost model, whose constants are micro-benchmarked afresh in the
   same interleaved rounds as the artifacts (`host_micro.run_with`; cached in a private
   directory for the run), so that the benchmarks and the models see the same machine: on a
   shared 2-vCPU host a call runs measurably slower, even in CPU time, while the other core
   is busy — nothing is fitted to these models. `--first-use` instead scores what a user
   gets: the constants of a first estimate (`host_calibration`: the micro-benchmarks alone),
   then each artifact timed on its own, as `edgec profile` does (interleaving artifacts makes
   each run with the others' data in the caches, which a user's model does not see).

Prints the table, the median absolute % error (against the wall median, the wall 10th
percentile and the CPU time) and Spearman ρ, the load average before and after, and saves
bench/results/estimator_host.json; `--write` also writes devices/host_estimate_error.json,
the expected error every host estimate then carries (`--against cpu` on a loaded machine,
where the wall median measures the other processes as much as the model).

    python bench/estimator_host.py                       # all models, fp32 and w8a8
    python bench/estimator_host.py --models efficientvit_m0 shvit_s1 --precisions fp32
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent))
from estimator import ape, spearman

from edgec.config import CompileConfig
from edgec.cost_model.calibration import HOST_ERROR_FILE
from edgec.cost_model.cpu_time import interleaved_with_cpu_time
from edgec.cost_model.host_calibration import host_calibration, store_calibration
from edgec.cost_model.host_micro import run_with
from edgec.device_profile import host_facts
from edgec.errors import EdgecError, UserError
from edgec.estimate import estimate
from edgec.pipeline import compile_model
from edgec.preprocess import Preprocessing
from edgec.runtimes import ort
from edgec.toolchain import toolchain_versions

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "estimator_host.json"
ERROR_FILE = ROOT / "devices" / HOST_ERROR_FILE
GRAPHS = ROOT / "bench" / "results" / "anchor_graphs.tar.gz"
MODELS = [
    "efficientvit_m0_224x224",
    "efficientvit_m2_224x224",
    "efficientvit_m3_224x224",
    "efficientvit_m5_224x224",
    "lowformer_b0_224x224",
    "lowformer_b1_224x224",
    "lowformer_b15_224x224",
    "lowformer_e1_224x224",
    "lowformer_e3_224x224",
    "shvit_s4_256x256",
]


def family(model: str) -> str:
    """efficientvit_m0_224x224 → efficientvit; mobilenetv3_large_100 → mobilenetv3."""
    return model.split("_")[0]


def source_graph(model: str, work: Path, exported: bool) -> str:
    """What to compile: the zoo/timm name (`exported`), else the skeleton with weights."""
    if exported:
        return model
    path = work / f"{model}.source.onnx"
    if not path.is_file():
        with tarfile.open(GRAPHS) as tar:
            member = tar.extractfile(f"./{model}.onnx")
            if member is None:
                raise UserError(f"{model} is not in {GRAPHS.name}")
            proto = onnx.load_model_from_string(member.read())
        _fill_weights(proto)
        onnx.save(proto, path)
    return str(path)


def _fill_weights(proto: onnx.ModelProto) -> None:
    """Seeded random values for the skeleton's external (absent) initializers: N(0, 1/(4·fan-in))
    for weights, ±0.05 for vectors (the deployment-form graphs' biases), so activations stay
    small and the compile's fidelity check is meaningful."""
    rng = np.random.default_rng(0)
    for init in proto.graph.initializer:
        if init.data_location != onnx.TensorProto.EXTERNAL:
            continue
        dims = tuple(init.dims)
        dtype = onnx.helper.tensor_dtype_to_np_dtype(init.data_type)
        if len(dims) >= 2:
            data = 0.5 * rng.standard_normal(dims) / np.sqrt(max(1, int(np.prod(dims[1:]))))
        else:
            data = rng.uniform(-0.05, 0.05, dims)
        init.CopyFrom(numpy_helper.from_array(data.astype(dtype), init.name))


def compiled(model: str, precision: str, work: Path, exported: bool = False) -> Path:
    """The artifact of `model` at `precision` in `work`, compiled now if it is not there."""
    out = work / f"{model}.{precision}"
    manifest = out / "manifest.json"
    if not manifest.is_file():
        if precision == "fp32":
            config = CompileConfig(
                model=source_graph(model, work, exported), out=str(out), measure=False
            )
        else:
            fp32 = compiled(model, "fp32", work, exported)
            recorded = json.loads((fp32.parent / "manifest.json").read_text())["model"]
            calib = work / f"{model}.calib.npy"
            preprocessing = Preprocessing.from_dict(recorded["preprocessing"])
            np.save(calib, preprocessing.synthetic_inputs(8, seed=1))
            config = CompileConfig(
                model=str(fp32), out=str(out), measure=False, precision=precision,
                calib=str(calib), calib_count=8,
            )  # fmt: skip
        compile_model(config)
    data = json.loads(manifest.read_text(encoding="utf-8"))
    return out / data["artifact"]["path"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=MODELS, help="skeletons of the archive")
    parser.add_argument("--export", nargs="*", default=[], help="zoo/timm models to export")
    parser.add_argument("--precisions", nargs="+", default=["fp32", "w8a8"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--per-round", type=int, default=5)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "edgec-host")
    parser.add_argument("--prepare-only", action="store_true", help="compile, do not time")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--write", action="store_true", help=f"write devices/{HOST_ERROR_FILE}")
    parser.add_argument(
        "--first-use", action="store_true",
        help="micro-benchmark alone first (as a user's first estimate), not beside the models",
    )  # fmt: skip
    parser.add_argument(
        "--against", choices=("p50", "cpu"), default="p50",
        help="what --write ships: error vs the wall-time median (quiet machine) or vs CPU time",
    )  # fmt: skip
    args = parser.parse_args(argv)

    args.work.mkdir(parents=True, exist_ok=True)
    artifacts, failed = {}, []
    for model in [*args.models, *args.export]:
        for precision in args.precisions:
            print(f"{model} {precision}: compiling (or reusing) …", file=sys.stderr, flush=True)
            try:
                artifacts[(model, precision)] = compiled(
                    model, precision, args.work, exported=model in args.export
                )
            except (EdgecError, RuntimeError, ValueError) as exc:
                failed.append({"model": model, "precision": precision, "why": repr(exc)[:300]})
                print(f"  failed: {exc!r}"[:300], file=sys.stderr)
    if args.prepare_only:
        return 0

    load_before = os.getloadavg()
    how = (
        "each alone, after the micro-benchmarks"
        if args.first_use
        else "interleaved with the micro-benchmarks"
    )
    print(f"timing {len(artifacts)} artifacts {how} …", file=sys.stderr, flush=True)
    runners = {key: ort.load(path, threads=args.threads) for key, path in artifacts.items()}
    calls = {f"{m}/{p}": r.bound(r.example_feeds()) for (m, p), r in runners.items()}
    timing = dict(rounds=args.rounds, per_round=args.per_round, warmup=5)
    with tempfile.TemporaryDirectory(prefix="edgec-host-calibration-") as cache:
        os.environ["EDGEC_CACHE_DIR"] = cache  # private: this run's constants only
        if args.first_use:  # as a user's first estimate, then `edgec profile` of each model
            constants = host_calibration(args.threads).to_dict()
            stats, cpu = {}, {}
            for tag, call in calls.items():
                alone = interleaved_with_cpu_time({tag: call}, threads=args.threads, **timing)
                stats[tag], cpu[tag] = alone[0][tag], alone[1][tag]
        else:  # the benchmarks in the same rounds as the models
            micro, stats, cpu = run_with(args.threads, calls, **timing)
            constants = store_calibration(args.threads, micro).to_dict()
        load_after = os.getloadavg()
        estimates = {
            key: estimate(path, "host", precision=key[1], threads=args.threads)
            for key, path in artifacts.items()
        }

    rows = []
    for (model, precision), est in estimates.items():
        s, cpu_ms = stats[f"{model}/{precision}"], cpu[f"{model}/{precision}"] * 1e3
        rows.append(
            {
                "model": model,
                "family": family(model),
                "precision": precision,
                "estimate_ms": round(est.total_ms, 4),
                "p50_ms": round(s.p50_ms, 4),
                "p10_ms": round(s.p10_ms, 4),
                "min_ms": round(s.min_ms, 4),
                "cpu_ms": round(cpu_ms, 4),
                "ape_p50": round(ape(est.total_ms, s.p50_ms), 1),
                "ape_p10": round(ape(est.total_ms, s.p10_ms), 1),
                "ape_cpu": round(ape(est.total_ms, cpu_ms), 1),
                "by_class_ms": {k: round(v, 4) for k, v in est.by_class.items()},
                "kernels": len(est.kernels),
            }
        )
    summary = {
        against: {
            "median_pct": round(statistics.median(r[f"ape_{against}"] for r in rows), 1),
            "max_pct": round(max(r[f"ape_{against}"] for r in rows), 1),
            "n": len(rows),
            "spearman": round(
                spearman([r["estimate_ms"] for r in rows], [r[f"{against}_ms"] for r in rows]), 3
            ),
        }
        for against in ("p50", "p10", "cpu")
    }
    groups = {against: _by_group(rows, against) for against in ("p50", "cpu")}
    report = {
        "benchmark": "bench/estimator_host.py",
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "host": host_facts(),
        "toolchain": toolchain_versions(),
        "threads": args.threads,
        "protocol": f"interleaved, {args.rounds} rounds x {args.per_round} runs per artifact",
        "calibrated": "first use, alone" if args.first_use else "beside the artifacts",
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in load_after],
        "calibration": constants,
        "summary": summary,
        "by_group": groups,
        "rows": rows,
        "failed": failed,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(_table(rows))
    for against, s in summary.items():
        print(
            f"vs {against}: median |error| {s['median_pct']} %, max {s['max_pct']} %, "
            f"Spearman ρ {s['spearman']}, n = {s['n']}"
        )
    for group, s in groups[args.against].items():
        print(
            f"  {group}: median |error| {s['median_pct']} %, median signed error "
            f"{s['median_signed_pct']:+} % (n = {s['n']}, vs {args.against})"
        )
    print(f"load average before {load_before}, after {load_after}; saved {args.out}")
    if args.write:
        error = dict(summary[args.against])
        what = {"p50": "wall-time median", "cpu": "median CPU time per call"}[args.against]
        error["method"] = (
            f"bench/estimator_host.py {report['date']}: estimate vs ONNX Runtime {what} over "
            f"{error['n']} zoo artifacts, {args.threads} thread(s), {host_facts()['cpu']}, "
            f"load average {load_before[0]:.1f}, constants {report['calibrated']}"
        )
        ERROR_FILE.write_text(json.dumps({"expected_error": error}, indent=1) + "\n")
        print(f"wrote {ERROR_FILE}")
    return 0


def _by_group(rows: list[dict], against: str) -> dict[str, dict]:
    """Median absolute and median signed % error per precision and per model family: a group
    whose signed median is far from 0 is one the model gets systematically wrong."""
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(r["precision"], []).append(r)
        groups.setdefault(r["family"], []).append(r)
        groups.setdefault(f"{r['family']} {r['precision']}", []).append(r)
    return {
        name: {
            "median_pct": round(statistics.median(r[f"ape_{against}"] for r in members), 1),
            "median_signed_pct": round(
                statistics.median(
                    100 * (r["estimate_ms"] - r[f"{against}_ms"]) / r[f"{against}_ms"]
                    for r in members
                ),
                1,
            ),
            "n": len(members),
        }
        for name, members in sorted(groups.items())
    }


def _table(rows: list[dict]) -> str:
    lines = [
        "| model | precision | estimate ms | wall p50 ms | wall p10 ms | CPU ms | error vs p50 "
        "| vs p10 | vs CPU |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['precision']} | {r['estimate_ms']:.3f} | {r['p50_ms']:.3f} "
            f"| {r['p10_ms']:.3f} | {r['cpu_ms']:.3f} | {r['ape_p50']:.1f} % "
            f"| {r['ape_p10']:.1f} % | {r['ape_cpu']:.1f} % |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
