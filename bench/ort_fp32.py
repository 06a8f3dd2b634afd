"""fp32 latency on this CPU: PyTorch eager vs plain ONNX export vs onnxslim vs edgec.

For each model (batch 1, its default resolution) and thread count, four variants are timed
interleaved in one process (runtimes.measure.measure_interleaved: rounds alternate the
variants, so load drift on a shared machine hits all of them alike):

  (a) torch      PyTorch eager, inference_mode, torch.set_num_threads(T)
  (b) ort        torch.onnx.export(dynamo=True, opset 18) + ONNX Runtime, ORT_ENABLE_ALL
  (c) onnxslim   (b) after onnxslim.slim + ONNX Runtime, ORT_ENABLE_ALL
  (d) edgec      `edgec compile` artifact, loaded the way edgec's manifest records

All four run the same weights: edgec's seeded initialisation of the model, whose norm
statistics, norm affine parameters and attention biases are random (timm zero-initialises
residual BN gammas, which would make whole branches vanish and flatter every optimiser).
The weights are saved as a checkpoint and compiled with `--arch`, as a user would. Outputs
are checked against PyTorch.

    python bench/ort_fp32.py                      # the four models, 1 and 2 threads
    python bench/ort_fp32.py --models efficientvit_m0 --threads 1 --rounds 40

At 1 thread the median thread CPU time per call is recorded too (the latency on an idle core;
on a shared host the wall clock adds the wait for one). The ONNX sessions are opened through
bench/ort_sessions.py, which says why an untimed spare session is opened after them.

Figures are printed as a table and saved to bench/results/ort_fp32.json. The goal this
script checks: (d) at least 1.2x faster than the better of (b) and (c) on EfficientViT-M0
at 1 thread.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnx_ir as ir
import onnxruntime
import onnxslim
import torch
from ort_sessions import open_sessions

from edgec.config import CompileConfig
from edgec.cost_model.cpu_time import interleaved_with_cpu_time
from edgec.device_profile import host_facts
from edgec.exporters.export import export_onnx, torch_outputs
from edgec.models import create
from edgec.pipeline import compile_model
from edgec.toolchain import toolchain_versions

MODELS = ["efficientvit_m0", "efficientvit_m4", "shvit_s1", "lowformer_b0"]
RESULTS = Path(__file__).parent / "results" / "ort_fp32.json"
GOAL = 1.2


@dataclasses.dataclass
class Build:
    """One model's four variants on disk (built once, timed at every thread count)."""

    module: torch.nn.Module
    x: np.ndarray
    files: dict[str, Path]  # variant tag → ONNX file
    info: dict


def build(name: str, work: Path) -> Build:
    """Export the plain and onnxslim graphs and compile edgec's artifact from one checkpoint."""
    module = create(name).eval()
    checkpoint = work / f"{name}.pth"
    torch.save(module.state_dict(), checkpoint)
    shape = tuple(module.pretrained_cfg["input_size"])
    x = np.random.default_rng(0).standard_normal((1, *shape)).astype(np.float32)

    plain = work / f"{name}.plain.onnx"
    ir.save(export_onnx(module, shape), plain)
    slim = work / f"{name}.slim.onnx"
    onnx.save(onnxslim.slim(onnx.load(plain)), slim)
    manifest = compile_model(
        CompileConfig(
            model=str(checkpoint), arch=name, out=str(work / f"{name}.edgec"), measure=False
        )
    )
    artifact = work / f"{name}.edgec" / manifest["artifact"]["path"]
    info = {
        "nodes": {
            "plain": len(onnx.load(plain).graph.node),
            "onnxslim": len(onnx.load(slim).graph.node),
            "edgec": manifest["graph"]["compiled"]["node_count"],
        },
        "edgec_passes": [p["id"] for p in manifest["passes"] if p["modified"]],
    }
    return Build(module, x, {"ort": plain, "onnxslim": slim, "edgec": artifact}, info)


