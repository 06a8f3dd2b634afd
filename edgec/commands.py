"""What each `edgec` subcommand does, returning text for people and data for `--json`."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from edgec.config import CompileConfig, load_config
from edgec.errors import UserError
from edgec.options import make_options
from edgec.progress import Progress


@dataclasses.dataclass
class CommandResult:
    text: str
    data: Any


def run(args) -> CommandResult:
    return {
        "compile": compile_command,
        "inspect": inspect_command,
        "profile": profile_command,
        "eval": eval_command,
        "zoo": zoo_command,
        "targets": targets_command,
    }[args.command](args)


def compile_command(args) -> CommandResult:
    from edgec.pipeline import compile_model

    # Every CompileConfig field has a CLI flag of the same name; `None` means "not given".
    overrides = {f.name: getattr(args, f.name, None) for f in dataclasses.fields(CompileConfig)}
    overrides["passes"] = parse_pass_options(args.pass_option) or None
    if args.config:
        config = load_config(Path(args.config), overrides)
    elif not args.model:
        raise UserError("no model given", "edgec compile MODEL --target host (or --config FILE)")
    else:
        given = {k: v for k, v in overrides.items() if v is not None}
        config = make_options(CompileConfig, given, "edgec compile")
    progress = Progress(enabled=not (args.quiet or args.json))
    manifest = compile_model(config, progress)
    return CommandResult(_compile_summary(manifest, config), manifest)


def parse_pass_options(items: list[str]) -> dict[str, dict[str, Any]]:
    """`cleanup::fold_constants:size_limit=10` → {"cleanup::fold_constants": {"size_limit": 10}}."""
    options: dict[str, dict[str, Any]] = {}
    for item in items:
        pass_id, sep, assignment = item.rpartition(":")
        key, eq, raw = assignment.partition("=")
        if not sep or not eq or "::" not in pass_id:
            raise UserError(
                f"--pass-option {item!r} is not PASS:KEY=VALUE",
                "e.g. --pass-option cleanup::fold_constants:size_limit=1000000",
            )
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        options.setdefault(pass_id, {})[key] = value
    return options


def _compile_summary(m: dict[str, Any], config: CompileConfig) -> str:
    from edgec.output_dir import default_out_dir

    out = Path(config.out) if config.out else default_out_dir(config.model, m["target"]["name"])
    if "graphs" in m:
        return _graphs_summary(m, out)
    latency = m.get("latency")
    final = m["fidelity"]["final_vs_pytorch"]
    worst = max(o["max_abs"] for o in final["outputs"])
    lines = [
        f"compiled {m['model']['name']} for {m['target']['name']} → {out / m['artifact']['path']}",
        f"  fidelity vs PyTorch: max|Δ| {worst:.3g} (passed)",
        f"  graph: {m['graph']['exported']['node_count']} → "
        f"{m['graph']['compiled']['node_count']} nodes",
    ]
    if latency["method"] == "measured":
        lines.append(
            f"  latency (measured, {latency['threads']} thread): p50 {latency['p50_ms']:.3f} ms, "
            f"p90 {latency['p90_ms']:.3f} ms"
        )
    elif latency["method"] == "estimated":
        pct = latency["expected_error"].get("median_pct")
        lines.append(
            f"  latency (ESTIMATED, not measured): {latency['total_ms']:.3f} ms on "
            f"{latency['device']}" + (f", ±{pct:.0f} % median error" if pct is not None else "")
        )
    lines.extend(_quantization_lines(m.get("quantization")))
    lines.extend(f"  note: {note}" for note in m["input"]["notes"])
    lines.extend(f"  note: {note}" for note in m["artifact"].get("notices", []))
    for pass_id in config.explain:
        lines.extend(_explanation(m, pass_id))
    return "\n".join(lines)


def _quantization_lines(q: dict[str, Any] | None) -> list[str]:
    """Layers per precision, fidelity vs float, and the most sensitive layers (if scored)."""
    if not q:
        return []
    lines = []
    if "summary" in q:
        lines.append("  layers: " + ", ".join(f"{n} {p}" for p, n in q["summary"].items()))
    if "int_only" in q:  # the checker's verdict (it fails the compile when anything is float)
        ops = ", ".join(sorted(q["int_only"]["ops"]))
        lines.append(f"  integer-only between input quantize and output dequantize: {ops}")
    fid = q.get("fidelity_vs_float")
    if fid:
        agree = f"top-1 agreement {fid['top1_agreement']:.2%}, " if "top1_agreement" in fid else ""
        lines.append(
            f"  vs float on {fid['samples']} calibration samples: {agree}"
            f"cosine {fid['cosine_mean']:.5f}"
        )
    scored = [layer for layer in q.get("layers", []) if layer.get("sensitivity") is not None]
    for layer in sorted(scored, key=lambda layer: -layer["sensitivity"])[:5]:
        fallback = f" → {layer['fallback']}" if layer["fallback"] else ""
        lines.append(
            f"  sensitivity {layer['sensitivity']:.3g}: {layer['name']} ({layer['op']}){fallback}"
        )
    return lines


def _graphs_summary(m: dict[str, Any], out: Path) -> str:
    """A model compiled as several graphs: one line per graph, then the per-frame figure."""
    lines = [
        f"compiled {m['model']['name']} for {m['target']['name']} → {out} "
        f"({len(m['graphs'])} graphs)"
    ]
    for g in m["graphs"]:
        worst = max(o["max_abs"] for o in g["fidelity"]["final_vs_pytorch"]["outputs"])
        p50 = g["latency"].get("p50_ms")
        timing = f", p50 {p50:.3f} ms" if p50 is not None else ""
        lines.append(f"  {g['artifact']['path']}: max|Δ| {worst:.3g} vs PyTorch{timing}")
    if m["latency"]["method"] == "measured":
        lines.append(f"  per tracked frame: {m['latency']['per_frame_ms']:.3f} ms (measured)")
    lines.extend(f"  note: {note}" for note in m["input"]["notes"])
    return "\n".join(lines)


def _explanation(m: dict[str, Any], pass_id: str) -> list[str]:
    """`--explain PASS`: what the pass did and why each candidate it left alone did not match."""
    record = next(r for r in m["passes"] if r["id"] == pass_id)
    stats = ", ".join(f"{k} {v}" for k, v in record["stats"].items()) or "nothing to do"
    lines = [f"  {pass_id}: {stats}"]
    lines.extend(f"    not matched: {line}" for line in record["explanations"])
    return lines


def inspect_command(args) -> CommandResult:
    from edgec.inspect import inspect_int_only, inspect_model

    run_inspect = inspect_int_only if args.int_only else inspect_model
    data = run_inspect(args.model, args.arch, args.num_classes, bool(args.allow_pickle))
    return CommandResult(data.pop("text"), data)


def profile_command(args) -> CommandResult:
    from edgec.profile_artifact import profile_directory, tensorrt_profile

    if args.runtime and not args.device:
        raise UserError(
            "--runtime goes with --device: it picks the runtime the estimate is for",
            "e.g. edgec profile DIR --device android --runtime qnn",
        )
    if args.device:
        return _estimate_command(
            Path(args.directory), args.device, args.runtime, args.precision, args.threads, args.runs
        )
    if args.tensorrt_profile:
        data = tensorrt_profile(Path(args.directory), Path(args.tensorrt_profile))
        return CommandResult(data.pop("text"), data)
    data = profile_directory(Path(args.directory), threads=args.threads, runs=args.runs)
    return CommandResult(data.pop("text"), data)


def _estimate_command(
    path: Path,
    device: str,
    runtime: str | None,
    precision: str | None,
    threads: int | None,
    runs: int,
) -> CommandResult:
    """`edgec profile DIR --device X [--runtime R]`: the cost model's estimate of DIR's
    artifact on X (with R, on the compute unit R runs on there); on the host (a measured
    target) the artifact is measured too and shown next to it."""
    from edgec.device_profile import load_device
    from edgec.estimate import estimate
    from edgec.runtime_choice import with_runtime

    realised = None  # the artifact's precision: what the host runs
    if path.is_dir():
        manifest = path / "manifest.json"
        if not manifest.is_file():
            raise UserError(f"{path} has no manifest.json", "give a compile's output or an .onnx")
        try:
            recorded = json.loads(manifest.read_text(encoding="utf-8"))
            path = path / recorded["artifact"]["path"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise UserError(f"{manifest} is not an edgec manifest: {exc!r}") from None
        realised = recorded.get("precision", {}).get("realised")
    profile = with_runtime(load_device(device), runtime)
    if profile.latency != "measured":
        result = estimate(path, profile, precision=precision)
        return CommandResult(result.table(), result.to_dict())
    from edgec.runtimes import ort
    from edgec.runtimes.measure import measure

    threads = threads or profile.threads
    if runs < 1 or threads < 1:
        raise UserError("--runs and --threads must be at least 1")
    result = estimate(path, profile, precision=precision or realised, threads=threads)
    runner = ort.load(path, threads=threads)
    measured = measure(runner.bound(runner.example_feeds()), runs=runs, threads=threads)
    error = (result.total_ms - measured.p50_ms) / measured.p50_ms
    text = (
        f"{result.table()}\n\nMEASURED on this host: p50 {measured.p50_ms:.3f} ms, p10 "
        f"{measured.p10_ms:.3f} ms ({measured.runs} runs, {threads} thread(s)); the estimate "
        f"is {error:+.1%} off the median"
    )
    data = {**result.to_dict(), "measured": measured.to_dict(), "estimate_vs_p50": error}
    return CommandResult(text, data)


def zoo_command(args) -> CommandResult:
    from edgec.models import zoo

    entries = zoo()
    width = max(len(e.name) for e in entries)
    rows = [
        f"{'name':<{width}} {'family':<13} {'input':<13} {'params':>7} {'MACs':>7} {'top-1':>6}"
        "  repo"
    ]
    for e in entries:
        size = "×".join(map(str, e.input_size))
        rows.append(
            f"{e.name:<{width}} {e.family:<13} {size:<13} {_num(e.reported_params_m, 'M')} "
            f"{_macs(e.reported_macs_m)} {_num(e.reported_top1, '%')}  {e.official_repo}"
        )
    rows.append("params/MACs/top-1 (ImageNet) are the official figures, MACs at the input shown.")
    rows.append("Any other timm model name works too. Built-in models start from a seeded random")
    rows.append("initialisation (nothing is downloaded): give a checkpoint with --arch NAME.")
    return CommandResult("\n".join(rows), [dataclasses.asdict(e) for e in entries])


def targets_command(args) -> CommandResult:
    from edgec.device_profile import all_profiles

    profiles = all_profiles()
    rows = [
        f"{'target':<18} {'aliases':<14} {'runtime':<12} {'--runtime also':<18} {'latency':<10} "
        "description"
    ]
    for p in profiles.values():
        rows.append(
            f"{p.name:<18} {', '.join(p.aliases) or '-':<14} {p.runtime:<12} "
            f"{', '.join(p.alt_runtimes) or '-':<18} {p.latency:<10} {p.description}"
        )
    rows.append("`--json` gives every profile in full: compute units, peaks, memory, fallbacks")
    rows.append(
        "`compile --runtime R` emits for another runtime the device runs (where edgec emits R)"
    )
    return CommandResult("\n".join(rows), [p.to_dict() for p in profiles.values()])


def _macs(value_m: float | None) -> str:
    if value_m is not None and value_m >= 10_000:
        return f"{value_m / 1000:>6.1f}G"
    return _num(value_m, "M")


def _num(value: float | None, unit: str) -> str:
    return f"{'–':>6}" + " " if value is None else f"{value:>6.1f}{unit}"


def eval_command(args) -> CommandResult:
    from edgec.evaluate import evaluate_directory

    data = evaluate_directory(
        Path(args.directory),
        Path(args.data),
        Path(args.reference) if args.reference else None,
        args.count,
        Progress(enabled=not (args.quiet or args.json)),
    )
    return CommandResult(data.pop("text"), data)
