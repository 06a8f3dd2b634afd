"""How much of EfficientViT-M's attention time in the model is cache refill: blocks alone, warm
and cold.

The model is built as bench/attention.py builds it (pipeline "default", plus "no_attention":
every attention mixer replaced by the identity), and each compiled attention block is cut out
as a graph of its own (attention_blocks.block_graphs). Every round times, in one process at 1
thread:

  model          the whole graph, and the attention-free graph: p50(default) −
                 p50(no_attention) is the attention's time in the model
  cold           each block right after copying `--evict-mb` MB (default 12, more than this
                 CPU's L2 and about the model's fp32 weights), as the rest of the model
                 evicts the caches between two visits of a block
  warm           the same block again at once, its code and data still in cache

The gap between the cold and warm sums is what refilling the caches costs after a full
eviction; divided by the blocks' node count it is the refill per node. The attention's time in
the model lies between the two sums (the model evicts less than the copy does): what it spends
above the warm sum is what it loses to the caches there. Medians of the wall clock; the
eviction copy is never inside a timed call.

    python bench/attention_cache.py                       # efficientvit_m0, 200 rounds
    python bench/attention_cache.py --model efficientvit_m2 --rounds 100

Figures are printed and saved to bench/results/attention_cache.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from attention import NO_ATTENTION, build, comparisons
from attention_blocks import block_graphs

from edgec.device_profile import host_facts
from edgec.runtimes import ort
from edgec.toolchain import toolchain_versions

RESULTS = Path(__file__).parent / "results" / "attention_cache.json"


def time_rounds(models: dict, blocks: dict, evict_mb: float, rounds: int) -> dict[str, dict]:
    """Median ms of each model run and of each block cold and warm (module docstring)."""
    source = np.ones(int(evict_mb * 2**20) // 4, np.float32)
    sink = np.empty_like(source)
    samples: dict[str, dict[str, list[float]]] = {
        "model": {tag: [] for tag in models},
        "cold": {tag: [] for tag in blocks},
        "warm": {tag: [] for tag in blocks},
    }

    def timed(run) -> float:
        start = time.perf_counter()
        run()
        return (time.perf_counter() - start) * 1e3

    for run in [*models.values(), *blocks.values()]:
        run()
    for _ in range(rounds):
        for tag, run in models.items():
            samples["model"][tag].append(timed(run))
        for tag, run in blocks.items():
            np.copyto(sink, source)
            samples["cold"][tag].append(timed(run))
            samples["warm"][tag].append(timed(run))
    return {
        kind: {tag: round(statistics.median(values), 4) for tag, values in by_tag.items()}
        for kind, by_tag in samples.items()
    }


def summary(medians: dict[str, dict], nodes: dict[str, int]) -> dict[str, float]:
    """The sums and the refill per node that the figures come down to."""
    cold, warm = sum(medians["cold"].values()), sum(medians["warm"].values())
    in_model = medians["model"]["default"] - medians["model"][NO_ATTENTION]
    return {
        "blocks_warm_ms": round(warm, 4),
        "blocks_cold_ms": round(cold, 4),
        "attention_in_model_ms": round(in_model, 4),
        "in_model_above_warm_ms": round(in_model - warm, 4),
        "refill_us_per_node": round((cold - warm) * 1e3 / sum(nodes.values()), 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="efficientvit_m0")
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--evict-mb", type=float, default=12.0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    default = {"default": comparisons()["cga_fusion"]["default"]}
    with tempfile.TemporaryDirectory(prefix="edgec-bench-cache-") as tmp:
        print(f"{args.model}: exporting, building default / {NO_ATTENTION} …", file=sys.stderr)
        built = build(args.model, default, Path(tmp), floor=True)
        cut = Path(tmp) / "blocks"
        cut.mkdir()
        files = block_graphs(built.files["default"], cut)
        nodes = {tag: len(onnx.load(path).graph.node) for tag, path in files.items()}
        runners = {tag: ort.load(path, threads=1) for tag, path in files.items()}
        models = {tag: ort.load(built.files[tag], threads=1) for tag in ("default", NO_ATTENTION)}
        print(f"timing {len(files)} blocks, {args.rounds} rounds …", file=sys.stderr)
        medians = time_rounds(
            {tag: r.bound({"input": built.x}) for tag, r in models.items()},
            {tag: r.bound(r.example_feeds()) for tag, r in runners.items()},
            args.evict_mb,
            args.rounds,
        )
        for runner in [*runners.values(), *models.values()]:
            runner.close()
    report = {
        "benchmark": "bench/attention_cache.py",
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "host": host_facts(),
        "python": platform.python_version(),
        "toolchain": toolchain_versions(),
        "model": args.model,
        "protocol": (
            f"batch 1, 1 thread, ORT_ENABLE_ALL; {args.rounds} rounds, each: the model and the "
            f"attention-free model once, then every block after a {args.evict_mb} MB copy "
            "(cold) and again at once (warm); medians of the wall clock"
        ),
        "block_nodes": nodes,
        "median_ms": medians,
        "summary": summary(medians, nodes),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(_table(report))
    print(f"saved {args.out}")
    return 0


def _table(report: dict) -> str:
    medians, total = report["median_ms"], report["summary"]
    lines = ["| block | nodes | warm µs | cold µs | cold / warm |", "|---|---|---|---|---|"]
    for tag, nodes in report["block_nodes"].items():
        warm, cold = medians["warm"][tag], medians["cold"][tag]
        lines.append(
            f"| {tag} | {nodes} | {warm * 1e3:.1f} | {cold * 1e3:.1f} | {cold / warm:.2f}x |"
        )
    lines.append(
        f"blocks warm {total['blocks_warm_ms']:.3f} ms, cold {total['blocks_cold_ms']:.3f} ms; "
        f"attention in the model (default − {NO_ATTENTION}) {total['attention_in_model_ms']:.3f} "
        f"ms ({total['in_model_above_warm_ms']:.3f} ms above warm); full refill "
        f"{total['refill_us_per_node']:.2f} µs per node"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
