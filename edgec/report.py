"""report.md: what a person reads after a compile, rendered from the manifest alone."""

from __future__ import annotations

from typing import Any


def render_report(m: dict[str, Any]) -> str:
    """Markdown for one compile; every number comes from the manifest `m`."""
    if "graphs" in m:
        return _render_graphs(m)
    model, target, artifact = m["model"], m["target"], m["artifact"]
    lines = [
        f"# {model['name']} → {target['name']} ({artifact['runtime']})",
        "",
        f"- artifact: `{artifact['path']}` ({m['precision']['realised']})",
        f"- input: `{m['input']['source']}` ({m['input']['kind']})",
        *[f"- note: {note}" for note in m["input"]["notes"]],
        *[f"- note: {note}" for note in artifact.get("notices", [])],
        f"- model input: {_io(model['inputs'])}; output: {_io(model['outputs'])}",
        "",
        "## Fidelity against PyTorch (fp32)",
        "",
        *_fidelity(m),
        "",
        "## Latency",
        "",
        *_latency(m["latency"]),
        *_charts(m),
        *_devices(m.get("device_estimates", [])),
        "",
        "## Passes",
        "",
        "| pass | changed | nodes | what it did |",
        "|---|---|---|---|",
        *[_pass_row(p) for p in m["passes"]],
        "",
        "## Graph",
        "",
        *_graph(m["graph"]),
        *_growth(m["graph"], m["passes"]),
        "",
        "## Run it",
        "",
        *_usage(artifact, model),
        "",
        f"Preprocessing (also stored in the model's metadata as `edgec.preprocessing`): "
        f"`{model['preprocessing']}`",
        "",
    ]
    return "\n".join(lines)


def _render_graphs(m: dict[str, Any]) -> str:
    """A model deployed as several graphs (EfficientTAM): one section per graph."""
    target, frame = m["target"], m["latency"]
    lines = [
        f"# {m['model']['name']} → {target['name']} ({len(m['graphs'])} graphs)",
        "",
        f"- input: `{m['input']['source']}` ({m['input']['kind']})",
        *[f"- note: {note}" for note in m["input"]["notes"]],
        "- per tracked frame: "
        + (
            f"{frame['per_frame_ms']:.3f} ms {frame['method']} ({frame['note']})"
            if frame["method"] in ("measured", "estimated")
            else f"not measured: {frame['reason']}"
        ),
        "",
        "| graph | runs when | file | max abs diff vs PyTorch | ms (p50 or estimate) | nodes |",
        "|---|---|---|---|---|---|",
    ]
    for g in m["graphs"]:
        final = g["fidelity"]["final_vs_pytorch"]
        worst = max(o["max_abs"] for o in final["outputs"])
        p50 = g["latency"].get("p50_ms", g["latency"].get("total_ms"))
        lines.append(
            f"| {g['name']} | {g['used_when']} | `{g['artifact']['path']}` | {worst:.3g} "
            f"| {'–' if p50 is None else f'{p50:.3f}'} | {g['graph']['compiled']['node_count']} |"
        )
    lines += ["", "## How the graphs connect (the app carries these values)", ""]
    lines += [f"- `{c['from']}` → `{c['to']}` ({c['when']})" for c in m["connections"]]
    for g in m["graphs"]:
        lines += ["", f"## {g['name']}", "", f"- inputs: {_io(g['inputs'])}"]
        lines += [f"- outputs: {_io(g['outputs'])}", f"- dynamic: `{g['dynamic']}`", ""]
        lines += ["| pass | changed | nodes | what it did |", "|---|---|---|---|"]
        lines += [_pass_row(p) for p in g["passes"]]
    return "\n".join([*lines, ""])


def _usage(artifact: dict[str, Any], model: dict[str, Any]) -> list[str]:
    """The backend's own snippet (`artifact.usage`, e.g. Swift for Core ML), else ORT Python."""
    if "usage" in artifact:
        return [f"```{artifact['usage']['language']}", artifact["usage"]["code"], "```"]
    return [
        "```python",
        "import numpy as np, onnxruntime as ort",
        f'session = ort.InferenceSession("{artifact["path"]}", providers=["CPUExecutionProvider"])',
        f"x = np.zeros({_shape(model['inputs'][0])}, np.float32)  # preprocess as below",
        f'(output,) = session.run(None, {{"{model["inputs"][0]["name"]}": x}})',
        "```",
    ]


