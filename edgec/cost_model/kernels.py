"""Group an ONNX graph into the kernels a runtime would launch, with FLOPs and bytes per kernel.

nn-Meter's observation is that runtimes execute *fused* kernels (conv-bn-relu, not conv, bn and
relu), so latency is a sum over kernels, not over ONNX nodes. edgec applies fusion rules that
the runtimes it targets share (ONNX Runtime, TensorRT, Core ML, TFLite/QNN all do these):

* **epilogue fusion** — an elementwise op (BatchNormalization, activations including the Erf
  form of GELU, Add/Mul/Div, residual adds, …) joins the kernel that produced its latest input,
  when that kernel is a conv, depthwise conv, matmul, attention, norm or another elementwise
  kernel. Its other inputs are read from memory; intermediate values never are.
* **attention** — MatMul(Q, Kᵀ) → [scale/bias elementwise] → Softmax → [Transpose] →
  MatMul(·, V) is one kernel (FlashAttention-style: the score matrix stays on chip; only
  Q, K, V and the output move).
* **LayerNorm / Softmax** stand alone (plus their epilogue), as one kernel each.
* nodes that compute from constants only are folded by the runtime at build time: no kernel.
* **views** (Reshape, Flatten, Squeeze, Unsqueeze, Identity, Shape, Constant…) are free: their
  output is the same buffer as their input. **Layout** ops (Transpose, Concat, Slice, Gather,
  Pad, Resize, Cast, …) are kernels that only move memory.

Before, a conv block and an attention block (ONNX nodes):

    Conv → BatchNormalization → Relu → Add(residual)
    MatMul(q, kᵀ) → Mul → Softmax → MatMul(·, v)

After (kernels): ``[conv: Conv+BatchNormalization+Relu+Add]`` and ``[attention: MatMul+Mul+
Softmax+MatMul]``.

Per kernel: MACs and element operations come from `edgec.graph_costs.node_costs` (the same
counts `edgec inspect` prints); bytes are every tensor the kernel reads from outside itself
(activations and weights, each once) plus every tensor it produces that something outside it
reads (or that is a graph output). Element sizes come from the precision the estimate is for,
not from the exported fp32 graph. Shapes are the graph's static shapes (ONNX shape inference on
a copy where some are missing); a tensor whose shape stays unknown counts zero bytes and the
kernel is flagged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import onnx_ir as ir

from edgec.cost_model.fusion import ACCELERATOR, FusionRules
from edgec.cost_model.ort_qdq import int8_nodes
from edgec.graph_costs import node_costs
from edgec.graph_shapes import inferred_shapes, numel, recorded_shape

__all__ = ["KERNEL_CLASSES", "Kernel", "group_kernels"]

KERNEL_CLASSES = (
    "conv",
    "dwconv",
    "matmul",
    "attention",
    "norm",
    "softmax",
    "elementwise",
    "pool",
    "layout",
    "other",
)


def _ops(names: str) -> frozenset[str]:
    return frozenset(names.split())


# input channels below which a k×k convolution is an image stem to ONNX Runtime on x86: its
# NCHWc convolutions block channels by 8 (AVX2) or 16 (AVX-512), and one whose input has
# fewer channels than a block reads it unblocked (an RGB image: 3)
NARROW_INPUT = 8
_VIEWS = _ops("Reshape Flatten Squeeze Unsqueeze Identity Dropout Shape Size Constant Range")
_CONSTANT_MAKERS = _ops("Constant ConstantOfShape Shape Size Range")
_LAYOUT = _ops(
    """Transpose Concat Slice Split Gather GatherElements GatherND Pad Tile Expand DepthToSpace
    SpaceToDepth Cast CastLike ScatterND ScatterElements Compress Trilu OneHot NonZero Resize
    Upsample ReverseSequence"""
)
_NORMS = _ops(
    """LayerNormalization GroupNormalization InstanceNormalization RMSNormalization
    LpNormalization MeanVarianceNormalization"""
)
_SOFTMAX = _ops("Softmax LogSoftmax")
# reductions over whole axes of a tensor (no output element exists before every input element
# does): the global pools and Reduce* ops; windowed pools (AveragePool, MaxPool) are not
_WHOLE_AXIS_REDUCTIONS = _ops(
    """GlobalAveragePool GlobalMaxPool GlobalLpPool ReduceMean ReduceSum ReduceMax ReduceMin
    ReduceProd ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceSumSquare ArgMax ArgMin"""
)
_POOLS = _ops(
    """AveragePool MaxPool LpPool GlobalAveragePool GlobalMaxPool GlobalLpPool ReduceMean ReduceSum
    ReduceMax ReduceMin ReduceProd ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp
    ReduceSumSquare ArgMax ArgMin CumSum"""
)
_ELEMENTWISE = _ops(
    """Abs Add And BatchNormalization Ceil Celu Clip Cos DequantizeLinear Div Elu Equal Erf Exp
    Floor Gelu Greater GreaterOrEqual HardSigmoid HardSwish LeakyRelu Less LessOrEqual Log Max
    Mean Min Mish Mod Mul Neg Not Or Pow PRelu QuantizeLinear Reciprocal Relu Round Selu Sigmoid
    Sign Sin Softplus Softsign Sqrt Sub Sum Swish Tanh ThresholdedRelu Where Xor"""
)


@dataclasses.dataclass
class Kernel:
    """One fused kernel: its class, the ONNX nodes in it, and what it computes and moves.

    Byte counts are per image for activations (`activation_bytes`, in elements × the
    activation element size) and once per run for weights (`weight_bytes`)."""

    name: str
    cls: str
    nodes: list[str]
    op_types: list[str]
    macs: int = 0
    element_ops: int = 0
    activation_elements: int = 0
    weight_elements: int = 0
    shape_unknown: bool = False
    int8: bool = False  # ORT runs it as an integer (QLinear) kernel (`ort_qdq`; ORT_CPU rules)
    pointwise: bool = False  # a 1×1 convolution (a plain GEMM on the CPU, no im2col)
    # a k×k convolution of fewer than NARROW_INPUT channels (an image stem): ORT's NCHWc
    # convolution reads such an input unblocked, with a slower kernel
    narrow_input: bool = False
    # a float conv/matmul whose weights a DequantizeLinear computes at every run (ORT_CPU rules:
    # ORT can then neither pre-pack them nor use its NCHWc convolutions)
    runtime_weights: bool = False
    _attention_open: bool = dataclasses.field(default=False, repr=False)

    @property
    def reduces(self) -> bool:
        """Whether the kernel reduces whole axes (a global pool, a Reduce*): see `roofline`."""
        return any(op in _WHOLE_AXIS_REDUCTIONS for op in self.op_types)

    @property
    def flops(self) -> int:
        """Arithmetic per image: 2 per multiply-accumulate plus one per element operation."""
        return 2 * self.macs + self.element_ops

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "class": self.cls,
            "nodes": list(self.nodes),
            "op_types": list(self.op_types),
            "macs": self.macs,
            "element_ops": self.element_ops,
            "activation_elements": self.activation_elements,
            "weight_elements": self.weight_elements,
            "shape_unknown": self.shape_unknown,
            "int8": self.int8,
        }


def group_kernels(
    model: ir.Model, dims: Mapping[str, int] | None = None, rules: FusionRules = ACCELERATOR
) -> list[Kernel]:
    """The kernels of `model`'s main graph, in graph order (see the module docstring).

    `rules` says what the runtime fuses (`edgec.cost_model.fusion`); the default is the
    accelerator runtimes' rules this docstring describes."""
    dims = dict(dims or {})
    costs, _ = node_costs(model, dims, None)
    shape_of = _shape_function(model, dims)
    graph = model.graph
    alias: dict[ir.Value, ir.Value] = {}  # a view's output -> the buffer it views
    produced_by: dict[ir.Value, int] = {}  # buffer -> kernel index
    kernels: list[Kernel] = []
    members: list[set[ir.Value]] = []  # buffers produced inside each kernel
    reads: list[set[ir.Value]] = []  # buffers each kernel reads

    def buffer(value: ir.Value) -> ir.Value:
        while value in alias:
            value = alias[value]
        return value

    graph_inputs = set(graph.inputs)
    gelu_of = _gelu_patterns(graph) if rules.gelu_pattern else {}
    int8 = int8_nodes(graph, rules.qlinear_ops) if rules.qlinear_ops else set()
    kernel_of_node: dict[ir.Node, int] = {}
    for index, (node, cost) in enumerate(zip(graph, costs, strict=True)):
        op = node.op_type if node.domain in ("", "ai.onnx") else cost.op
        inputs = [buffer(v) for v in node.inputs if v is not None]
        if op in _VIEWS or (rules.transpose_into_matmul and _transpose_of_matmul(node)):
            if op not in _CONSTANT_MAKERS and inputs:
                for out in node.outputs:
                    alias[out] = inputs[0]
            continue
        runs_each_time = op == "DequantizeLinear" and bool(rules.qlinear_ops)
        runs_each_time &= not _feeds_only(node, int8)  # ORT never folds a DQ (of a weight)
        if not runs_each_time and not any(v in produced_by or v in graph_inputs for v in inputs):
            continue  # computes from constants only: folded when the runtime builds the engine
        activations = [v for v in inputs if v in produced_by]
        if node in gelu_of and gelu_of[node] in kernel_of_node:
            host = kernel_of_node[gelu_of[node]]
        else:
            host = _host_kernel(
                op, node, activations, produced_by, kernels, rules, graph_inputs, int8
            )
        if host is None:
            kernels.append(
                Kernel(
                    node.name or f"{node.op_type}#{index}",
                    _class_of(op, node),
                    [],
                    [],
                    int8=node in int8,
                    pointwise=_pointwise(op, node),
                    narrow_input=_narrow_input(op, node),
                    runtime_weights=bool(rules.qlinear_ops) and _runtime_weights(op, node, int8),
                )
            )
            members.append(set())
            reads.append(set())
            host = len(kernels) - 1
            if op in ("MatMul", "Gemm") and _is_act_act(node, produced_by, graph_inputs, buffer):
                if rules.flash_attention:
                    kernels[host]._attention_open = True
                else:  # Q·Kᵀ or P·V as a kernel of its own
                    kernels[host].cls = "attention"
        kernel = kernels[host]
        kernel_of_node[node] = host
        if op in _SOFTMAX and kernel._attention_open and kernel.cls == "matmul":
            kernel.cls = "attention"
        elif op == "MatMul" and kernel.cls == "attention" and kernel._attention_open:
            kernel._attention_open = False
        kernel.nodes.append(node.name or f"{node.op_type}#{index}")
        kernel.op_types.append(op)
        if cost.macs_entry is not None and cost.macs_entry.macs is not None:
            kernel.macs += cost.macs_entry.macs
        kernel.element_ops += cost.other or 0
        kernel.shape_unknown |= cost.shape_missing
        reads[host].update(inputs)
        for out in node.outputs:
            produced_by[out] = host
            members[host].add(out)

    _count_bytes(graph, kernels, members, reads, produced_by, buffer, shape_of)
    return kernels


