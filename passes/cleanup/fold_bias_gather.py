"""`cleanup::fold_bias_gather`: fold constant attention-bias gathers into one constant each."""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx_ir as ir

from edgec.pass_manager import EdgecPass, register_pass
from edgec.passes._graph import const_array, drop_if_unused, evaluate, opset_version

# Shape plumbing that may follow the gather and is folded into the same constant.
_CHAIN_OPS = frozenset(
    {"Reshape", "Unsqueeze", "Squeeze", "Slice", "Transpose", "Flatten", "Gather", "Identity"}
)


@dataclasses.dataclass(frozen=True)
class FoldBiasGatherOptions:
    """max_elements: the largest folded tensor (in elements) this pass may create; a gather
    whose result is larger is left alone, and a chain stops before a step that would be."""

    max_elements: int = 1 << 22


@register_pass
class FoldBiasGatherPass(EdgecPass):
    """Evaluate `Gather(constant table, constant indices)` and the shape plumbing after it.

    EfficientViT, LeViT and SHViT add a learned relative-position bias to each head's
    attention scores: `attention_biases[:, attention_bias_idxs]` (a table of `heads × offsets`
    gathered with a constant `tokens × tokens` index), then `[head]` per cascaded head. Both
    operands are parameters, so the result is a constant, but it is usually bigger than
    generic constant folding is allowed to create (`cleanup::fold_constants` caps outputs), so
    exporters leave the gather in the graph. This pass folds it with its own, larger cap; the
    chain of Reshape/Unsqueeze/Squeeze/Slice/Transpose/Flatten/Gather/Identity nodes that reads
    it (each the single reader of the previous value, other inputs constant) goes into the same
    constant. A gather with a non-constant operand (an embedding lookup) is left alone.

    Before::

        <float[4, 49, 49] index = {...}, int64 h0 = {0}>
        select = Gather <axis = 0> (index, h0)          # float[49, 49]
        scores_b = Add(scores, select)

    After::

        <float[49, 49] select = {...}>                  # index[0]
        scores_b = Add(scores, select)

    The table (`index`) is dropped once no node reads it any more.

    Stats: `gathers` (gathers folded), `chain_ops` (following nodes folded with them),
    `elements` (elements in the new constants), `tables_removed`.
    """

    id = "cleanup::fold_bias_gather"
    Options = FoldBiasGatherOptions

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        opset = opset_version(model)
        for node in list(ir.traversal.RecursiveGraphIterator(model.graph)):
            if node.op_type == "Gather" and node.domain in ("", "ai.onnx") and node.graph:
                self._fold(node, opset)
        return ir.passes.PassResult(model, modified=bool(self.stats["gathers"]))

    def _fold(self, gather: ir.Node, opset: int) -> None:
        result = self._evaluate(gather, opset)
        if result is None or gather.outputs[0].is_graph_output():
            return
        chain = [gather]
        while True:
            out = chain[-1].outputs[0]
            if len(out.uses()) != 1 or out.is_graph_output():
                break
            reader, index = next(iter(out.uses()))
            if (
                index != 0
                or reader.op_type not in _CHAIN_OPS
                or reader.domain not in ("", "ai.onnx")
            ):
                break
            if len(reader.outputs) != 1 or reader.outputs[0].is_graph_output():
                break
            folded = self._evaluate(reader, opset, first=result)
            if folded is None:
                break
            chain.append(reader)
            result = folded
        self._replace(chain, result)

    def _evaluate(
        self, node: ir.Node, opset: int, first: np.ndarray | None = None
    ) -> np.ndarray | None:
        """The node's single output when all its inputs are constant and it fits the cap."""
        inputs = [first] if first is not None else []
        for value in node.inputs[len(inputs) :]:
            array = const_array(value) if value is not None else None
            if value is not None and array is None:
                return None
            inputs.append(array)
        if not inputs or inputs[0] is None or len(node.outputs) != 1:
            return None
        try:
            (out,) = evaluate(node, inputs, opset)
        except Exception:  # invalid indices, unsupported attribute…: leave the node alone
            return None
        out = np.asarray(out)
        return out if out.size <= self.options.max_elements else None

    def _replace(self, chain: list[ir.Node], result: np.ndarray) -> None:
        graph = chain[0].graph
        assert graph is not None
        old = chain[-1].outputs[0]
        name = old.name
        # Inputs read by the chain, besides the links between its own nodes.
        operands = [
            v for n in chain for v in n.inputs if v is not None and v.producer() not in chain
        ]
        dtype = old.dtype or ir.DataType.from_numpy(result.dtype)
        old.name = None  # free the name for the constant that takes the value's place
        value = ir.Value(
            name=name,
            type=ir.TensorType(dtype),
            shape=ir.Shape(result.shape),
            const_value=ir.tensor(np.ascontiguousarray(result), dtype=dtype, name=name),
        )
        table = chain[0].inputs[0]
        graph.register_initializer(value)
        old.replace_all_uses_with(value)
        graph.remove(list(reversed(chain)), safe=True)
        self.stats["gathers"] += 1
        if len(chain) > 1:
            self.stats["chain_ops"] += len(chain) - 1
        self.stats["elements"] += int(result.size)
        for operand in operands:
            if drop_if_unused(operand) and operand is table:
                self.stats["tables_removed"] += 1
