r"""Per-layer TensorRT times from the device, in the row format of `ort_profile.profile_ops`.

No engine runs on these machines, so the per-layer profile comes from the target: the
`build_<name>.sh` that `emit` writes tells the user to run

    trtexec --loadEngine=m0.plan --dumpProfile --separateProfileRun \
        --exportProfile=m0.plan.profile.json

which times every engine layer with TensorRT's IProfiler and writes a JSON list: first
`{"count": iterations}`, then one `{"name", "timeMs", "averageMs", "medianMs", "percentage"}`
per layer. A layer's name joins the ONNX node names TensorRT fused into it with " + ";
`read_profile` maps those back to the op types of the emitted ONNX graph (layers TensorRT
adds itself, e.g. "Reformatting CopyNode …", are kept under their own kind) and returns one
row per op-type combination, slowest first, the same rows `edgec profile` prints for ONNX
Runtime.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import onnx_ir as ir

from edgec.errors import UserError

HINT = (
    "run on the target: trtexec --loadEngine=ENGINE --dumpProfile --separateProfileRun "
    "--exportProfile=PROFILE.json (build_<name>.sh shows the line)"
)


def read_profile(profile: Path, onnx_path: Path) -> dict[str, Any]:
    """Rows per op type (`op_type`, `us_per_run`, `share`, `calls_per_run`, `nodes`) and totals."""
    layers, iterations = _layers(Path(profile))
    op_types = {node.name: node.op_type for node in ir.load(onnx_path).graph.all_nodes()}
    total = sum(layer["averageMs"] for layer in layers) or 1.0
    by_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for layer in layers:
        us = layer["averageMs"] * 1000.0
        row = {"name": layer["name"], "us_per_run": us, "share": us / 1000.0 / total}
        by_kind[_kind(layer["name"], op_types)].append(row)
    rows = [
        {
            "op_type": kind,
            "us_per_run": sum(n["us_per_run"] for n in nodes),
            "share": sum(n["share"] for n in nodes),
            "calls_per_run": len(nodes),
            "nodes": sorted(nodes, key=lambda n: -n["us_per_run"]),
        }
        for kind, nodes in by_kind.items()
    ]
    rows.sort(key=lambda r: -r["us_per_run"])
    return {"iterations": iterations, "total_ms": total, "layers": len(layers), "per_op": rows}


def _layers(path: Path) -> tuple[list[dict[str, Any]], int | None]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"TensorRT profile {path} does not exist", HINT) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path} is not a trtexec --exportProfile JSON: {exc}", HINT) from None
    entries = data if isinstance(data, list) else []
    iterations = next((e["count"] for e in entries if isinstance(e, dict) and "count" in e), None)
    layers = [e for e in entries if isinstance(e, dict) and "name" in e and "averageMs" in e]
    if not layers:
        raise UserError(f"{path} holds no per-layer times (name, averageMs)", HINT)
    return layers, iterations


def _kind(layer: str, op_types: dict[str, str]) -> str:
    """The ONNX op types TensorRT fused into `layer`, or the kind of a layer it added itself
    (format conversions "Reformatting CopyNode for … to <layer>", Myelin "{ForeignNode[…]}")."""
    if layer.startswith(("Reformatting", "{ForeignNode")):
        return f"TensorRT {re.findall(r'[A-Za-z]+', layer)[0]}"
    parts = [p.strip() for p in layer.split(" + ")]
    found = [op_types[p] for p in parts if p in op_types]
    if found:
        return "+".join(dict.fromkeys(found))
    words = re.findall(r"[A-Za-z]+", layer)
    return f"TensorRT {words[0]}" if words else "TensorRT layer"