def _class_of(op: str, node: ir.Node) -> str:
    if op in ("Conv", "ConvInteger", "QLinearConv", "ConvTranspose"):
        group = node.attributes.get_int("group", 1)
        weight = _weight_of(node)
        out_channels = weight.shape[0] if weight is not None and weight.shape else None
        return "dwconv" if group > 1 and group == out_channels else "conv"
    if op in ("MatMul", "Gemm", "MatMulInteger", "QLinearMatMul", "com.microsoft::MatMulNBits"):
        return "matmul"
    if op == "Attention":  # the ONNX op: q·kᵀ, softmax and p·v in one node
        return "attention"
    if op in _NORMS:
        return "norm"
    if op in _SOFTMAX:
        return "softmax"
    if op in _POOLS:
        return "pool"
    if op in _LAYOUT:
        return "layout"
    if op in _ELEMENTWISE:
        return "elementwise"
    return "other"


def _host_kernel(
    op, node, activations, produced_by, kernels, rules: FusionRules, graph_inputs, int8
) -> int | None:
    """The kernel `node` fuses into, or None when it starts a kernel of its own."""
    if not activations:
        return None
    latest = max(produced_by[v] for v in activations)
    kernel = kernels[latest]
    if rules.qlinear_ops:
        if op == "QuantizeLinear":  # QLinear op writing int8, or a float op then a Q kernel
            return latest if kernel.int8 else None
        if op == "DequantizeLinear":  # read as int8 by QLinear readers, else a DQ kernel
            return latest if _feeds_only(node, int8) else None
        if "QuantizeLinear" in kernel.op_types:
            return None  # a quantized output ends the kernel (QLinear op → next QLinear op)
    if op in _ELEMENTWISE and (
        not rules.sole_reader or _sole_reader(node, activations, produced_by, latest)
    ):
        others = [v for v in activations if produced_by[v] != latest]
        constant = not others and not any(v in graph_inputs for v in node.inputs)
        if rules.absorbs(kernel.cls, op, constant):
            return latest
    if op in _SOFTMAX and kernel._attention_open and kernel.cls == "matmul":
        return latest
    if kernel.cls == "attention" and kernel._attention_open and op in ("MatMul", "Transpose"):
        return latest  # P·V (P possibly transposed first, as EfficientViT's v·Pᵀ)
    return None


