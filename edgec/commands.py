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
        "zoo": zoo_command,
        "targets": targets_command,
    }[args.command](args)


def compile_command(args) -> CommandResult:
    from edgec.pipeline import compile_model

    overrides = {
        "model": args.model,
        "target": args.target,
        "arch": args.arch,
        "num_classes": args.num_classes,
        "allow_pickle": args.allow_pickle,
        "precision": args.precision,
        "out": args.out,
        "pipeline": args.pipeline,
        "passes": parse_pass_options(args.pass_option) or None,
        "verify": args.verify,
        "dump_ir": args.dump_ir,
        "dynamic_batch": args.dynamic_batch,
        "ort_format": args.ort_format,
        "verify_images": args.verify_images,
        "verify_count": args.verify_count,
        "threads": args.threads,
        "latency_runs": args.latency_runs,
        "measure": args.measure,
    }
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
    lines.extend(f"  note: {note}" for note in m["input"]["notes"])
    return "\n".join(lines)


def inspect_command(args) -> CommandResult:
    from edgec.inspect import inspect_model

    data = inspect_model(args.model, args.arch, args.num_classes, bool(args.allow_pickle))
    return CommandResult(data.pop("text"), data)


def profile_command(args) -> CommandResult:
    from edgec.profile_artifact import profile_directory

    data = profile_directory(Path(args.directory), threads=args.threads, runs=args.runs)
    return CommandResult(data.pop("text"), data)


def zoo_command(args) -> CommandResult:
    from edgec.models import zoo

    entries = zoo()
    rows = [
        f"{'name':<16} {'family':<15} {'input':<8} {'params':>7} {'MACs':>7} {'top-1':>6}  repo"
    ]
    for e in entries:
        rows.append(
            f"{e.name:<16} {e.family:<15} {e.input_size[1]:<8} {_num(e.reported_params_m, 'M')} "
            f"{_num(e.reported_macs_m, 'M')} {_num(e.reported_top1, '%')}  {e.official_repo}"
        )
    rows.append("params/MACs/top-1 are the official ImageNet figures. Any other timm model name")
    rows.append("works too. Built-in models start from a seeded random initialisation (nothing")
    rows.append("is downloaded): give a checkpoint with --arch NAME for real weights.")
    return CommandResult("\n".join(rows), [dataclasses.asdict(e) for e in entries])


def targets_command(args) -> CommandResult:
    from edgec.device_profile import all_profiles

    profiles = all_profiles()
    rows = [f"{'target':<18} {'aliases':<14} {'runtime':<12} {'latency':<10} description"]
    for p in profiles.values():
        rows.append(
            f"{p.name:<18} {', '.join(p.aliases) or '-':<14} {p.runtime:<12} {p.latency:<10} "
            f"{p.description}"
        )
    rows.append("`--json` gives every profile in full: compute units, peaks, memory, fallbacks")
    return CommandResult("\n".join(rows), [p.to_dict() for p in profiles.values()])


def _num(value: float | None, unit: str) -> str:
    return f"{'–':>6}" + " " if value is None else f"{value:>6.1f}{unit}"
