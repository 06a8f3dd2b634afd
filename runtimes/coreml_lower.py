"""ONNX IR → MIL program: walk the graph in order and lower every node with coremltools' builder.

    program, report = lower(model, target=ct.target.iOS17, inputs={"input": preprocess})

Before (ONNX):  input → Conv(W, b) → Relu → … → Gemm(W2, b2) → output
After (MIL):    input → [mul, add: preprocessing] → conv → relu → … → linear → <output name>

Float ops come from `coreml_ops.FLOAT_OPS`; QuantizeLinear / DequantizeLinear from
`coreml_qdq` (constant integer weights become `constexpr_*` weights, activation Q→DQ pairs
become `quantize` → `dequantize`). The program is float32; `coreml_package` converts it with
the requested compute precision.

A node that cannot be lowered does not stop the walk: its failure is recorded, its outputs
are marked poisoned and every node that needs them is skipped (not reported twice), so
`unsupported(model)` names every problem in one pass.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import onnx_ir as ir

from edgec.runtimes.coreml_ops import FLOAT_OPS, shape_inputs
from edgec.runtimes.coreml_ops_index import INDEX_OPS
from edgec.runtimes.coreml_qdq import QDQ_OPS, QuantNeedsIOS18, QuantPlan
from edgec.runtimes.coreml_sdk import import_ct
from edgec.runtimes.coreml_wide import Wide, lower_wide

MAX_RANK = 5  # Core ML tensors have at most rank 5
SPLIT_HEADS_RANK = 4  # the Neural Engine layout split heads asks for (Apple's guidance)


class _NotLowered(Exception):
    """One node cannot be lowered; `key` groups it in the report (op type or a problem)."""

    def __init__(self, key: str, reason: str):
        super().__init__(reason)
        self.key, self.reason = key, reason


@dataclasses.dataclass
class Lowered:
    """The MIL program plus what the lowering decided (for the manifest)."""

    program: Any
    output_names: list[str]
    weights: list[dict[str, Any]]
    activations: list[dict[str, Any]]
    problems: dict[str, tuple[list[str], str]]


def supported_op_types() -> set[str]:
    """Every ONNX op type (default domain) the lowering knows."""
    return set(FLOAT_OPS) | set(INDEX_OPS) | set(QDQ_OPS)


class Context:
    """What a lowering function sees: the builder and the ONNX values lowered so far."""

    def __init__(self, mb, plan: QuantPlan, opset: int, max_rank: int = MAX_RANK):
        self.mb = mb
        self.plan = plan
        self.opset = opset  # the ONNX default-domain opset, for folding constant nodes
        self.max_rank = max_rank  # no MIL tensor above it (`coreml_wide` folds layout chains)
        self.values: dict[str, Any] = {}  # ONNX value name → MIL Var or numpy constant
        self.names: set[str] = set()
        self.node_names: dict[int, str] = {}

    def is_const(self, value: ir.Value | None) -> bool:
        return value is not None and isinstance(self.values.get(value.name), np.ndarray)

    def const(self, value: ir.Value) -> np.ndarray:
        got = self.values.get(value.name)
        if not isinstance(got, np.ndarray):
            raise _NotLowered(
                "non-constant shape input",
                f"input {value.name!r} must be a constant here (fold shapes first)",
            )
        return got

    def operand(self, value: ir.Value):
        """A MIL var, or a float constant as float32 numpy (the builder makes it a const)."""
        if value.name in self.plan.weights:
            return self.plan.constexpr(self, value.name, transpose=False)
        got = self.values[value.name]
        if isinstance(got, np.ndarray) and got.dtype.kind == "f":
            return got.astype(np.float32)
        if isinstance(got, np.ndarray) and got.dtype == np.int64:
            return got.astype(np.int32)  # Core ML's integer tensors are int32
        return got

    def var(self, value: ir.Value):
        return self.operand(value)

    def weight(self, value: ir.Value, transpose: bool = False):
        """A layer weight: float32 numpy, or a constexpr var when it is quantized (DQ)."""
        if value.name in self.plan.weights:
            return self.plan.constexpr(self, value.name, transpose=transpose)
        w = self.const(value).astype(np.float32)
        return np.ascontiguousarray(w.T) if transpose else w

    def shape_of(self, value: ir.Value) -> tuple[int, ...]:
        if value.name in self.plan.weights:
            return self.plan.weights[value.name].shape
        got = self.values[value.name]
        return tuple(got.shape)

    def out(self, node: ir.Node, index: int = 0) -> str:
        """A MIL-legal, unique name for output `index` of `node` (from the ONNX value name)."""
        return self.unique(node.outputs[index].name or f"{self.node_names[id(node)]}_{index}")

    def unique(self, name: str) -> str:
        name = mil_name(name)
        base, i = name, 0
        while name in self.names:
            i += 1
            name = f"{base}_{i}"
        self.names.add(name)
        return name

    def unsupported(self, node: ir.Node, what: str) -> Exception:
        return _NotLowered(node.op_type, f"{what} is not lowered to Core ML")

    def too_high_rank(self, node: ir.Node, rank: int) -> Exception:
        return _NotLowered(f"rank > {self.max_rank}", _rank_reason(node, rank, self.max_rank))


def mil_name(name: str) -> str:
    """`name` as a legal MIL identifier (what an ONNX output is called in the package)."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return name if re.match(r"[A-Za-z_]", name) else f"v_{name}"


