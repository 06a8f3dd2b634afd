"""`cleanup::infer_shapes`: give every value the dtype and shape ONNX shape inference knows."""

from __future__ import annotations

import dataclasses
import logging

import onnx
import onnx_ir as ir

from edgec.pass_manager import EdgecPass, register_pass

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class InferShapesOptions:
    """strict: fail (raise) when ONNX shape inference finds an inconsistency, instead of
    keeping what is known and counting it in `stats["failed"]`."""

    strict: bool = False


@register_pass
class InferShapesPass(EdgecPass):
    """Run `onnx.shape_inference` (with data propagation) and merge what it learns into the IR.

    Merging only ever adds knowledge: a missing dtype or shape is filled in, and a symbolic
    dimension becomes a number when inference proves it. A known static dimension is never
    replaced, and a disagreement (different rank or dtype) keeps the model's own annotation
    and is counted in `stats["conflicts"]`, so a second run changes nothing.

    Before::

        graph (float[1, 3, 8, 8] x) => (y) {
            t = Transpose <perm = [0, 2, 3, 1]> (x)
            y = Relu(t)
        }

    After::

        graph (float[1, 3, 8, 8] x) => (float[1, 8, 8, 3] y) {
            float[1, 8, 8, 3] t = Transpose <perm = [0, 2, 3, 1]> (x)
            y = Relu(t)
        }

    Stats: `dtypes` (values that got a dtype), `shapes` (values that got a shape or a more
    precise one), `conflicts`, `failed` (1 when ONNX shape inference raised).
    """

    id = "cleanup::infer_shapes"
    Options = InferShapesOptions

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        proto = ir.serde.serialize_model(model)
        try:
            inferred = onnx.shape_inference.infer_shapes(
                proto, check_type=False, strict_mode=self.options.strict, data_prop=True
            )
        except (onnx.shape_inference.InferenceError, RuntimeError, ValueError) as exc:
            if self.options.strict:
                raise
            logger.warning("shape inference failed, model left as it was: %s", exc)
            self.stats["failed"] += 1
            return ir.passes.PassResult(model, modified=False)
        inferred_model = ir.serde.deserialize_model(inferred)
        modified = False
        for graph, inferred_graph in zip(model.graphs(), inferred_model.graphs(), strict=True):
            known = ir.convenience.create_value_mapping(inferred_graph, include_subgraphs=False)
            for name, value in ir.convenience.create_value_mapping(
                graph, include_subgraphs=False
            ).items():
                if name in known:
                    modified |= self._merge(value, known[name])
        return ir.passes.PassResult(model, modified=modified)

    def _merge(self, value: ir.Value, inferred: ir.Value) -> bool:
        changed = False
        if inferred.type is not None:
            if value.type is None:
                value.type = inferred.type
                self.stats["dtypes"] += 1
                changed = True
            elif value.type != inferred.type:
                self.stats["conflicts"] += 1
                return changed
        if inferred.shape is None:
            return changed
        if value.shape is None:
            value.shape = inferred.shape
            self.stats["shapes"] += 1
            return True
        if len(value.shape) != len(inferred.shape):
            self.stats["conflicts"] += 1
            return changed
        dims = list(value.shape.dims)
        for i, (mine, theirs) in enumerate(zip(value.shape.dims, inferred.shape.dims, strict=True)):
            if isinstance(mine, int):
                if isinstance(theirs, int) and theirs != mine:
                    self.stats["conflicts"] += 1
                    return changed
            elif isinstance(theirs, int) or (mine.value is None and theirs.value is not None):
                dims[i] = theirs
        if dims != list(value.shape.dims):
            value.shape = ir.Shape(dims)
            self.stats["shapes"] += 1
            changed = True
        return changed