def variants(built: Build, threads: int, sessions: dict) -> tuple[dict, dict]:
    """Callables of the four variants at `threads` (the ONNX ones on `sessions`), and each
    ONNX variant's max |Δ| vs torch."""
    torch.set_num_threads(threads)
    feeds = {"input": built.x}
    xt = torch.from_numpy(built.x)

    def run_torch():
        with torch.inference_mode():
            built.module(xt)

    fns = {"torch": run_torch, **{tag: s.bound(feeds) for tag, s in sessions.items()}}
    reference = torch_outputs(built.module, built.x)[0]
    errors = {
        tag: float(np.abs(s.run(feeds)[s.output_names[0]] - reference).max())
        for tag, s in sessions.items()
    }
    return fns, errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=MODELS)
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--per-round", type=int, default=10)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    rows = []
    with tempfile.TemporaryDirectory(prefix="edgec-bench-") as tmp:
        for name in args.models:
            print(f"{name}: exporting and compiling the variants …", file=sys.stderr)
            built = build(name, Path(tmp))
            for threads in args.threads:
                print(f"{name} @ {threads} thread(s): timing …", file=sys.stderr)
                # bench/ort_sessions.py: without the spare session, the one opened last
                # (edgec's) ran a few per cent faster than the others
                with open_sessions(built.files, threads) as sessions:
                    fns, errors = variants(built, threads, sessions)
                    stats, cpu = interleaved_with_cpu_time(
                        fns,
                        warmup=10,
                        rounds=args.rounds,
                        per_round=args.per_round,
                        threads=threads,
                    )
                best_baseline = min(stats["ort"].p50_ms, stats["onnxslim"].p50_ms)
                rows.append(
                    {
                        "model": name,
                        "threads": threads,
                        "p50_ms": {tag: round(s.p50_ms, 4) for tag, s in stats.items()},
                        "p10_ms": {tag: round(s.p10_ms, 4) for tag, s in stats.items()},
                        "runs_each": stats["edgec"].runs,
                        "speedup_vs_best_onnx": round(best_baseline / stats["edgec"].p50_ms, 3),
                        "speedup_vs_torch": round(stats["torch"].p50_ms / stats["edgec"].p50_ms, 3),
                        **_cpu_time(cpu, threads),
                        "max_abs_diff_vs_torch": errors,
                        **built.info,
                    }
                )
                print(_row_text(rows[-1]), file=sys.stderr)
    report = {
        "benchmark": "bench/ort_fp32.py",
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "host": host_facts(),
        "python": platform.python_version(),
        "toolchain": toolchain_versions(),
        "onnxruntime_providers": onnxruntime.get_available_providers(),
        "protocol": (
            "batch 1; interleaved rounds, medians; ORT_ENABLE_ALL for (b)-(d); an untimed "
            "spare session opened after the timed ones (bench/ort_sessions.py); at 1 thread "
            "also the median thread CPU time per call (cpu_p50_ms)"
        ),
        "goal": f"edgec >= {GOAL}x the better of ort/onnxslim on efficientvit_m0 at 1 thread",
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(_table(rows))
    print(f"saved {args.out}")
    return 0


def _cpu_time(cpu: dict[str, float], threads: int) -> dict:
    """At 1 thread: median thread CPU ms per call and edgec's speedup on it (the latency on an
    idle core; a shared host's wall clock adds the time spent waiting for one). With more
    threads the pool threads' work is not counted, so nothing is recorded."""
    if threads != 1:
        return {}
    ms = {tag: seconds * 1e3 for tag, seconds in cpu.items()}
    return {
        "cpu_p50_ms": {tag: round(v, 4) for tag, v in ms.items()},
        "speedup_vs_best_onnx_cpu": round(min(ms["ort"], ms["onnxslim"]) / ms["edgec"], 3),
    }


def _row_text(row: dict) -> str:
    p = row["p50_ms"]
    return (
        f"  torch {p['torch']:.3f}  ort {p['ort']:.3f}  onnxslim {p['onnxslim']:.3f}  "
        f"edgec {p['edgec']:.3f} ms  → {row['speedup_vs_best_onnx']:.2f}x"
    ) + (
        f" (thread CPU time: {row['speedup_vs_best_onnx_cpu']:.3f}x)"
        if "speedup_vs_best_onnx_cpu" in row
        else ""
    )


def _table(rows: list[dict]) -> str:
    head = (
        "| model | threads | torch ms | ort ms | onnxslim ms | edgec ms | edgec vs best ONNX "
        "| edgec vs torch | nodes plain/slim/edgec |\n|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for r in rows:
        p, n = r["p50_ms"], r["nodes"]
        lines.append(
            f"| {r['model']} | {r['threads']} | {p['torch']:.3f} | {p['ort']:.3f} "
            f"| {p['onnxslim']:.3f} | {p['edgec']:.3f} | {r['speedup_vs_best_onnx']:.2f}x "
            f"| {r['speedup_vs_torch']:.2f}x | {n['plain']}/{n['onnxslim']}/{n['edgec']} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