def _feeds_only(node: ir.Node, int8: set[ir.Node]) -> bool:
    """Every reader of `node`'s outputs is an integer kernel (which reads the int8 tensor)."""
    readers = [use.node for out in node.outputs for use in out.uses()]
    return bool(readers) and all(reader in int8 for reader in readers)


def _pointwise(op: str, node: ir.Node) -> bool:
    """A convolution with a 1×1 window."""
    if op not in ("Conv", "ConvInteger", "QLinearConv"):
        return False
    window = node.attributes.get_ints("kernel_shape", None)
    if window is None:
        weight = _weight_of(node)
        window = weight.shape[2:] if weight is not None and weight.shape else None
    return window is not None and all(w == 1 for w in window)


def _runtime_weights(op: str, node: ir.Node, int8: set[ir.Node]) -> bool:
    """A float conv or matmul reading DequantizeLinear(int8 weight): ORT computes its weights
    at every run."""
    weight = node.inputs[1] if len(node.inputs) > 1 else None
    return (
        node not in int8
        and _class_of(op, node) in ("conv", "dwconv", "matmul")
        and weight is not None
        and _dequantized_constant(weight)
    )


def _narrow_input(op: str, node: ir.Node) -> bool:
    """A dense k×k convolution (k > 1, one group) of fewer than NARROW_INPUT channels."""
    if op not in ("Conv", "ConvInteger") or _pointwise(op, node):
        return False
    weight = _weight_of(node)
    channels = weight.shape[1] if weight is not None and weight.shape else None
    group = node.attributes.get_int("group", 1)
    return group == 1 and isinstance(channels, int) and channels < NARROW_INPUT