def lower(
    model: ir.Model,
    *,
    target,
    input_names: dict[str, str] | None = None,
    input_transforms: dict[str, Callable] | None = None,
    output_transforms: dict[str, Callable] | None = None,
    max_rank: int = MAX_RANK,
) -> Lowered:
    """Build the MIL program for `model`'s main graph (see the module docstring).

    `input_names` renames graph inputs; `input_transforms[name](mb, var, unique) -> var` inserts ops
    right after an input (the image preprocessing); `output_transforms[name](mb, var) -> [vars]`
    turns a graph output into the package's outputs, named from its `names` attribute (which
    are reserved); other outputs keep their ONNX names (made MIL-legal). Failures are in `problems`
    (`{key: ([node names], reason)}`); when there are any, `program` is None. No MIL tensor
    is above `max_rank` (4 where split heads were asked for): higher-rank layout chains are
    lowered folded (`coreml_wide`), anything else above it is a problem.
    """
    import_ct()
    from coremltools.converters.mil.mil import Builder as mb
    from coremltools.converters.mil.mil import Function, Program

    graph = model.graph
    plan = QuantPlan.scan(graph, ios=int(target.name.removeprefix("iOS")))
    cx = Context(mb, plan, model.opset_imports.get("", 18), max_rank)
    problems: dict[str, tuple[list[str], str]] = {}
    input_names = input_names or {}
    specs = {}
    for value in graph.inputs:
        shape = value.shape
        dims = [d if isinstance(d, int) else None for d in (shape or [])]
        if shape is None or None in dims:
            _note(problems, "dynamic input shape", value.name,
                  "Core ML packages are built here with fixed input shapes; compile without "
                  "--dynamic-batch (or give the ONNX input a static shape)")  # fmt: skip
            dims = [1 if d is None else d for d in dims] or [1]
        specs[input_names.get(value.name, value.name)] = mb.placeholder(
            shape=tuple(dims), dtype=_placeholder_dtype(value)
        )
    input_transforms = input_transforms or {}
    output_transforms = output_transforms or {}
    poisoned: set[str] = set()
    cx.names.update(specs)
    # Output names are the package's interface: reserve them before any op can take them.
    out_names = {v.name: cx.unique(v.name) for v in graph.outputs}
    for transform in output_transforms.values():
        cx.names.update(getattr(transform, "names", ()))
    with Function(specs, opset_version=target) as function:
        for value in graph.inputs:
            var = function.inputs[input_names.get(value.name, value.name)]
            transform = input_transforms.get(value.name)
            cx.values[value.name] = transform(mb, var, cx.unique) if transform else var
        for name, init in graph.initializers.items():
            if init.const_value is not None:
                cx.values[name] = _promoted(init.const_value.numpy())
        nodes = list(graph)
        for i, node in enumerate(nodes):
            cx.node_names[id(node)] = node.name or f"{node.op_type}_{i}"
        for node in nodes:
            _lower_node(cx, node, problems, poisoned)
        outputs = []
        for value in graph.outputs:
            if value.name in poisoned or value.name not in cx.values:
                continue
            got = cx.values[value.name]
            if isinstance(got, Wide):
                why = f"graph output {value.name} is rank {len(got.shape)}; the limit is {max_rank}"
                _note(problems, f"rank > {max_rank}", value.name, why)
                continue
            transform = output_transforms.get(value.name)
            if transform:
                outputs += transform(mb, got)
            else:
                outputs.append(mb.identity(x=got, name=out_names[value.name]))
        function.set_outputs(outputs)
    if problems:
        return Lowered(None, [], plan.weight_records, plan.activation_records, problems)
    program = Program()
    program.add_function("main", function)
    return Lowered(
        program, [o.name for o in outputs], plan.weight_records, plan.activation_records, {}
    )


def _fold_constant(cx: Context, node: ir.Node) -> list[np.ndarray] | None:
    """The outputs of a standard-domain node whose inputs are all constants, computed with
    ONNX's reference evaluator; None for any other node."""
    inputs = [v for v in node.inputs if v is not None]
    if not inputs or node.domain not in ("", "ai.onnx") or not all(map(cx.is_const, inputs)):
        return None
    import onnx
    import onnx.reference

    feeds = {v.name: cx.const(v) for v in inputs}
    graph = onnx.helper.make_graph(
        [ir.serde.serialize_node(node)],
        "fold",
        [
            onnx.helper.make_tensor_value_info(
                name, onnx.helper.np_dtype_to_tensor_dtype(array.dtype), array.shape
            )
            for name, array in feeds.items()
        ],
        [onnx.helper.make_value_info(v.name, onnx.TypeProto()) for v in node.outputs],
    )
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", cx.opset)])
    return [np.asarray(a) for a in onnx.reference.ReferenceEvaluator(model).run(None, feeds)]


