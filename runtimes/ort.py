"""ONNX Runtime (CPU execution provider): check, emit, load/run, per-operator profile.

    ok, why = available()
    ops = check(model)                          # {op: [node names]}; {} when all can run
    art = emit(model, out_dir, name="deit", ort_format=True, save_optimized=True)
    runner = load(art, threads=1)               # OrtRunner
    outputs = runner.run({"input": x})
    rows = profile_ops(art.path, {"input": x})  # where the time goes, per op type and node

Files `emit` writes:

- `<name>.onnx`: the graph as given, minus per-node / per-value `metadata_props` and
  `doc_string`s (exporters leave stack traces and paths there); model-level metadata_props,
  where edgec keeps preprocessing, stay. Unnamed nodes get `<op_type>_<index>` names so
  errors and profiles can point at them. Nothing is reordered. Same model → same bytes.
- `<name>.optimized.onnx` (`save_optimized=True`): ORT's graph after `ORT_ENABLE_EXTENDED`,
  the highest level whose output is portable (the NCHWc layout pass of `ORT_ENABLE_ALL` ties
  a file to the CPU it was made on). Loads faster, since ORT has less left to do. Saved
  twice; `details["optimized_onnx"]["byte_stable"]` says whether the two agreed.
- `<name>.ort` + `<name>.required_operators.config` (`ort_format=True`): ORT's mobile
  flatbuffer format via `onnxruntime.tools.convert_onnx_models_to_ort`, "Fixed" style
  (optimised at ORT_ENABLE_ALL minus the NCHWc pass); the config lists the operators a
  reduced-operator ORT build needs (its absolute-path comment is made relative). ORT 1.32
  does not write the same `.ort` bytes twice for the same input (same graph, different
  flatbuffer layout), so `details["ort_format"]["byte_stable"]` is False.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import logging
import os
import re
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnx_ir as ir

from edgec.artifact import Artifact, sha256_file
from edgec.errors import ModelLoadError, UnsupportedOpsError, UserError

NAME = "onnxruntime"
PRECISIONS = ("fp32", "fp16", "w8a8", "w4a8", "int-only")
OPTIMIZATION_LEVELS = {  # edgec word → ORT GraphOptimizationLevel
    "disabled": "ORT_DISABLE_ALL",
    "disable": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "layout": "ORT_ENABLE_LAYOUT",
    "all": "ORT_ENABLE_ALL",
}
_CPU = ["CPUExecutionProvider"]
_PROTO_LIMIT = (2 << 30) - (64 << 20)  # protobuf's 2 GiB cap, with headroom
_NUMPY_TYPES = {
    "tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16,
    "tensor(int8)": np.int8, "tensor(uint8)": np.uint8, "tensor(int16)": np.int16,
    "tensor(uint16)": np.uint16, "tensor(int32)": np.int32, "tensor(uint32)": np.uint32,
    "tensor(int64)": np.int64, "tensor(uint64)": np.uint64, "tensor(bool)": np.bool_,
}  # fmt: skip


def available() -> tuple[bool, str]:
    """Whether ONNX Runtime with its CPU execution provider can be used here, and why not."""
    try:
        ort = _ort()
    except ImportError as e:
        return (
            False,
            f"onnxruntime is not installed ({e}); install it with `pip install onnxruntime`",
        )
    if "CPUExecutionProvider" not in ort.get_available_providers():
        return False, f"onnxruntime {ort.__version__} has no CPUExecutionProvider"
    return True, f"onnxruntime {ort.__version__} (CPUExecutionProvider)"


# ---------------------------------------------------------------- check


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
    labels = _labels([n.name for n in nodes], [n.op_type for n in nodes])
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


def _labels(names: list[str | None], op_types: list[str]) -> list[str]:
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
    proto, _ = _model_proto(model)
    if proto.ByteSize() > _PROTO_LIMIT:
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
    ort = _ort()
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 4
    try:
        ort.InferenceSession(model_bytes, so, providers=_CPU)
    except Exception as e:
        return str(e)
    return None


# ---------------------------------------------------------------- emit


def emit(
    model: ir.Model,
    out_dir: Path,
    *,
    name: str,
    ort_format: bool = False,
    save_optimized: bool = False,
    precision: str = "fp32",
    device: object = None,
) -> Artifact:
    """Write `<name>.onnx` (and optionally `.optimized.onnx`, `.ort`) into `out_dir`.

    See the module docstring for what each file is. `precision` is recorded as given (it
    must be one of `PRECISIONS`); `device` is accepted for the common runtime contract.
    The caller's model is not modified.
    """
    if precision not in PRECISIONS:
        raise UserError(
            f"unknown precision {precision!r}", f"choose one of: {', '.join(PRECISIONS)}"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    proto, stripped = _model_proto(model)
    onnx_path = out_dir / f"{name}.onnx"
    extra = _write_onnx(proto, onnx_path)
    details: dict[str, Any] = {
        "format": "onnx",
        "onnxruntime": _ort().__version__,
        "ir_version": proto.ir_version,
        "opset_imports": {o.domain or "ai.onnx": o.version for o in proto.opset_import},
        "nodes": len(proto.graph.node),
        "stripped": stripped,
    }
    if save_optimized:
        opt_path = out_dir / f"{name}.optimized.onnx"
        external = bool(extra)
        extra += _save_optimized(onnx_path, opt_path, external=external)
        with tempfile.TemporaryDirectory(prefix="edgec-ort-") as tmp:  # a second save: same bytes?
            again = Path(tmp) / opt_path.name
            _save_optimized(onnx_path, again, external=external)
            stable = sha256_file(again) == sha256_file(opt_path)
        details["optimized_onnx"] = {
            "file": opt_path.name,
            "graph_optimization_level": "extended",
            "byte_stable": stable,
            "note": "ORT_ENABLE_EXTENDED output is portable across CPUs; ORT_ENABLE_ALL's is not",
        }
    if ort_format:
        files, details["ort_format"] = _convert_to_ort(onnx_path)
        extra += files
    return Artifact(onnx_path, NAME, precision, extra, details)


def _model_proto(model: ir.Model) -> tuple[onnx.ModelProto, dict[str, int]]:
    """The model as a self-contained proto, with per-node/value metadata and docs removed."""
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
    labels = _labels([n.name for n in nodes], [n.op_type for n in nodes])
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


def _write_onnx(proto: onnx.ModelProto, path: Path) -> list[Path]:
    """Serialise deterministically; past protobuf's 2 GiB cap, weights go to `<file>.data`."""
    data = path.with_name(path.name + ".data")
    data.unlink(missing_ok=True)  # onnx appends to an existing data file
    if proto.ByteSize() <= _PROTO_LIMIT:
        path.write_bytes(proto.SerializeToString(deterministic=True))
        return []
    onnx.external_data_helper.convert_model_to_external_data(
        proto, all_tensors_to_one_file=True, location=data.name, size_threshold=1024
    )
    onnx.save_model(proto, path)
    return [data]