def _weight_of(node: ir.Node) -> ir.Value | None:
    """A conv's weight, seen through a QDQ graph's DequantizeLinear(int8 weight)."""
    weight = node.inputs[1] if len(node.inputs) > 1 else None
    if weight is not None and weight.shape is None and weight.producer() is not None:
        weight = weight.producer().inputs[0]
    return weight


def _sole_reader(node: ir.Node, activations, produced_by, kernel: int) -> bool:
    """`node` is the only reader of what it reads from `kernel` (a fused epilogue's condition
    in ONNX Runtime: a value others read too must be written out)."""
    return all(
        all(use.node is node for use in v.uses()) for v in activations if produced_by[v] == kernel
    )


def _transpose_of_matmul(node: ir.Node) -> bool:
    """A Transpose of the last two axes read only by MatMuls (ORT folds it into FusedMatMul)."""
    if node.op_type != "Transpose" or node.domain not in ("", "ai.onnx"):
        return False
    perm = node.attributes.get_ints("perm", None)
    if perm is None or len(perm) < 2:
        return False
    rank = len(perm)
    swapped = [*range(rank - 2), rank - 1, rank - 2]
    uses = node.outputs[0].uses()
    return list(perm) == swapped and bool(uses) and all(u.node.op_type == "MatMul" for u in uses)


