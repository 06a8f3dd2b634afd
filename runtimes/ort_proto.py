"""The model as the clean, self-contained ONNX proto that `emit` writes and `check` loads.

`model_proto` inlines external weights and drops per-node / per-value `metadata_props` and
`doc_string`s (exporters leave stack traces and paths there); model-level metadata_props,
where edgec keeps preprocessing, stay. Unnamed nodes get `<op_type>_<index>` names
(`node_labels`) so errors and profiles can point at them. Nothing is reordered.
`write_onnx` serialises deterministically: same model → same bytes.
"""

from __future__ import annotations

from pathlib import Path

import onnx
import onnx_ir as ir

from edgec.errors import UserError

PROTO_LIMIT = (2 << 30) - (64 << 20)  # protobuf's 2 GiB cap, with headroom


def model_proto(model: ir.Model) -> tuple[onnx.ModelProto, dict[str, int]]:
    """The model as a self-contained proto, with per-node/value metadata and docs removed.

    Also returns what was removed or added: counts of `metadata_props`, `doc_strings` and
    `named_nodes`. The caller's model is not modified.
    """
    proto = ir.to_proto(model)
    base_dirs = {
        str(v.const_value.base_dir)
        for v in model.graph.initializers.values()
        if isinstance(v.const_value, ir.ExternalTensor)
    }
    if len(base_dirs) > 1:
        raise UserError(
            f"initializers come from several external-data folders: {sorted(base_dirs)}"
        )
    if base_dirs:
        onnx.external_data_helper.load_external_data_for_model(proto, base_dirs.pop())
    stats = {"metadata_props": 0, "doc_strings": 0, "named_nodes": 0}
    _clean_graph(proto.graph, stats)
    for function in proto.functions:
        _clean_nodes(function.node, stats)
    return proto, stats


def _clean_graph(graph: onnx.GraphProto, stats: dict[str, int]) -> None:
    _clean_nodes(graph.node, stats)
    for item in (*graph.input, *graph.output, *graph.value_info, *graph.initializer):
        _clear(item, stats)


def _clean_nodes(nodes, stats: dict[str, int]) -> None:
    labels = node_labels([n.name for n in nodes], [n.op_type for n in nodes])
    for node, label in zip(nodes, labels, strict=True):
        if not node.name:
            node.name = label
            stats["named_nodes"] += 1
        _clear(node, stats)
        for attr in node.attribute:
            for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                _clean_graph(sub, stats)


def _clear(item, stats: dict[str, int]) -> None:
    if item.metadata_props:
        stats["metadata_props"] += len(item.metadata_props)
        item.ClearField("metadata_props")
    if item.doc_string:
        stats["doc_strings"] += 1
        item.ClearField("doc_string")


def write_onnx(proto: onnx.ModelProto, path: Path) -> list[Path]:
    """Serialise deterministically; past protobuf's 2 GiB cap, weights go to `<file>.data`.

    Returns the files written besides `path` (the `.data` file, if any).
    """
    data = path.with_name(path.name + ".data")
    data.unlink(missing_ok=True)  # onnx appends to an existing data file
    if proto.ByteSize() <= PROTO_LIMIT:
        path.write_bytes(proto.SerializeToString(deterministic=True))
        return []
    onnx.external_data_helper.convert_model_to_external_data(
        proto, all_tensors_to_one_file=True, location=data.name, size_threshold=1024
    )
    onnx.save_model(proto, path)
    return [data]


def node_labels(names: list[str | None], op_types: list[str]) -> list[str]:
    """Node names, with `<op_type>_<index>` (made unique) standing in for missing ones."""
    taken = {n for n in names if n}
    out = []
    for i, (name, op) in enumerate(zip(names, op_types, strict=True)):
        if not name:
            name = f"{op}_{i}"
            while name in taken:
                name += "_"
            taken.add(name)
        out.append(name)
    return out
