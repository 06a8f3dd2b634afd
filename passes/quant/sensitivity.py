"""`quant::sensitivity`: how much each layer alone hurts, and the `--accuracy-budget` fallback.

    before: calibrated float graph (quant::calibrate ran)
    after:  the same graph; every Conv/Gemm/MatMul with a weight carries metadata
            edgec.quant.sensitivity; with a budget, the most sensitive ones also carry
            edgec.quant.weight_bits = 8 (W4A8 → their weights stay 8 bit) or
            edgec.quant.keep_float (W8A8 → weights float, no activation pairs)

Sensitivity of layer L: the graph with only L quantized (its weights and its activation pairs,
built by running `quant::weights` and `quant::activations` on a copy where every other layer is
kept float), run on `count` calibration samples; the score is the output's relative squared
error ‖y_L − y‖² / ‖y‖² against the float graph.

Budget (`budget`, percentage points): the whole graph quantized must agree with the float
graph on the calibration samples within the budget — top-1 agreement for N×classes outputs,
else 100·mean cosine similarity. While it does not, the next most sensitive layers fall back
(1, 2, 4, … more at a time). The pass marks the layers; the weights/activations passes after it
act on the marks. Layers already scored are not scored again, so a second run changes nothing.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import onnx_ir as ir

from edgec.errors import UserError
from edgec.pass_manager import EdgecPass, register_pass
from edgec.passes.quant import _policy
from edgec.passes.quant._observe import outputs
from edgec.passes.quant.activations import QuantizeActivations
from edgec.passes.quant.calibrate import read_samples
from edgec.passes.quant.weights import QuantizeWeights, weight_axes

SENSITIVITY_KEY = "edgec.quant.sensitivity"


@register_pass
class Sensitivity(EdgecPass):
    id = "quant::sensitivity"

    @dataclasses.dataclass(frozen=True)
    class Options:
        data: str = ""
        count: int = 32
        budget: float | None = None
        bits: int = 8
        block_size: int = 32
        reduce_range: bool = False
        symmetric: bool = False

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        layers = [n for n in model.graph if weight_axes(n) is not None]
        todo = [n for n in layers if SENSITIVITY_KEY not in n.metadata_props]
        if not todo:
            return ir.passes.PassResult(model, modified=False)
        if not self.options.data:
            raise UserError("the sensitivity analysis needs calibration data", "pass --calib")
        samples = read_samples(Path(self.options.data), model, self.options.count, "--calib")
        reference = outputs(model, samples)
        for node in todo:
            quantized = self._quantized(model, only=node.name)
            error = _relative_error(reference, outputs(quantized, samples))
            node.metadata_props[SENSITIVITY_KEY] = json.dumps(round(error, 8))
            self.stats["layers_scored"] += 1
        if self.options.budget is not None:
            self._fall_back(model, layers, samples, reference)
        return ir.passes.PassResult(model, modified=True)

    def _fall_back(self, model, layers, samples, reference) -> None:
        ranked = sorted(layers, key=lambda n: -json.loads(n.metadata_props[SENSITIVITY_KEY]))
        target = 100.0 - self.options.budget
        chosen, step = 0, 1
        score = _agreement(reference, outputs(self._quantized(model, fallback=[]), samples))
        self.stats["agreement_all_quantized_bp"] = round(score * 100)
        while score < target and chosen < len(ranked):
            chosen = min(chosen + step, len(ranked))
            step *= 2
            names = [n.name for n in ranked[:chosen]]
            score = _agreement(reference, outputs(self._quantized(model, names), samples))
        for node in ranked[:chosen]:
            _mark_fallback(node, self.options.bits)
        self.stats["fallback_layers"] = chosen
        self.stats["agreement_after_fallback_bp"] = round(score * 100)

    def _quantized(self, model: ir.Model, fallback=(), only: str | None = None) -> ir.Model:
        """A quantized copy: only layer `only`, or everything but the `fallback` layers."""
        copy = ir.serde.deserialize_model(ir.serde.serialize_model(model))
        for node in copy.graph:
            if only is not None and node.op_type in _policy.QUANT_OPS and node.name != only:
                node.metadata_props[_policy.KEEP_FLOAT_KEY] = "sensitivity"
            elif node.name in fallback:
                _mark_fallback(node, self.options.bits)
        o = self.options
        QuantizeWeights(
            QuantizeWeights.Options(
                bits=o.bits, block_size=o.block_size, reduce_range=o.reduce_range
            )
        )(copy)
        QuantizeActivations(QuantizeActivations.Options(symmetric=o.symmetric))(copy)
        return copy


def _mark_fallback(node: ir.Node, bits: int) -> None:
    if bits == 4:
        node.metadata_props[_policy.WEIGHT_BITS_KEY] = "8"
    else:
        node.metadata_props[_policy.KEEP_FLOAT_KEY] = "accuracy budget"


def _relative_error(reference: np.ndarray, got: np.ndarray) -> float:
    return float(np.sum((got - reference) ** 2) / max(np.sum(reference**2), 1e-30))


def _agreement(reference: np.ndarray, got: np.ndarray) -> float:
    """Top-1 agreement in percent for N×classes outputs, else 100·mean cosine similarity."""
    if reference.ndim == 2:
        return 100.0 * float((reference.argmax(1) == got.argmax(1)).mean())
    ref, out = reference.reshape(len(reference), -1), got.reshape(len(got), -1)
    cos = np.sum(ref * out, 1) / np.maximum(
        np.linalg.norm(ref, axis=1) * np.linalg.norm(out, axis=1), 1e-30
    )
    return 100.0 * float(cos.mean())