def _gelu_patterns(graph) -> dict[ir.Node, ir.Node]:
    """Nodes of Erf-form GELUs, x·½·(1 + erf(x/√2)), each mapped to its pattern's first node
    (Div or Mul by 1/√2 → Erf → Add → Mul [→ Mul]), which ORT's GeluFusion makes one kernel."""
    members: dict[ir.Node, ir.Node] = {}
    for node in graph:
        scale = node.inputs[0].producer() if node.op_type == "Erf" and node.inputs else None
        if scale is None or scale.op_type not in ("Div", "Mul"):
            continue
        chain, current = [node], node
        for wanted in ("Add", "Mul", "Mul"):
            uses = current.outputs[0].uses()
            if len(uses) != 1 or uses[0].node.op_type != wanted:
                break
            current = uses[0].node
            chain.append(current)
        if len(chain) >= 3:
            members.update((n, scale) for n in chain)
    return members


def _is_act_act(node: ir.Node, produced_by, graph_inputs, buffer) -> bool:
    """A MatMul of two computed tensors (Q·Kᵀ), not of an activation and a weight."""
    operands = [v for v in node.inputs[:2] if v is not None and not _dequantized_constant(v)]
    operands = [buffer(v) for v in operands]
    return len(operands) == 2 and all(v in produced_by or v in graph_inputs for v in operands)


def _dequantized_constant(value: ir.Value) -> bool:
    """DequantizeLinear of an initializer: a weight, even when ORT dequantizes it every run."""
    producer = value.producer()
    if producer is None or producer.op_type != "DequantizeLinear" or not producer.inputs:
        return False
    source = producer.inputs[0]
    return source is not None and (source.const_value is not None or source.is_initializer())


def _count_bytes(graph, kernels, members, reads, produced_by, buffer, shape_of) -> None:
    graph_inputs = {buffer(v) for v in graph.inputs}
    outputs = {buffer(v) for v in graph.outputs}
    consumers: dict[ir.Value, set[int]] = {}
    for k, read in enumerate(reads):
        for value in read:
            consumers.setdefault(value, set()).add(k)
    for k, kernel in enumerate(kernels):
        for value in reads[k] - members[k]:
            size = numel(shape_of(value))
            kernel.shape_unknown |= size is None
            if value in produced_by or value in graph_inputs:
                kernel.activation_elements += size or 0
            else:
                kernel.weight_elements += size or 0
        for value in members[k]:
            if value in outputs or consumers.get(value, set()) - {k}:
                size = numel(shape_of(value))
                kernel.shape_unknown |= size is None
                kernel.activation_elements += size or 0


def _shape_function(model: ir.Model, dims: dict[str, int]):
    """Recorded static shapes; ONNX shape inference on a copy fills the gaps (run once, lazily)."""
    inferred: dict[str, tuple[int, ...]] | None = None

    def shape_of(value: ir.Value) -> tuple[int, ...] | None:
        nonlocal inferred
        shape = None if dims else recorded_shape(value)
        if shape is not None:
            return shape
        if inferred is None:
            try:
                inferred = inferred_shapes(model, dims)
            except Exception:  # onnx raises several types; unknown shapes are flagged instead
                inferred = {}
        if value.const_value is not None:
            return tuple(value.const_value.shape)
        return inferred.get(value.name or "")

    return shape_of
