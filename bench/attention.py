"""What the attention passes buy on ONNX Runtime (CPU): cga_fusion and split_heads, A/B.

Two comparisons, each model exported once (batch 1, its default resolution, edgec's seeded
weights) and each variant built once from that export, then timed interleaved in one process
(runtimes.measure.measure_interleaved: rounds alternate the variants, so load drift on a
shared machine hits all of them alike); medians are reported.

  cga_fusion  EfficientViT-M0…M5: pipeline "default" vs the same pipeline without
              attention::cga_fusion ("no_cga"). speed::window_layout, which runs after it,
              only matches the grouped projection cga_fusion puts up front; without it the
              pass finds nothing (its stats are recorded per variant). A third graph,
              "no_attention" (the same model with every attention mixer replaced by the
              identity, pipeline "default"), is timed with them: p50(variant) − p50(no_attention)
              is the wall-clock time the attention blocks take in that variant, and
              p50(no_cga) / p50(no_attention) the most any attention rewrite could gain.
  split_heads deit_tiny_patch16_224, lowformer_b0: pipeline "ane" (default + split_heads,
              what the Neural Engine profiles run) vs "default" (the same without it). The
              highest tensor rank in each graph is reported (the per-head graphs must stay ≤ 4).

Per variant: ORT latency at each thread count, op counts, pass statistics, max |Δ| against
PyTorch, the median thread CPU time per call at 1 thread (on a shared host the wall clock
includes waiting for a core; the CPU time does not), and per-block time: ORT's profiler
(runtimes/ort_profile.py, 1 thread) summed per attention block (bench/attention_blocks.py
says how nodes are attributed to blocks). The
profiler adds a fixed cost to every node, so it overstates blocks of many small nodes (the
unfused attention most): quote the wall-clock attention time, not the profiled ratio.

    python bench/attention.py                               # everything, 1 and 2 threads
    python bench/attention.py --models efficientvit_m0 --split-models --threads 1 --rounds 40

Figures are printed as tables and saved to bench/results/attention.json. Goals (issue 5):
cga_fusion ≥ 1.15× on EfficientViT-M0 at 1 thread; split_heads costs ≤ 10 % on ORT.
"""

from __future__ import annotations

import argparse
import collections
import copy
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
import torch
from attention_blocks import OTHER, block_times, label_blocks, node_blocks
from ort_sessions import open_sessions

import edgec.passes  # noqa: F401  (registers every pass)
from edgec.cost_model.cpu_time import interleaved_with_cpu_time
from edgec.device_profile import host_facts
from edgec.exporters.export import export_onnx, torch_outputs
from edgec.models import create
from edgec.pass_manager import run_passes
from edgec.pipelines import pipeline
from edgec.runtimes import ort
from edgec.toolchain import toolchain_versions

CGA = "attention::cga_fusion"
CGA_MODELS = [f"efficientvit_m{i}" for i in range(6)]
SPLIT_MODELS = ["deit_tiny_patch16_224", "lowformer_b0"]
# name scopes that are one attention block: EfficientViT's residual mixer, timm ViT / LowFormer attn
BLOCK_SUFFIXES = (".mixer", ".attn")
RESULTS = Path(__file__).parent / "results" / "attention.json"
CGA_GOAL = 1.15  # default vs no_cga on efficientvit_m0, 1 thread
SPLIT_BUDGET = 1.10  # ane / default latency
MAX_RANK = 4


def comparisons() -> dict[str, dict[str, list[str]]]:
    """Comparison → variant tag → pass ids (the first variant is the one with the pass)."""
    default = pipeline("default")
    return {
        "cga_fusion": {"default": default, "no_cga": [p for p in default if p != CGA]},
        "split_heads": {"ane": pipeline("ane"), "default": pipeline("default")},
    }


@dataclasses.dataclass
class Build:
    """One model's variants on disk (built once, timed at every thread count)."""

    module: torch.nn.Module
    x: np.ndarray
    files: dict[str, Path]  # variant tag → ONNX file
    info: dict[str, dict]  # variant tag → op counts, pass stats, max rank, ...