def _io(values: list[dict[str, Any]]) -> str:
    return ", ".join(f"`{v['name']}` {v['dtype']} {v['shape']}" for v in values)


def _shape(value: dict[str, Any]) -> tuple:
    return tuple(d if isinstance(d, int) else 1 for d in value["shape"])


def _fidelity(m: dict[str, Any]) -> list[str]:
    rows = ["| stage | max abs diff | allowed | cosine | passed |", "|---|---|---|---|---|"]
    inputs = m["verification_inputs"]
    for stage, result in m["fidelity"].items():
        for out in result["outputs"]:
            allowed = (
                f"{out['allowed']:.3g}"
                if out["allowed"] is not None
                else f"cosine ≥ {result['min_cosine']}"
            )
            rows.append(
                f"| {stage} `{out['name']}` | {out['max_abs']:.3g} | {allowed} "
                f"| {out['cosine']:.8f} | {'yes' if out['passed'] else 'NO'} |"
            )
    rows.append("")
    rows.append(f"On {inputs['count']} input(s), {inputs['kind']}: {inputs['source']}.")
    return rows + _quantization(m.get("quantization"))


def _quantization(q: dict[str, Any] | None) -> list[str]:
    """The quantized layers by precision and the fidelity against the float graph."""
    if not q:
        return []
    rows = [""]
    if "summary" in q:
        counts = ", ".join(f"{n} {p}" for p, n in q["summary"].items())
        rows.append(f"Layers by precision (docs/quantization.md): {counts}.")
    fid = q.get("fidelity_vs_float")
    if fid:
        agree = f"top-1 agreement {fid['top1_agreement']:.2%}, " if "top1_agreement" in fid else ""
        rows.append(
            f"Against the float graph on {fid['samples']} {fid['where']}: {agree}"
            f"mean cosine {fid['cosine_mean']:.5f} (min {fid['cosine_min']:.5f})."
        )
    return rows


def _latency(latency: dict[str, Any]) -> list[str]:
    if latency.get("method") == "estimated":
        return _estimated(latency)
    if latency.get("method") != "measured":
        return [f"Not measured: {latency['reason']}."]
    rows = [
        f"Measured on this host, batch {latency['batch']}, {latency['threads']} thread(s), "
        f"{latency['runs']} timed runs after {latency['warmup']} warm-up runs.",
        "",
        "| p50 ms | p90 ms | p99 ms | mean ms |",
        "|---|---|---|---|",
        f"| {latency['p50_ms']:.3f} | {latency['p90_ms']:.3f} | {latency['p99_ms']:.3f} "
        f"| {latency['mean_ms']:.3f} |",
    ]
    by_type = (latency.get("per_op") or [])[:8]
    if by_type:
        rows += [
            "",
            "Where the time goes (ORT profiler, per op type; profiling slows every kernel a "
            "little, so read the shares, not the absolute times):",
            "",
        ]
        rows += ["| op | profiled ms per run | share |", "|---|---|---|"]
        for o in by_type:
            rows.append(f"| {o['op_type']} | {o['us_per_run'] / 1000:.3f} | {o['share']:.1%} |")
    return rows