def _save_optimized(src: Path, dst: Path, *, external: bool) -> list[Path]:
    ort = _ort()
    so = _session_options(ort, threads=1, optimization="extended")
    so.optimized_model_filepath = str(dst)
    data = dst.with_name(dst.name + ".data")
    if external:
        data.unlink(missing_ok=True)
        so.add_session_config_entry(
            "session.optimized_model_external_initializers_file_name", data.name
        )
    ort.InferenceSession(str(src), so, providers=_CPU)
    return [dst, data] if external else [dst]


def _convert_to_ort(onnx_path: Path) -> tuple[list[Path], dict[str, Any]]:
    """Convert with ORT's own tool, "Fixed" optimisation style."""
    level = os.environ.get("ORT_CONVERT_ONNX_MODELS_TO_ORT_OPTIMIZATION_LEVEL", "all")
    suffix = "" if level == "all" else f".{level}"
    ort_path = onnx_path.with_suffix(f"{suffix}.ort")
    config = onnx_path.with_suffix(f".required_operators{suffix}.config")
    _run_converter(onnx_path, onnx_path.parent)
    config.write_text(_relative_config(config.read_text()))
    info = {
        "file": ort_path.name,
        "optimization_style": "Fixed",
        "optimization_level": level,
        "required_operators": config.name,
        "byte_stable": False,
        "note": (
            f"onnxruntime {_ort().__version__} lays out the .ort flatbuffer in memory-address "
            "order, so converting the same .onnx twice gives different bytes (same graph, "
            "same outputs); the .onnx is the reproducible artifact"
        ),
    }
    return [ort_path, config], info