NO_ATTENTION = "no_attention"


def without_attention(module: torch.nn.Module) -> torch.nn.Module:
    """A copy of an EfficientViT-M whose residual attention mixers are the identity.

    Each mixer is `x + attention(x)`; replacing the whole mixer by the identity removes the
    attention and keeps everything else (convolutions, FFNs, patch merging) as it was.
    """
    stripped = copy.deepcopy(module)
    mixers = [n for n, _ in stripped.named_modules() if n.endswith(".mixer")]
    if not mixers:
        raise ValueError(f"{type(module).__name__} has no '.mixer' attention blocks")
    for path in mixers:
        parent, _, leaf = path.rpartition(".")
        setattr(stripped.get_submodule(parent), leaf, torch.nn.Identity())
    return stripped


def build(name: str, variants: dict[str, list[str]], work: Path, *, floor: bool = False) -> Build:
    """Export `name` once; run each variant's passes on a copy and write it for ORT.

    With `floor`, also the model without attention (`without_attention`) through the first
    variant's passes, as variant `no_attention`: timed alongside, never compared numerically.
    """
    module = create(name).eval()
    shape = tuple(module.pretrained_cfg["input_size"])
    x = np.random.default_rng(0).standard_normal((1, *shape)).astype(np.float32)
    exported = work / f"{name}.export.onnx"
    ir.save(export_onnx(module, shape), exported)
    reference = torch_outputs(module, x)[0]
    files, info = {}, {}
    for tag, pass_ids in variants.items():
        model = ir.load(exported)
        records = run_passes(model, pass_ids)
        label_blocks(model, BLOCK_SUFFIXES)
        art = ort.emit(model, work, name=f"{name}.{tag}")
        files[tag] = art.path
        with ort.load(art.path, threads=1) as session:
            out = session.run({"input": x})[session.output_names[0]]
        info[tag] = {
            "nodes": len(onnx.load(art.path).graph.node),
            "ops": _op_counts(art.path),
            "max_rank": _max_rank(art.path),
            "max_abs_diff_vs_torch": float(np.abs(out - reference).max()),
            "pass_stats": {r.id: r.stats for r in records if r.stats},
        }
    if floor:
        stripped = export_onnx(without_attention(module), shape)
        run_passes(stripped, next(iter(variants.values())))
        files[NO_ATTENTION] = ort.emit(stripped, work, name=f"{name}.{NO_ATTENTION}").path
        info[NO_ATTENTION] = {"nodes": len(onnx.load(files[NO_ATTENTION]).graph.node)}
    return Build(module, x, files, info)


def _op_counts(path: Path) -> dict[str, int]:
    counts = collections.Counter(n.op_type for n in onnx.load(path).graph.node)
    return dict(sorted(counts.items()))


def _max_rank(path: Path) -> int:
    """The highest rank of any tensor in the graph (shapes from ONNX shape inference)."""
    graph = onnx.shape_inference.infer_shapes(onnx.load(path)).graph
    values = [*graph.input, *graph.output, *graph.value_info]
    ranks = [len(v.type.tensor_type.shape.dim) for v in values]
    ranks += [len(t.dims) for t in graph.initializer]
    return max(ranks)


def per_block(built: Build, runs: int) -> dict[str, dict[str, float]]:
    """Variant → block → profiled µs per run at 1 thread (`total` too)."""
    out = {}
    for tag, path in built.files.items():
        if tag == NO_ATTENTION:
            continue
        rows = ort.profile_ops(path, {"input": built.x}, threads=1, runs=runs)
        times = block_times(rows, node_blocks(path))
        times["total"] = round(sum(times.values()), 2)
        out[tag] = times
    return out


