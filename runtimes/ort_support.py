"""Which ops the ORT CPU EP can run: `check`, `ensure_supported`, `float16_fallbacks`.

All three share one scan: ORT's schema and CPU kernel registry first, then probe sessions
for the nodes no kernel matches, then one load of the whole model (`check` tells how).
"""

from __future__ import annotations

import functools
import re
from collections import defaultdict

import onnx
import onnx_ir as ir

from edgec.errors import UnsupportedOpsError, UserError
from edgec.runtimes.ort_proto import PROTO_LIMIT, model_proto, node_labels
from edgec.runtimes.ort_session import CPU, NAME, import_ort


def check(model: ir.Model, device: object = None) -> dict[str, list[str]]:
    """Ops the ORT CPU EP cannot run in `model`, all at once: `{op: [node names]}`.

    Every node is first looked up in ORT's own schemas and CPU kernel registry: the schema
    version the model's opset selects, then a kernel for that version whose type constraints
    accept the node's known types. A node no kernel matches may still run (ORT inlines ONNX
    function bodies, and wraps float16 nodes in Casts to a float32 kernel), so each distinct
    (op, version, types) of those is tried alone in a session; NOT_IMPLEMENTED there means
    unsupported. Finally, if nothing was found, the whole model is loaded with optimisations
    off; a NOT_IMPLEMENTED error becomes an entry, any other load failure a `UserError`.

    Keys are `op_type` in the default ONNX domain and `domain::op_type` elsewhere. Node names
    are as `emit` writes them (unnamed nodes become `<op_type>_<index>`). `device` is
    accepted for the common runtime contract; the CPU EP does not depend on it.
    """
    return {op: nodes for op, (nodes, _) in _scan(model)[0].items()}


def float16_fallbacks(model: ir.Model) -> dict[str, list[str]]:
    """float16 nodes the CPU EP runs in float32 between inserted Casts: `{op: [node names]}`.

    This is what "fp16 where supported" means on ORT CPU: record it in the manifest.
    """
    return _scan(model)[1]


def ensure_supported(model: ir.Model, device: object = None) -> None:
    """Raise `UnsupportedOpsError` (naming every op, its nodes and why) if `check` finds any."""
    found = _scan(model)[0]
    if found:
        why = "; ".join(f"{op}: {reason}" for op, (_, reason) in sorted(found.items()))
        hint = (
            f"{why}. Rewrite these into ONNX ops the CPU EP has kernels for, keep them in "
            "float32, or choose another --runtime"
        )
        raise UnsupportedOpsError(NAME, {op: nodes for op, (nodes, _) in found.items()}, hint)


def _scan(model: ir.Model) -> tuple[dict[str, tuple[list[str], str]], dict[str, list[str]]]:
    """(unsupported: key → (node labels, reason), float16 fallbacks: key → node labels)."""
    found: dict[str, tuple[list[str], str]] = {}
    casts: dict[str, list[str]] = defaultdict(list)
    probes: dict[tuple, str | None] = {}
    model_opsets = dict(model.graph.opset_imports)
    scopes = [("", model.graph, model_opsets)]
    scopes += [(f"{f.name}/", f, dict(f.opset_imports)) for f in model.functions.values()]
    for prefix, graph, opsets in scopes:
        for label, node in _walk(graph):
            if node.op_identifier() in model.functions:
                continue  # a call of a model-local function: ORT inlines it (body checked)
            key = node.op_type if _norm(node.domain) == "" else f"{node.domain}::{node.op_type}"
            reason = _static_reason(node, opsets)
            if reason and _fully_typed(node):
                sig = (node.domain, node.op_type, opsets.get(node.domain), *_type_sig(node))
                if sig not in probes:
                    probes[sig] = _probe_node(node, opsets, model.ir_version, reason)
                if probes[sig] is None and "float16" in sig[3] + sig[4]:
                    casts[key].append(prefix + label)
                reason = probes[sig]
            if reason:
                found.setdefault(key, ([], reason))[0].append(prefix + label)
    return (found or _probe_model(model)), dict(casts)


def _walk(graph) -> list[tuple[str, ir.Node]]:
    """(label, node) for every node of `graph` and its subgraphs, labels as `emit` names them."""
    nodes = list(graph)
    labels = node_labels([n.name for n in nodes], [n.op_type for n in nodes])
    out = []
    for label, node in zip(labels, nodes, strict=True):
        out.append((label, node))
        for attr in node.attributes.values():
            if attr.type == ir.AttributeType.GRAPH:
                out += _walk(attr.value)
            elif attr.type == ir.AttributeType.GRAPHS:
                for sub in attr.value:
                    out += _walk(sub)
    return out


def _norm(domain: str) -> str:
    return "" if domain in ("", "ai.onnx") else domain