def _run_converter(onnx_path: Path, out_dir: Path) -> None:
    convert, fixed = _import_converter()
    tool_log = logging.getLogger("ort_format_model.utils")
    level = tool_log.level
    tool_log.setLevel(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the tool prints progress
            convert(onnx_path, output_dir=out_dir, optimization_styles=[fixed])
    finally:
        tool_log.setLevel(level)


def _import_converter():
    """ORT's converter, imported without its side effects.

    `onnxruntime/tools/__init__.py` imports torch whenever torch is installed (about 6 s, and
    torch has no business in runtimes/), and its logger calls `logging.basicConfig`. Hide
    torch during the import (a `None` entry in sys.modules makes `find_spec` report it
    missing) and take back any root handler the import added.
    """
    root = logging.getLogger()
    handlers = list(root.handlers)
    hide_torch = "torch" not in sys.modules
    if hide_torch:
        sys.modules["torch"] = None  # type: ignore[assignment]
    try:
        from onnxruntime.tools.convert_onnx_models_to_ort import (
            OptimizationStyle,
            convert_onnx_models_to_ort,
        )
    finally:
        if hide_torch and sys.modules.get("torch", 0) is None:
            del sys.modules["torch"]
        for handler in root.handlers[:]:
            if handler not in handlers:
                root.removeHandler(handler)
    return convert_onnx_models_to_ort, OptimizationStyle.Fixed


def _relative_config(text: str) -> str:
    """The tool writes the absolute path of the .ort into a comment; keep only its name."""
    return re.sub(r"^# - (.+)$", lambda m: f"# - {Path(m[1]).name}", text, flags=re.MULTILINE)


# ---------------------------------------------------------------- load and run


class OrtRunner:
    """One ORT inference session (CPU EP) behind the runner interface every runtime offers.

    `run` checks the feeds (names, dtypes, ranks, static dims) and then delegates to the
    session; `last_inference_ms` is set by every `run`. For timing, `bound(feeds)` checks
    once and returns a zero-overhead callable to hand to `edgec.runtimes.measure`.
    Usable as a context manager; `close()` releases the session.
    """

    def __init__(self, session, path: Path, threads: int, optimization: str):
        self.session = session
        self.path = path
        self.threads = threads
        self.optimization = optimization
        inputs = session.get_inputs()
        self.input_names: list[str] = [i.name for i in inputs]
        self.input_shapes: dict[str, tuple[int | str | None, ...]] = {
            i.name: tuple(i.shape) for i in inputs
        }
        self.input_types: dict[str, str] = {i.name: i.type for i in inputs}
        self.output_names: list[str] = [o.name for o in session.get_outputs()]
        self.last_inference_ms: float | None = None

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run once; returns output name → array."""
        self._check_feeds(feeds)
        t0 = time.perf_counter()
        outputs = self.session.run(self.output_names, feeds)
        self.last_inference_ms = (time.perf_counter() - t0) * 1e3
        return dict(zip(self.output_names, outputs, strict=True))

    def bound(self, feeds: dict[str, np.ndarray]) -> Callable[[], object]:
        """A callable that runs these (checked) feeds with nothing else in the timed path."""
        self._check_feeds(feeds)
        session, names = self.session, self.output_names
        return lambda: session.run(names, feeds)

    def example_feeds(self, seed: int = 0, dynamic_dim: int = 1) -> dict[str, np.ndarray]:
        """Seeded random inputs of the right dtype; symbolic dims become `dynamic_dim`."""
        rng = np.random.default_rng(seed)
        feeds = {}
        for name in self.input_names:
            shape = [d if isinstance(d, int) else dynamic_dim for d in self.input_shapes[name]]
            dtype = np.dtype(_NUMPY_TYPES.get(self.input_types[name], np.float32))
            if dtype.kind == "f":
                feeds[name] = rng.standard_normal(shape).astype(dtype)
            else:
                feeds[name] = np.zeros(shape, dtype)
        return feeds

    def _check_feeds(self, feeds: dict[str, np.ndarray]) -> None:
        if self.session is None:
            raise RuntimeError(f"the runner for {self.path.name} is closed")
        missing = [n for n in self.input_names if n not in feeds]
        unknown = [n for n in feeds if n not in self.input_names]
        if missing or unknown:
            raise UserError(
                f"inputs do not match {self.path.name}: missing {missing}, unknown {unknown}",
                f"the model takes {self.input_names}",
            )
        for name in self.input_names:
            x, want = feeds[name], self.input_shapes[name]
            dtype = _NUMPY_TYPES.get(self.input_types[name])
            if dtype is not None and x.dtype != np.dtype(dtype):
                raise UserError(
                    f"input {name!r} is {x.dtype}, the model wants {self.input_types[name]}"
                )
            if len(x.shape) != len(want) or any(
                isinstance(w, int) and w != d for w, d in zip(want, x.shape, strict=True)
            ):
                raise UserError(
                    f"input {name!r} has shape {list(x.shape)}, the model wants {list(want)}"
                )

    def close(self) -> None:
        """Release the session."""
        self.session = None

    def __enter__(self) -> OrtRunner:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def load(path: Path | str | Artifact, threads: int = 1, optimization: str = "all") -> OrtRunner:
    """Open an .onnx or .ort file (or an `Artifact`) on the CPU EP.

    Session options: `intra_op_num_threads=threads`, `inter_op_num_threads=1`, sequential
    execution, graph optimisation `optimization` (one of `OPTIMIZATION_LEVELS`).
    """
    path = Path(path.path if isinstance(path, Artifact) else path)
    if not path.is_file():
        raise ModelLoadError(f"no such model file: {path}")
    ort = _ort()
    so = _session_options(ort, threads=threads, optimization=optimization)
    try:
        session = ort.InferenceSession(str(path), so, providers=_CPU)
    except Exception as e:
        raise ModelLoadError(f"onnxruntime cannot load {path}: {e}") from e
    return OrtRunner(session, path, threads, optimization)


def session_options_used(runner: OrtRunner) -> dict[str, Any]:
    """The session settings behind a runner, for the manifest."""
    ort = _ort()
    so = runner.session.get_session_options()
    sequential = so.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    return {
        "onnxruntime": ort.__version__,
        "providers": list(runner.session.get_providers()),
        "intra_op_num_threads": so.intra_op_num_threads,
        "inter_op_num_threads": so.inter_op_num_threads,
        "execution_mode": "sequential" if sequential else "parallel",
        "graph_optimization_level": OPTIMIZATION_LEVELS[runner.optimization],
        "model_format": "ort" if runner.path.suffix == ".ort" else "onnx",
    }


def _session_options(ort, *, threads: int, optimization: str):
    if optimization not in OPTIMIZATION_LEVELS:
        raise UserError(
            f"unknown ORT optimization level {optimization!r}",
            f"choose one of: {', '.join(OPTIMIZATION_LEVELS)}",
        )
    if threads < 1:
        raise UserError(f"threads must be >= 1, got {threads}")
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = getattr(
        ort.GraphOptimizationLevel, OPTIMIZATION_LEVELS[optimization]
    )
    so.log_severity_level = 3
    return so


def _ort():
    import onnxruntime

    return onnxruntime


# ---------------------------------------------------------------- profile


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
    ort = _ort()
    with tempfile.TemporaryDirectory(prefix="edgec-ortprof-") as tmp:
        so = _session_options(ort, threads=threads, optimization=optimization)
        so.enable_profiling = True
        so.profile_file_prefix = str(Path(tmp) / "ort_profile")
        session = ort.InferenceSession(str(path), so, providers=_CPU)
        names = [o.name for o in session.get_outputs()]
        for _ in range(runs + 1):
            session.run(names, feeds)
        trace = Path(session.end_profiling())
        events = json.loads((trace if trace.is_absolute() else Path(tmp) / trace.name).read_text())
        del session
    return _aggregate(events)


def _aggregate(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
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