def time_variants(
    built: Build, threads: int, rounds: int, per_round: int
) -> tuple[dict, dict[str, float]]:
    """Wall-time stats per variant and median thread CPU ms per call (bench/ort_sessions.py
    says why the sessions are opened through `open_sessions`)."""
    with open_sessions(built.files, threads) as sessions:
        fns = {tag: s.bound({"input": built.x}) for tag, s in sessions.items()}
        stats, cpu = interleaved_with_cpu_time(
            fns, warmup=10, rounds=rounds, per_round=per_round, threads=threads
        )
    return stats, {tag: seconds * 1e3 for tag, seconds in cpu.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=CGA_MODELS, help="cga_fusion A/B")
    parser.add_argument("--split-models", nargs="*", default=SPLIT_MODELS, help="split_heads A/B")
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--per-round", type=int, default=10)
    parser.add_argument("--profile-runs", type=int, default=30, help="0: no per-block profile")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    plans = comparisons()
    jobs = [("cga_fusion", m) for m in args.models] + [
        ("split_heads", m) for m in args.split_models
    ]
    rows = []
    with tempfile.TemporaryDirectory(prefix="edgec-bench-attn-") as tmp:
        for comparison, name in jobs:
            variants = plans[comparison]
            with_pass, without = list(variants)
            print(f"{name}: exporting, building {with_pass} / {without} …", file=sys.stderr)
            built = build(name, variants, Path(tmp), floor=comparison == "cga_fusion")
            blocks = per_block(built, args.profile_runs) if args.profile_runs else None
            for threads in args.threads:
                print(f"{name} @ {threads} thread(s): timing …", file=sys.stderr)
                stats, cpu = time_variants(built, threads, args.rounds, args.per_round)
                p50 = {tag: s.p50_ms for tag, s in stats.items()}
                rows.append(
                    {
                        "comparison": comparison,
                        "model": name,
                        "threads": threads,
                        "variants": {tag: pipeline_of(plans, comparison, tag) for tag in stats},
                        "p50_ms": {tag: round(v, 4) for tag, v in p50.items()},
                        "p10_ms": {tag: round(s.p10_ms, 4) for tag, s in stats.items()},
                        "runs_each": stats[with_pass].runs,
                        "speedup": round(p50[without] / p50[with_pass], 3),
                        **_attention_wall_clock(p50, with_pass, without),
                        **_cpu_time(cpu, threads, with_pass, without),
                        **({"profile_us_per_block_1thread": blocks} if blocks else {}),
                        "build": built.info,
                    }
                )
                print("  " + _row_text(rows[-1]), file=sys.stderr)
    report = {
        "benchmark": "bench/attention.py",
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "host": host_facts(),
        "python": platform.python_version(),
        "toolchain": toolchain_versions(),
        "onnxruntime_providers": onnxruntime.get_available_providers(),
        "protocol": (
            "batch 1; ORT_ENABLE_ALL; interleaved rounds, medians; speedup = p50 without the "
            "pass / p50 with it; at 1 thread also the median thread CPU time per call "
            "(cpu_p50_ms, speedup_cpu); an untimed spare session is opened after the timed "
            "ones (bench/ort_sessions.py); per-block figures from ORT's profiler at 1 thread "
            "(shares matter, the profiler slows everything down)"
        ),
        "goals": {
            "cga_fusion": f"default >= {CGA_GOAL}x no_cga on efficientvit_m0 at 1 thread",
            "split_heads": f"ane <= {SPLIT_BUDGET}x default latency; max tensor rank <= {MAX_RANK}",
        },
        "goals_met": _goals(rows),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(_table(rows))
    print(_block_table(rows))
    print(f"goals met: {report['goals_met']}")
    print(f"saved {args.out}")
    return 0


def pipeline_of(plans: dict, comparison: str, tag: str) -> str:
    """How a variant is made, in words ("pipeline default", "default minus …")."""
    if comparison == "cga_fusion" and tag == "no_cga":
        return f"default minus {CGA}"
    if tag == NO_ATTENTION:
        return "the model with its attention mixers replaced by the identity, pipeline default"
    return f"pipeline {tag}"


def _goals(rows: list[dict]) -> dict[str, bool | None]:
    cga = [r for r in rows if r["model"] == "efficientvit_m0" and r["threads"] == 1]
    split = [r for r in rows if r["comparison"] == "split_heads"]
    return {
        "cga_fusion": cga[0]["speedup"] >= CGA_GOAL if cga else None,
        "split_heads_cost": all(1 / r["speedup"] <= SPLIT_BUDGET for r in split) if split else None,
        "split_heads_rank": (
            all(r["build"]["ane"]["max_rank"] <= MAX_RANK for r in split) if split else None
        ),
    }


def _attention_wall_clock(p50: dict[str, float], with_pass: str, without: str) -> dict:
    """Wall-clock attention time per variant (p50 minus the attention-free graph's p50), the
    attention's own speedup, and the end-to-end ceiling of any attention rewrite."""
    if NO_ATTENTION not in p50:
        return {}
    floor = p50[NO_ATTENTION]
    attention = {tag: round(p50[tag] - floor, 4) for tag in (with_pass, without)}
    return {
        "attention_ms": attention,
        "attention_speedup": round(attention[without] / attention[with_pass], 3),
        "ceiling_speedup": round(p50[without] / floor, 3),
    }


def _cpu_time(cpu: dict[str, float], threads: int, with_pass: str, without: str) -> dict:
    """Median thread CPU ms per call, and the speedup on it: at 1 thread ORT runs on the
    calling thread, so this is the latency on an idle core (what a shared host's wall clock
    hides); with more threads the pool's work is not counted, so nothing is recorded."""
    if threads != 1:
        return {}
    return {
        "cpu_p50_ms": {tag: round(ms, 4) for tag, ms in cpu.items()},
        "speedup_cpu": round(cpu[without] / cpu[with_pass], 3),
    }


def _row_text(row: dict) -> str:
    times = "  ".join(f"{tag} {ms:.3f}" for tag, ms in row["p50_ms"].items())
    text = f"{times} ms → {row['speedup']:.3f}x"
    if "speedup_cpu" in row:
        text += f" (thread CPU time: {row['speedup_cpu']:.3f}x)"
    if "attention_ms" in row:
        text += (
            f" (attention {row['attention_speedup']:.2f}x faster on its own; "
            f"ceiling {row['ceiling_speedup']:.2f}x)"
        )
    return text


def _table(rows: list[dict]) -> str:
    lines = [
        "| comparison | model | threads | with pass ms | without ms | speedup "
        "| attention ms with/without | ceiling | nodes with/without "
        "| max rank with/without | max abs diff vs torch |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        a, b = list(r["variants"])[:2]  # with the pass, without it
        pa, pb = r["p50_ms"][a], r["p50_ms"][b]
        ia, ib = r["build"][a], r["build"][b]
        attention = r.get("attention_ms")
        attention_text = f"{attention[a]:.3f}/{attention[b]:.3f}" if attention else "-"
        ceiling = f"{r['ceiling_speedup']:.2f}x" if attention else "-"
        lines.append(
            f"| {r['comparison']} ({a} vs {b}) | {r['model']} | {r['threads']} | {pa:.3f} "
            f"| {pb:.3f} | {r['speedup']:.3f}x | {attention_text} | {ceiling} "
            f"| {ia['nodes']}/{ib['nodes']} "
            f"| {ia['max_rank']}/{ib['max_rank']} "
            f"| {ia['max_abs_diff_vs_torch']:.1e}/{ib['max_abs_diff_vs_torch']:.1e} |"
        )
    return "\n".join(lines)


def _block_table(rows: list[dict]) -> str:
    """Per-block profiled µs (1 thread) with/without the pass, once per model."""
    lines = ["| model | block | with pass µs | without µs | ratio |", "|---|---|---|---|---|"]
    seen = set()
    for r in rows:
        blocks = r.get("profile_us_per_block_1thread")
        if not blocks or r["model"] in seen:
            continue
        seen.add(r["model"])
        a, b = list(blocks)
        for label in [*sorted({*blocks[a], *blocks[b]} - {"total"}), "total"]:
            ua, ub = blocks[a].get(label, 0.0), blocks[b].get(label, 0.0)
            ratio = f"{ub / ua:.2f}x" if ua else "-"
            if label == OTHER:
                label = "(outside attention blocks)"
            lines.append(f"| {r['model']} | {label} | {ua:.1f} | {ub:.1f} | {ratio} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