def _static_reason(node: ir.Node, opsets: dict[str, int]) -> str | None:
    """Why ORT's registry says the CPU EP cannot run `node`, or None when a kernel fits."""
    domain, op = _norm(node.domain), node.op_type
    if (domain, op) in _NO_KERNEL_NEEDED:
        return None
    version = opsets.get(node.domain, opsets.get("" if node.domain == "ai.onnx" else "ai.onnx"))
    if version is None:
        return f"domain {domain!r} is not among the opset imports"
    schemas, kernels = _registry()
    known = [s for s in schemas.get((domain, op), []) if s.since_version <= version]
    if not known:
        if not any(d == domain for d, _ in schemas):
            return f"custom domain {domain!r} is unknown to onnxruntime (needs a custom-op library)"
        return f"onnxruntime has no {op} in domain {domain or 'ai.onnx'} at opset {version}"
    schema = max(known, key=lambda s: s.since_version)
    since = schema.since_version
    candidates = [c for lo, hi, c in kernels.get((domain, op), []) if lo <= since <= hi]
    types = _bound_types(node, schema)
    if any(all(t <= set(c.get(p, t)) for p, t in types.items()) for c in candidates):
        return None
    if not candidates:
        return f"the CPU EP has no kernel for {op} version {since}"
    wanted = sorted({t for ts in types.values() for t in ts})
    offered = sorted({t for c in candidates for ts in c.values() for t in ts})
    return f"no CPU kernel of {op}({since}) takes {', '.join(wanted)} (only {', '.join(offered)})"


_NO_KERNEL_NEEDED = {("", "Constant")}  # ORT turns Constant nodes into initializers


def _bound_types(node: ir.Node, schema) -> dict[str, set[str]]:
    """Type-constraint name → the tensor types the node binds to it (where known)."""
    bound: dict[str, set[str]] = defaultdict(set)
    for values, formals in ((node.inputs, schema.inputs), (node.outputs, schema.outputs)):
        for i, value in enumerate(values):
            dtype = _dtype(value)
            if dtype is not None and formals:
                bound[formals[min(i, len(formals) - 1)].typeStr].add(f"tensor({dtype})")
    return dict(bound)


def _dtype(value: ir.Value | None) -> str | None:
    t = value.type if value is not None else None
    if isinstance(t, ir.TensorType) and t.dtype != ir.DataType.UNDEFINED:
        return t.dtype.name.lower()
    return None


def _fully_typed(node: ir.Node) -> bool:
    has_graph = any(a.type in (ir.AttributeType.GRAPH, ir.AttributeType.GRAPHS)
                    for a in node.attributes.values())  # fmt: skip
    return not has_graph and all(v is None or _dtype(v) for v in node.inputs)


def _type_sig(node: ir.Node) -> tuple[tuple, tuple]:
    return tuple(map(_dtype, node.inputs)), tuple(map(_dtype, node.outputs))


@functools.cache
def _registry() -> tuple[dict, dict]:
    """ORT's operator schemas and CPU kernels (version range, type constraints) by (domain, op)."""
    from onnxruntime.capi import _pybind_state as c

    schemas: dict = defaultdict(list)
    for s in c.get_all_operator_schema():
        schemas[(_norm(s.domain), s.name)].append(s)
    kernels: dict = defaultdict(list)
    for k in c.get_all_opkernel_def():
        if k.provider == "CPUExecutionProvider":
            lo, hi = k.version_range
            kernels[(_norm(k.domain), k.op_name)].append((lo, hi, dict(k.type_constraints)))
    return dict(schemas), dict(kernels)


def _probe_node(node: ir.Node, opsets: dict[str, int], ir_version: int, why: str) -> str | None:
    """Load `node` alone in a session: None if ORT can run it, else why not (`why`)."""
    proto = ir.serde.serialize_node(node)
    proto.ClearField("metadata_props")
    inputs = {v.name: v for v in node.inputs if v is not None}
    graph = onnx.helper.make_graph(
        [proto],
        "probe",
        [onnx.helper.make_tensor_value_info(n, int(v.dtype), None) for n, v in inputs.items()],
        [onnx.helper.make_value_info(v.name, onnx.TypeProto()) for v in node.outputs if v.name],
    )
    opset_ids = [onnx.helper.make_opsetid(d, v) for d, v in opsets.items()]
    model = onnx.helper.make_model(graph, opset_imports=opset_ids, ir_version=ir_version)
    return None if _session_error(model.SerializeToString()) is None else why


def _probe_model(model: ir.Model) -> dict[str, tuple[list[str], str]]:
    """Load the whole model (optimisations off); NOT_IMPLEMENTED → an entry, else raise."""
    proto, _ = model_proto(model)
    if proto.ByteSize() > PROTO_LIMIT:
        return {}
    error = _session_error(proto.SerializeToString())
    if error is None:
        return {}
    m = re.search(r"implementation for (\w+)\((\d+)\) node with name '([^']*)'", error)
    if m is None:
        raise UserError(
            f"onnxruntime cannot load this graph: {error}",
            "run onnx.checker.check_model(model, full_check=True) to find the broken part",
        )
    label = m[3] or "<a node inlined from a function body>"
    return {m[1]: ([label], f"the CPU EP has no kernel for {m[1]}({m[2]}) with these types")}


def _session_error(model_bytes: bytes) -> str | None:
    """Load `model_bytes` (optimisations off, nothing logged): None, or ORT's error text."""
    ort = import_ort()
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 4
    try:
        ort.InferenceSession(model_bytes, so, providers=CPU)
    except Exception as e:
        return str(e)
    return None
