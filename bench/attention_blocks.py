"""Per-attention-block time in an ORT session: label every node with its block, sum the profile.

Used by bench/attention.py. Three steps:

1. `label_blocks(model)` (after the passes): each node's torch name scope, which the exporter
   records and edgec's passes keep (or, for nodes they create, copy where they can), says
   which block it came from (`stages.0.blocks.1.mixer`, `blocks.3.attn`); its name becomes
   `<block>|<name>`, or `other|<name>` outside every block.
2. `node_blocks(onnx_path)`: ORT's own graph after ORT_ENABLE_ALL (with its NCHWc reorders
   and fusions, i.e. the nodes the profiler names) is saved; nodes whose name still carries a
   label keep it, the others take the label of the value they compute (ORT names NCHWc convs
   after their output value), and the rest (reorders, nodes created without provenance) that
   of their neighbours: consumers first, except a ReorderOutput, which belongs to its producer.
3. `block_times(profile_rows, labels)`: profiler µs per run summed per block.

`block_graphs(onnx_path, out_dir)` cuts each labelled block out of a graph as a model of its
own (its inputs are the values it reads from outside, its outputs those read after it), for
timing a block alone (bench/attention_cache.py).
"""

from __future__ import annotations

import ast
import collections
import tempfile
from pathlib import Path

import onnx
import onnx_ir as ir
import onnxruntime

OTHER = "other"
SCOPES = "pkg.torch.onnx.name_scopes"


def label_blocks(model: ir.Model, block_suffixes: tuple[str, ...]) -> None:
    """Prefix every node's name with its block: the outermost torch name scope ending in one of
    `block_suffixes` (e.g. `.mixer`), `other` outside every block, nothing when unknown."""
    for index, node in enumerate(model.graph):
        scopes = node.metadata_props.get(SCOPES)
        block = None
        if scopes:
            inside = [s for s in ast.literal_eval(scopes) if s.endswith(block_suffixes)]
            block = inside[0] if inside else OTHER
        base = node.name or f"{node.op_type}_{index}"
        node.name = base if block is None else f"{block}|{base}"


def node_blocks(onnx_path: Path) -> dict[str, str]:
    """ORT node name → block label, for the graph ORT runs from `onnx_path` (ORT_ENABLE_ALL)."""
    given = onnx.load(str(onnx_path), load_external_data=False).graph
    value_block: dict[str, str] = {}
    for node in given.node:
        if "|" in node.name:
            for name in node.output:
                value_block[name] = node.name.split("|")[0]
    with tempfile.TemporaryDirectory(prefix="edgec-bench-opt-") as tmp:
        so = onnxruntime.SessionOptions()
        so.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.optimized_model_filepath = str(Path(tmp) / "optimized.onnx")
        so.log_severity_level = 3
        onnxruntime.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
        graph = onnx.load(so.optimized_model_filepath, load_external_data=False).graph
    labels: dict[str, str] = {}
    for node in graph.node:
        if "|" in node.name:
            labels[node.name] = node.name.split("|")[0]
            continue
        outputs = (*node.output, node.name.removesuffix("_nchwc"))
        known = [value_block[v] for v in outputs if v in value_block]
        if known:
            labels[node.name] = known[0]
    producers = {out: node for node in graph.node for out in node.output}
    consumers = collections.defaultdict(list)
    for node in graph.node:
        for name in node.input:
            consumers[name].append(node)
    while True:
        changed = False
        for node in graph.node:
            if node.name in labels:
                continue
            before = [producers[v].name for v in node.input if v in producers]
            after = [c.name for v in node.output for c in consumers[v]]
            order = (before, after) if node.op_type == "ReorderOutput" else (after, before)
            for names in order:
                found = [labels[n] for n in names if n in labels]
                if found:
                    labels[node.name] = collections.Counter(found).most_common(1)[0][0]
                    changed = True
                    break
        if not changed:
            break
    for node in graph.node:
        labels.setdefault(node.name, OTHER)
    return labels


def block_times(profile_rows: list[dict], labels: dict[str, str]) -> dict[str, float]:
    """Profiler µs per run summed per block label (nodes the graph does not know: `other`)."""
    totals: dict[str, float] = collections.defaultdict(float)
    for row in profile_rows:
        for node in row["nodes"]:
            totals[labels.get(node["name"], OTHER)] += node["us_per_run"]
    return {label: round(us, 2) for label, us in sorted(totals.items())}


def block_graphs(onnx_path: Path, out_dir: Path) -> dict[str, Path]:
    """Block label → an ONNX file holding just that block of `onnx_path` (labelled by
    `label_blocks`), cut out with `onnx.utils.extract_model`."""
    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    constants = {t.name for t in graph.initializer}
    by_block = collections.defaultdict(list)
    for node in graph.node:
        if "|" in node.name and not node.name.startswith(f"{OTHER}|"):
            by_block[node.name.split("|")[0]].append(node)
    files = {}
    for block, nodes in sorted(by_block.items()):
        made = {name for node in nodes for name in node.output}
        read = [name for node in nodes for name in node.input if name]
        inputs = sorted({name for name in read if name not in made and name not in constants})
        names = {node.name for node in nodes}
        read_after = {name for node in graph.node if node.name not in names for name in node.input}
        read_after |= {value.name for value in graph.output}
        path = out_dir / f"{block}.onnx"
        onnx.utils.extract_model(str(onnx_path), str(path), inputs, sorted(made & read_after))
        files[block] = path
    return files
