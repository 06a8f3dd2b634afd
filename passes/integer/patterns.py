"""Float subgraphs that lower as one integer op (`fusions(graph)`, each a `Fusion`):

- GELU exported as its erf formula (lowers to ShiftGELU):

      x ─ Div(√2) ─ Erf ─ Add(1) ─ Mul(0.5) ─ Mul(x) ─► gelu        (or 0.5 applied to x first)

- GroupNorm(G, C) as torch exports it (lowers to `groupnorm.groupnorm`, γ and β folded):

      x (N,C,…) ─ Reshape(N,G,−1) ─ InstanceNormalization(s, b) ─ Reshape(x's shape)
        [─ Mul(γ per channel)] [─ Add(β per channel)] ─► y

- L2 normalisation along the last axis (Segmenter's mask decoder; lowers to
  `layernorm.l2_normalised`):

      x ─ ReduceL2(axes = [last], keepdims) ─ Div(x, ·) ─► x / ‖x‖

Every intermediate value of a pattern has exactly one reader, so absorbing it loses nothing.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import onnx_ir as ir

from edgec.passes._graph import const_array


@dataclasses.dataclass(frozen=True)
class Fusion:
    """A float subgraph (`nodes`, the node writing its result last) reading `x`, that lowers as
    one integer op of kind `kind` with `params`."""

    kind: str
    nodes: list[ir.Node]
    x: ir.Value
    params: dict = dataclasses.field(default_factory=dict)

    @property
    def output(self) -> ir.Value:
        return self.nodes[-1].outputs[0]


def _scalar(value: ir.Value | None, expected: float) -> bool:
    array = const_array(value)
    return (
        array is not None and array.size == 1 and math.isclose(float(array), expected, rel_tol=1e-4)
    )


def _other(node: ir.Node, value: ir.Value) -> ir.Value | None:
    rest = [v for v in node.inputs if v is not value]
    return rest[0] if len(rest) == 1 else None


def _only_user(value: ir.Value, op_type: str) -> ir.Node | None:
    uses = value.uses()
    if len(uses) != 1 or value.is_graph_output() or uses[0].node.op_type != op_type:
        return None
    return uses[0].node


def _gelu_from_erf(erf: ir.Node) -> list[ir.Node] | None:
    div = erf.inputs[0].producer()
    if div is None:
        return None
    if (div.op_type == "Div" and _scalar(div.inputs[1], math.sqrt(2))) or (
        div.op_type == "Mul" and _scalar(_other(div, div.inputs[0]), 1 / math.sqrt(2))
    ):
        x = div.inputs[0]
    else:
        return None
    add = _only_user(erf.outputs[0], "Add")
    if add is None or not _scalar(_other(add, erf.outputs[0]), 1.0):
        return None
    nodes, current, half, seen_x = [div, erf, add], add.outputs[0], False, False
    while not (half and seen_x):
        mul = _only_user(current, "Mul")
        if mul is None:
            return None
        other = _other(mul, current)
        producer = other.producer() if other is not None else None
        if _scalar(other, 0.5) and not half:
            half = True
        elif other is x and not seen_x:
            seen_x = True
        elif (
            producer is not None
            and producer.op_type == "Mul"
            and x in producer.inputs
            and _scalar(_other(producer, x), 0.5)
            and len(other.uses()) == 1
        ):
            half = seen_x = True
            nodes.append(producer)
        else:
            return None
        nodes.append(mul)
        current = mul.outputs[0]
    return nodes


def _per_channel(value: ir.Value | None, channels: int, rank: int) -> np.ndarray | None:
    """A constant that broadcasts along axis 1 of a rank-`rank` tensor, as C float64 values."""
    array = const_array(value)
    if array is None or array.ndim > rank:
        return None
    shape = (1,) * (rank - array.ndim) + array.shape
    if array.size == 1:
        return np.full(channels, float(array.reshape(-1)[0]))
    if shape[1] != channels or math.prod(shape) != channels:
        return None
    return array.astype(np.float64).reshape(channels)


def _groupnorm(norm: ir.Node) -> Fusion | None:
    grouping = norm.inputs[0].producer()
    if grouping is None or grouping.op_type != "Reshape" or len(norm.inputs) < 3:
        return None
    x = grouping.inputs[0]
    scale, bias = const_array(norm.inputs[1]), const_array(norm.inputs[2])
    restore = _only_user(norm.outputs[0], "Reshape")
    if (
        restore is None
        or scale is None
        or bias is None
        or len(grouping.outputs[0].uses()) != 1
        or x.shape is None
        or not x.shape.is_static()
        or len(x.shape) < 3
        or restore.outputs[0].shape != x.shape
        or len(grouping.outputs[0].shape or ()) != 3
    ):
        return None
    shape = tuple(x.shape.dims)
    groups, channels = grouping.outputs[0].shape[1], shape[1]
    if not isinstance(groups, int) or channels % groups or scale.size != groups:
        return None
    per_group = np.repeat(np.arange(groups), channels // groups)
    gamma = scale.astype(np.float64).reshape(-1)[per_group]
    beta = bias.astype(np.float64).reshape(-1)[per_group]
    nodes, current = [grouping, norm, restore], restore.outputs[0]
    for op_type in ("Mul", "Add"):
        user = _only_user(current, op_type)
        other = _other(user, current) if user is not None else None
        found = _per_channel(other, channels, len(shape))
        if found is None:
            continue
        gamma, beta = (gamma * found, beta * found) if op_type == "Mul" else (gamma, beta + found)
        nodes.append(user)
        current = user.outputs[0]
    params = {"shape": shape, "groups": groups, "gamma": gamma, "beta": beta}
    return Fusion("groupnorm", nodes, x, params)


def _l2_normalisation(norm: ir.Node) -> Fusion | None:
    x = norm.inputs[0]
    axes = const_array(norm.inputs[1]) if len(norm.inputs) > 1 else None
    keep = norm.attributes["keepdims"].value if "keepdims" in norm.attributes else 1
    div = _only_user(norm.outputs[0], "Div")
    rank = len(x.shape) if x.shape is not None else 0
    if (
        div is None
        or div.inputs[0] is not x
        or div.inputs[1] is not norm.outputs[0]
        or axes is None
        or [int(a) % max(rank, 1) for a in axes.reshape(-1)] != [rank - 1]
        or not keep
    ):
        return None
    return Fusion("l2norm", [norm, div], x, {"axis": rank - 1})


_FINDERS = {
    "Erf": lambda n: (
        Fusion("gelu", nodes, nodes[0].inputs[0]) if (nodes := _gelu_from_erf(n)) else None
    ),
    "InstanceNormalization": _groupnorm,
    "ReduceL2": _l2_normalisation,
}


def fusions(graph: ir.Graph) -> dict[int, Fusion]:
    """id(last node of a pattern) → its `Fusion`, for every pattern of this module in `graph`."""
    found = {}
    for node in graph:
        finder = _FINDERS.get(node.op_type)
        if finder is not None and (fusion := finder(node)) is not None:
            found[id(fusion.nodes[-1])] = fusion
    return found