def _lower_node(cx: Context, node: ir.Node, problems, poisoned: set[str]) -> None:
    label = cx.node_names[id(node)]
    if any(v is not None and v.name in poisoned for v in node.inputs):
        poisoned.update(o.name for o in node.outputs)
        return
    try:
        if node.op_type == "Constant":
            tensor = ir.convenience.get_const_tensor(node.outputs[0])
            cx.values[node.outputs[0].name] = _promoted(tensor.numpy())
            return
        if cx.plan.owns(node):
            return  # a weight DequantizeLinear: lowered where a layer uses it
        folded = _fold_constant(cx, node)
        if folded is not None:  # e.g. a resized position table too large for the cleanup fold
            for value, array in zip(node.outputs, folded, strict=True):
                cx.values[value.name] = _promoted(array)
            return
        wide = lower_wide(cx, node)  # a layout chain above the rank limit, kept folded
        if wide is not None:
            for value, result in zip(node.outputs, wide, strict=True):
                cx.values[value.name] = result
            return
        lowering = _lowering(node)
        for pos in shape_inputs(node.op_type):
            if pos < len(node.inputs) and node.inputs[pos] is not None:
                value = node.inputs[pos]
                if not cx.is_const(value) and value.name not in cx.plan.weights:
                    raise _NotLowered(
                        f"{node.op_type} with a computed input",
                        f"input {pos} of {node.op_type} must be a constant (run the cleanup "
                        "passes, which fold shape computations)",
                    )
        results = lowering(cx, node)
        for value, result in zip(node.outputs, results, strict=True):
            _check_rank(cx, result, node)
            cx.values[value.name] = result
    except QuantNeedsIOS18 as e:
        hint = "compile with --min-ios ios18 (or quantize weights per-channel int8)"
        _note(problems, "4-bit or per-block weights", label, f"{e}; {hint}")
        poisoned.update(o.name for o in node.outputs)
    except _NotLowered as e:
        _note(problems, e.key, label, e.reason)
        poisoned.update(o.name for o in node.outputs)
    except (ValueError, TypeError, NotImplementedError, AssertionError, IndexError) as e:
        _note(problems, node.op_type, label, f"coremltools rejected it: {_first_line(e)}")
        poisoned.update(o.name for o in node.outputs)


def _lowering(node: ir.Node):
    if node.domain not in ("", "ai.onnx"):
        raise _NotLowered(
            f"{node.domain}::{node.op_type}",
            f"ops of domain {node.domain!r} have no Core ML lowering",
        )
    table = {**FLOAT_OPS, **INDEX_OPS, **QDQ_OPS}
    if node.op_type not in table:
        raise _NotLowered(node.op_type, f"{node.op_type} has no Core ML lowering in edgec")
    return table[node.op_type]


def _promoted(array: np.ndarray) -> np.ndarray:
    """Float constants as float32: the program is float32, its precision set at conversion
    (an fp16 ONNX graph's weights widen exactly and round back to the same fp16 values)."""
    return array.astype(np.float32) if array.dtype.kind == "f" else array


def _check_rank(cx: Context, result, node: ir.Node) -> None:
    rank = getattr(result, "rank", None)
    if rank is None and isinstance(result, np.ndarray):
        rank = result.ndim
    if rank is not None and rank > cx.max_rank:
        raise cx.too_high_rank(node, rank)


def _rank_reason(node: ir.Node, rank: int, limit: int) -> str:
    why = (
        "Core ML allows at most rank 5"
        if limit >= MAX_RANK
        else f"split heads ask for rank ≤ {limit} (the Neural Engine layout); compile with "
        "--pipeline default to allow Core ML's rank 5 (volumes, e.g. 3-D convolutions)"
    )
    return f"{node.op_type} works on a rank-{rank} tensor; {why}"


_INT_INPUTS = {ir.DataType.INT64, ir.DataType.INT32, ir.DataType.INT16, ir.DataType.INT8}


def _placeholder_dtype(value: ir.Value):
    """fp32 for float inputs (precision is set at conversion), int32 for integer ones (Core
    ML has no int64 inputs: the app passes Int32 arrays)."""
    from coremltools.converters.mil.mil import types

    return types.int32 if value.dtype in _INT_INPUTS else types.fp32


def _note(problems, key: str, label: str, reason: str) -> None:
    problems.setdefault(key, ([], reason))[0].append(label)


def _first_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__
