"""Where the time goes in an ORT session: `profile_ops`, from ORT's own profiler.

    rows = profile_ops(art.path, {"input": x})  # one row per op type, slowest first

The trace ORT writes goes to a temporary folder and is reduced to per-op and per-node
shares (`_aggregate`); `edgec.runtimes.measure` remains the tool for latency.
"""

from __future__ import annotations

import json
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from edgec.artifact import Artifact
from edgec.runtimes.ort_session import CPU, import_ort, session_options


def profile_ops(
    path: Path | str | Artifact,
    feeds: dict[str, np.ndarray],
    *,
    threads: int = 1,
    runs: int = 20,
    optimization: str = "all",
) -> list[dict[str, Any]]:
    """Where the time goes, from ORT's profiler: one row per op type, slowest first.

    Row: `op_type`, `us_per_run` (kernel µs per inference), `share` (of all kernel time;
    rows sum to 1), `calls_per_run`, and `nodes` (each `name`, `us_per_run`, `share`,
    `provider`, slowest first). Op types are what ORT ran after its own fusions (e.g.
    `FusedConv`). One extra untimed run comes first and is left out. Profiling slows
    inference down, so use the shares, not the absolute times, and `measure` for latency.
    The trace is written to a temporary folder and deleted.
    """
    if runs < 1:
        raise ValueError(f"runs must be >= 1, got {runs}")
    path = path.path if isinstance(path, Artifact) else path
    ort = import_ort()
    with tempfile.TemporaryDirectory(prefix="edgec-ortprof-") as tmp:
        so = session_options(ort, threads=threads, optimization=optimization)
        so.enable_profiling = True
        so.profile_file_prefix = str(Path(tmp) / "ort_profile")
        session = ort.InferenceSession(str(path), so, providers=CPU)
        names = [o.name for o in session.get_outputs()]
        for _ in range(runs + 1):
            session.run(names, feeds)
        trace = Path(session.end_profiling())
        events = json.loads((trace if trace.is_absolute() else Path(tmp) / trace.name).read_text())
        del session
    return _aggregate(events)


def _aggregate(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`profile_ops` rows from trace events; kernels of the first (untimed) run are left out."""
    model_runs = sorted(
        (e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"),
        key=lambda e: e["ts"],
    )
    cutoff = model_runs[0]["ts"] + model_runs[0]["dur"] if len(model_runs) > 1 else -1
    n_runs = max(1, len(model_runs) - 1)
    per_node: dict[str, list] = {}  # name → [op, provider, µs, calls]
    for e in events:
        if e.get("cat") != "Node" or not e.get("name", "").endswith("_kernel_time"):
            continue
        if e["ts"] < cutoff:
            continue
        args = e.get("args", {})
        op = args.get("op_name", "?")
        name = e["name"][: -len("_kernel_time")] or f"<unnamed {op}>"
        row = per_node.setdefault(name, [op, args.get("provider", ""), 0.0, 0])
        row[2] += e["dur"]
        row[3] += 1
    total = sum(r[2] for r in per_node.values()) or 1.0
    by_op: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for name, (op, provider, us, calls) in per_node.items():
        by_op[op].append(
            {"name": name, "us_per_run": round(us / n_runs, 3), "share": round(us / total, 6),
             "provider": provider, "calls": calls}
        )  # fmt: skip
    rows = []
    for op, nodes in by_op.items():
        nodes.sort(key=lambda n: (-n["us_per_run"], n["name"]))
        rows.append(
            {
                "op_type": op,
                "us_per_run": round(sum(n["us_per_run"] for n in nodes), 3),
                "share": round(sum(n["share"] for n in nodes), 6),
                "calls_per_run": sum(n.pop("calls") for n in nodes) / n_runs,
                "nodes": nodes,
            }
        )
    rows.sort(key=lambda r: (-r["us_per_run"], r["op_type"]))
    return rows