def _estimated(e: dict[str, Any]) -> list[str]:
    """The cost model's estimate: marked as one, with its expected error and breakdown."""
    error = e["expected_error"]
    spread = (
        f"expected error ±{error['median_pct']:.0f} % (median; worst {error['max_pct']:.0f} %, "
        f"{error['method']})"
        if error.get("median_pct") is not None
        else "expected error unknown (no published measurements to check it against)"
    )
    low, high = e["range_ms"] or (None, None)
    rows = [
        f"**Estimated, not measured**: {e['total_ms']:.3f} ms per image on {e['device']} "
        f"({e['precision']}, {e['unit']['kind']}: {e['unit']['name']}); {spread}.",
        "",
        f"Likely range {low:.3f}–{high:.3f} ms. " if low is not None else "",
        f"Calibration: {e['calibration']['how']}. Peak used: {e['unit']['peak']}.",
        "",
        "| op class | estimated ms | share |",
        "|---|---|---|",
    ]
    total = e["total_ms"] or 1.0
    rows += [f"| {c} | {ms:.3f} | {ms / total:.1%} |" for c, ms in e["by_class_ms"].items()]
    slowest = sorted(e["per_kernel"], key=lambda k: -k["ms"])[:8]
    rows += ["", "| slowest kernels (fused nodes) | class | ms | bound |", "|---|---|---|---|"]
    rows += [
        f"| {'+'.join(k['op_types'])[:60]} (`{k['name']}`) | {k['class']} | {k['ms']:.4f} "
        f"| {k['bound']} |"
        for k in slowest
    ]
    for f in e["fallbacks"]:
        cost = "" if f["extra_ms"] is None else f", +{f['extra_ms']:.3f} ms if it happens"
        where = "included in the total" if f["in_total"] else "not included"
        rows.append(
            f"- fallback ({f['kind']}, {where}): {f['what']} — {len(f['nodes'])} node(s){cost}"
        )
    return rows


def _charts(m: dict[str, Any]) -> list[str]:
    from edgec.report_data import chart_names

    return [line for name in chart_names(m) for line in ("", f"![{name}]({name})")]


def _devices(rows: list[dict[str, Any]]) -> list[str]:
    """This graph on every device profile (estimates; measured where it was)."""
    if not rows:
        return []
    lines = [
        "",
        "On other devices (this graph, each at its default precision — where it was measured, "
        "at the measured precision; estimates, not measurements):",
        "",
        "| device | precision | estimate ms | expected error (median over its validation set) "
        "| measured ms |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        error = r.get("expected_error_pct")
        error = f"±{error:.0f} %" if error is not None else r.get("reason", "unknown")
        lines.append(
            f"| {r['device']} | {r['precision']} | {_ms(r.get('estimate_ms'))} | {error} "
            f"| {_ms(r.get('measured_ms'))} |"
        )
    notes = [f"- {r['device']}: {r['note']}" for r in rows if r.get("note")]
    return lines + (["", *notes] if notes else [])


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _pass_row(p: dict[str, Any]) -> str:
    stats = ", ".join(f"{k}={v}" for k, v in p["stats"].items()) or "–"
    nodes = f"{p['nodes_before']} → {p['nodes_after']}"
    return f"| `{p['id']}` | {'yes' if p['modified'] else 'no'} | {nodes} | {stats} |"


_GRAPH_FIGURES = (
    ("nodes", lambda g: g["node_count"]),
    ("parameters", lambda g: g["parameters"]["count"]),
    ("MACs", lambda g: g["macs"]["total"]),
)


def _graph(graph: dict[str, Any]) -> list[str]:
    rows = ["| | exported | compiled |", "|---|---|---|"]
    for title, read in _GRAPH_FIGURES:
        rows.append(
            f"| {title} | {_num(read(graph['exported']))} | {_num(read(graph['compiled']))} |"
        )
    return rows


def _growth(graph: dict[str, Any], passes: list[dict[str, Any]]) -> list[str]:
    """Why the compiled graph holds more parameters or MACs than the export, when it does:
    the passes that trade them for fewer kernels say so in their stats."""
    before, after = graph["exported"], graph["compiled"]
    grew = [
        title
        for title, read in _GRAPH_FIGURES[1:]
        if isinstance(read(after), int)
        and isinstance(read(before), int)
        and read(after) > read(before)
    ]
    added = [
        f"`{p['id']}` ({', '.join(f'{k}={v:,}' for k, v in p['stats'].items() if k in _ADDED)})"
        for p in passes
        if any(k in _ADDED for k in p["stats"])
    ]
    if not grew:
        return []
    why = f", traded for fewer, faster kernels by {', '.join(added)}" if added else ""
    return ["", f"The compiled graph has more {' and '.join(grew)} than the export{why}."]


_ADDED = ("weights_added", "macs_added")


def _num(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)
